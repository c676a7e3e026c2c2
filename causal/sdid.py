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

import numpy as np

from causal.base import CounterfactualEstimator
from causal.errors import ConfigError
from causal.synthetic_control import simplex_least_squares


class SyntheticDiD(CounterfactualEstimator):
    r"""Synthetic difference-in-differences (the ``sdid`` estimator).

    Parameters
    ----------
    zeta : float or None, default=None
        Ridge regularisation of the unit weights; ``None`` uses the paper's
        :math:`(N_{tr} T_{post})^{1/4}\hat\sigma`. Inference refits keep the
        fitted value (see :meth:`refit_params`).

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

    def __init__(self, *, zeta: float | None = None) -> None:
        self.zeta = zeta

    def _fit(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:
        y = Y.mean(axis=1)
        T0, J = X0.shape
        T1 = X1.shape[0]
        diffs = np.diff(X0, axis=0)
        self.noise_level_ = float(diffs.std(ddof=1)) if diffs.size > 1 else 0.0
        if self.zeta is not None:
            if not self.zeta >= 0:
                raise ConfigError(f"SyntheticDiD: zeta must be >= 0 or None, got {self.zeta!r}")
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
        """Parameters for refits inside inference loops: the fitted regularisation, fixed."""
        return {"zeta": self.zeta_}
