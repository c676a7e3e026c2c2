r"""Synthetic difference-in-differences (Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021).

SDID reweights both donors and pre-periods, then takes a difference in
differences of the weighted means. With the treated *average* series
:math:`\bar y_t` (several treated units are averaged, as in the paper's block
design) and donor outcomes :math:`Y_{jt}`:

*Unit weights* (Algorithm 1, step 2)

.. math:: (\hat\omega_0, \hat\omega) = \arg\min_{\omega_0,\ \omega \in \Delta}
          \sum_{t \le T_0} \big(\omega_0 + \textstyle\sum_j \omega_j Y_{jt} - \bar y_t\big)^2
          + \zeta^2 T_0 \|\omega\|^2,
   \qquad \zeta = (N_{tr} T_{post})^{1/4}\, \hat\sigma,

with :math:`\hat\sigma` the standard deviation of the donors' first
differences over the pre-period.

*Time weights* (step 3)

.. math:: (\hat\lambda_0, \hat\lambda) = \arg\min_{\lambda_0,\ \lambda \in \Delta}
          \sum_{j} \big(\lambda_0 + \textstyle\sum_{t\le T_0} \lambda_t Y_{jt}
          - \tfrac{1}{T_{post}}\sum_{t > T_0} Y_{jt}\big)^2 + \zeta_\lambda^2 N_{co} \|\lambda\|^2,
   \qquad \zeta_\lambda = 10^{-6}\hat\sigma.

*Estimate* :math:`\hat\tau = (\bar y_{post} - \hat\lambda^\top \bar y_{pre})
- \hat\omega^\top (\bar Y_{post} - Y_{pre}\hat\lambda)`. The counterfactual of
test period :math:`t` is :math:`\hat\omega^\top Y_{\cdot t} + \hat\lambda^\top
\bar y_{pre} - \hat\omega^\top Y_{pre}\hat\lambda`, whose test-period mean
gap is :math:`\hat\tau`.

Both weight problems are solved exactly (non-negative least squares on the
simplex, :func:`causal.synthetic_control.simplex_least_squares`); the
reference R package ``synthdid`` uses Frank-Wolfe with a sparsification step
that zeroes small weights, so its weights can differ slightly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from causal.base import (
    NON_NEGATIVE,
    POSITIVE_INT,
    SEED,
    CounterfactualEstimator,
    EstimatorTags,
    Options,
)
from causal.errors import ConfigError, DataError
from causal.inference import (
    EffectInference,
    check_confidence,
    placebo_groups,
    placebo_reference,
    treated_post_average,
)
from causal.synthetic_control import simplex_least_squares

INFERENCE = ("placebo", "conformal")


class SyntheticDiD(CounterfactualEstimator):
    r"""Synthetic difference-in-differences (the ``sdid`` estimator).

    Parameters
    ----------
    zeta : float or None, default=None
        Ridge regularisation of the unit weights; ``None`` uses the paper's
        :math:`(N_{tr} T_{post})^{1/4}\hat\sigma`. Inference refits keep the
        fitted value (see :meth:`refit_params`).
    inference : {"placebo", "conformal"}, default="placebo"
        ``"placebo"``: the estimator's own placebo-in-space inference (see
        :meth:`_placebo_z`); ``"conformal"``: the readout's conformal test.
    n_placebo : int, default=200
        Placebo groups of control geos (all of them when there are fewer).
    seed : int, default=0
        Seed of the placebo groups' draw.

    Attributes
    ----------
    weights_ : ndarray (J,)
        Unit (donor) weights on the simplex.
    time_weights_ : ndarray (T0,)
        Pre-period weights on the simplex (uniform when fitted without a test period).
    zeta_ : float
        Regularisation used.
    noise_level_ : float
        :math:`\hat\sigma`, the sd of the donors' pre-period first differences.
    offset_ : float
        :math:`\hat\lambda^\top \bar y_{pre} - \hat\omega^\top Y_{pre}\hat\lambda`.
    counterfactual_pre_, counterfactual_post_ : ndarray
    pre_rmse_, pre_r2_ : float
    n_treated_, n_controls_ : int

    References
    ----------
    Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. & Wager, S.
    (2021). Synthetic difference-in-differences. American Economic Review
    111(12), 4088-4118.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> alpha, beta = rng.normal(size=6), rng.normal(size=30).cumsum()
    >>> Y = alpha[None, :] + beta[:, None]          # two-way fixed effects, no noise
    >>> y = Y[:, 0] + np.r_[np.zeros(25), np.full(5, 2.0)]
    >>> m = SyntheticDiD().fit(y[:25], Y[:25, 1:], Y[25:, 1:])
    >>> round(float(np.mean(y[25:] - m.counterfactual_post_)), 6)
    2.0
    """

    name = "sdid"
    min_pre_periods = 3
    _parameter_constraints = {
        "zeta": [None, NON_NEGATIVE],
        "inference": [Options(*INFERENCE)],
        "n_placebo": [POSITIVE_INT],
        "seed": [SEED],
    }

    def __init__(
        self,
        *,
        zeta: float | None = None,
        inference: str = "placebo",
        n_placebo: int = 200,
        seed: int = 0,
    ) -> None:
        self.zeta = zeta
        self.inference = inference
        self.n_placebo = n_placebo
        self.seed = seed

    def __liftlab_tags__(self) -> EstimatorTags:
        # With inference="placebo" the estimator infers for itself; otherwise the readout's
        # conformal test does.
        return replace(
            super().__liftlab_tags__(),
            own_inference=self.inference == "placebo",
            donor_weights=True,
            requires_positive_level=self.inference == "placebo",
            inference_options={"placebo": {"inference": "placebo"}},
            without_own_inference={"inference": "conformal"},
        )

    def pre_fit_diagnostics(self) -> dict[str, float]:
        return {"rmse": self.pre_rmse_, "r2": self.pre_r2_}

    def _fit(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:
        self._fit_weights(Y, X0, X1)
        self.placebo_z_ = np.empty(0)
        if self.inference == "placebo" and X1.shape[0] > 0:
            self.placebo_z_ = self._placebo_z(Y.shape[1], X0, X1)

    def _placebo_z(self, n1: int, X0: np.ndarray, X1: np.ndarray) -> np.ndarray:
        """Relative test-window errors of SDID on groups of control geos read out as if treated.

        The paper's placebo variance estimator (Arkhangelsky et al. 2021, Algorithm 4) draws
        ``n1`` controls as pseudo-treated and re-estimates on the rest. Here each placebo's
        error over the window (its true effect is zero) is divided by its pre-period level, so
        geos of other sizes than the treated ones are comparable (market deviations scale with
        market size), and the treated estimate, relative to its own level, is referred to the
        distribution of these ratios. The placebos share the test window, so they carry the same
        persistent (autocorrelated) deviations as the real readout. Measured on the simulated
        world (docs/readout.md): studentising by the pre-period RMSE instead covered 0.83, the
        paper's unscaled variance 0.78, at 90%.
        """
        J, T1 = X0.shape[1], X1.shape[0]
        if J - n1 < 2:
            return np.empty(0)
        z = []
        for g in placebo_groups(J, n1, self.n_placebo, self.seed):
            rest = np.setdiff1d(np.arange(J), g)
            placebo = SyntheticDiD(zeta=self.zeta, inference="conformal")
            placebo.n_treated_ = n1
            placebo._fit_weights(X0[:, g], X0[:, rest], X1[:, rest])
            error = float((X1[:, g].mean(axis=1) - placebo.counterfactual_post_).sum())
            level = float(X0[:, g].mean())
            if level > 0:
                z.append(error / (level * T1))
        return np.asarray(z)

    def effect_inference(
        self, Y_treated_post: np.ndarray, confidence: float = 0.9
    ) -> EffectInference:
        """Cumulative effect over the test, its interval and two-sided p-value, from the placebos
        (the contract of :class:`causal.inference.EffectInference`; arguments as ``TimeBasedRegression``'s)."""
        alpha = 1.0 - check_confidence(self, confidence)
        y = treated_post_average(self, Y_treated_post)
        T1 = len(y)
        effect = float((y - self.counterfactual_post_).sum())
        z = self.placebo_z_
        if z.size < 10:
            raise ConfigError(
                f"SyntheticDiD: placebo inference needs at least 10 placebo groups, got {z.size} "
                "(too few control geos); use inference='conformal'"
            )
        level = float(self._y_pre_.mean())
        if not level > 0:
            raise DataError(
                "SyntheticDiD: placebo inference compares relative errors and needs a positive "
                "pre-period level of the treated outcome; use inference='conformal'"
            )
        scale = level * T1
        zt = abs(effect) / scale if scale > 0 else (0.0 if np.isclose(effect, 0.0) else np.inf)
        q, p = placebo_reference(z, alpha, zt)
        band = q * level * np.ones(T1)
        return EffectInference(
            effect,
            (effect - q * scale, effect + q * scale),
            p,
            self.counterfactual_post_ - band,
            self.counterfactual_post_ + band,
            f"relative placebo-in-space on {z.size} control groups (Arkhangelsky et al. 2021, Alg. 4)",
        )

    def _fit_weights(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:
        y = Y.mean(axis=1)
        self._y_pre_ = y
        T0, J = X0.shape
        T1 = X1.shape[0]
        diffs = np.diff(X0, axis=0)
        self.noise_level_ = float(diffs.std(ddof=1)) if diffs.size > 1 else 0.0
        if self.zeta is not None:
            self.zeta_ = float(self.zeta)
        else:
            self.zeta_ = float((self.n_treated_ * max(T1, 1)) ** 0.25 * self.noise_level_)
        # Unit weights; the free intercept omega_0 is profiled out by centring over time.
        w = simplex_least_squares(X0 - X0.mean(axis=0), y - y.mean(), ridge=self.zeta_**2 * T0)
        # Time weights; lambda_0 profiled out by centring over donors.
        if T1 > 0:
            A = X0.T  # (J, T0)
            b = X1.mean(axis=0)
            zeta_l = 1e-6 * self.noise_level_
            lam = simplex_least_squares(A - A.mean(axis=0), b - b.mean(), ridge=zeta_l**2 * J)
        else:
            lam = np.full(T0, 1.0 / T0)
        self.weights_, self.time_weights_ = w, lam
        self.offset_ = float(lam @ y - w @ (X0.T @ lam))
        self.counterfactual_pre_ = X0 @ w + self.offset_
        self.counterfactual_post_ = X1 @ w + self.offset_
        # Pre-period fit of the unit-weighted donors with their best level (omega_0).
        level = float(y.mean() - X0.mean(axis=0) @ w)
        resid = y - (X0 @ w + level)
        self.pre_rmse_ = float(np.sqrt(np.mean(resid**2)))
        sst = float(np.sum((y - y.mean()) ** 2))
        self.pre_r2_ = float(1 - np.sum(resid**2) / sst) if sst > 0 else float("nan")

    def refit_params(self) -> dict:
        """Parameters for refits inside inference loops: the fitted regularisation, fixed, and no
        placebos of their own (a conformal refit needs only the counterfactual)."""
        return {"zeta": self.zeta_, "inference": "conformal"}
