r"""Synthetic control with covariate predictors: Abadie's V-weighted predictor matching.

The classic synthetic control (Abadie & Gardeazabal 2003; Abadie, Diamond &
Hainmueller 2010, the R package ``Synth``) chooses donor weights that match
*predictors* of the outcome (covariate averages, outcome values in chosen
pre-period years) rather than the whole outcome path. With :math:`X_1`
(:math:`k`) the treated unit's predictors and :math:`X_0` (:math:`k \times J`)
the donors', each row scaled by its standard deviation across units,

.. math:: W(V) = \arg\min_{w \in \Delta} (X_1 - X_0 w)^\top V (X_1 - X_0 w),

for a diagonal, non-negative :math:`V` summing to one (the predictors'
importance), and :math:`V` itself minimises the pre-period outcome fit,

.. math:: V^* = \arg\min_V \sum_{t \le T_0} \big(y_{1t} - \textstyle\sum_j W_j(V) y_{jt}\big)^2

(the nested optimisation of ``Synth``). The outer problem is not convex;
as ``Synth``, :math:`V = |x| / \sum |x|` is searched from equal weights, here
by Powell's method, Nelder-Mead and BFGS in turn, keeping the best. On
California's Proposition 99 this reproduces Abadie et al.'s published
weights (Utah .334, Nevada .234, Montana .199, Colorado .164, Connecticut
.069) to within .003 (``tests/test_readout_parity.py``). The counterfactual is
:math:`\sum_j W_j y_{jt}` (no level shift).

The predictors are per unit, so the estimator is given them at construction
(``predictors``: a :math:`k \times (1 + J)` matrix, the treated unit first,
then the donors in the order of the outcome columns); :meth:`placebo_of` makes
the estimator for a donor read out as if treated, as placebo checks need.

References
----------
Abadie, A., Diamond, A. & Hainmueller, J. (2010). Synthetic control methods for
comparative case studies. JASA 105(490), 493-505.
Abadie, A., Diamond, A. & Hainmueller, J. (2011). Synth: an R package for
synthetic control methods in comparative case studies. J. Stat. Softw. 42(13).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import minimize

from causal.base import SEED, CounterfactualEstimator, EstimatorTags, data_scale, is_fitted
from causal.errors import ConfigError, DataError
from causal.synthetic_control import _SCFitMixin, simplex_least_squares

OUTER_METHODS = ("Powell", "Nelder-Mead", "BFGS")


def _v_of(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    total = a.sum()
    return a / total if total > 0 else np.full(len(a), 1.0 / len(a))


class PredictorSyntheticControl(_SCFitMixin, CounterfactualEstimator):
    """Synthetic control matching V-weighted covariate predictors (Abadie's ``Synth``).

    Parameters
    ----------
    predictors : ndarray (k, 1 + J)
        Predictor values, treated unit first, then the donors (same order as
        the outcome's donor columns). Rows are scaled by their sd across units.
    v : ndarray (k,) or None, default=None
        Fixed predictor weights; ``None`` chooses them by the nested optimisation.
    methods : tuple of str, default=("Powell", "Nelder-Mead", "BFGS")
        :func:`scipy.optimize.minimize` methods tried for the outer problem.
    seed : int, default=0
        Kept for the estimator contract (the search is deterministic).
    predictor_names : list of str or None
        Labels of the predictors (for ``v_`` reporting).

    Attributes
    ----------
    weights_ : ndarray (J,)
    v_ : ndarray (k,)
        Predictor weights (diagonal of V), summing to one.
    predictor_balance_ : ndarray (k, 2)
        Treated and synthetic predictor values (unscaled).
    counterfactual_pre_, counterfactual_post_ : ndarray
    pre_rmse_, pre_r2_, l2_imbalance_, scaled_l2_imbalance_ : float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(10, 1, (20, 5)).cumsum(axis=0)
    >>> y = 0.6 * X[:, 1] + 0.4 * X[:, 3]
    >>> P = np.vstack([np.r_[y.mean(), X.mean(axis=0)], np.r_[y[-1], X[-1]]])
    >>> est = PredictorSyntheticControl(predictors=P).fit(y[:15], X[:15], X[15:])
    >>> bool(np.abs(est.counterfactual_pre_ - y[:15]).max() < 1.0)
    True
    """

    name = "sc-predictors"
    min_pre_periods = 2
    fixed_effects = False
    _parameter_constraints = {"methods": [tuple, list], "seed": [SEED]}

    def __liftlab_tags__(self) -> EstimatorTags:
        # The predictors describe the treated unit: a placebo reorders them (placebo_of).
        return replace(super().__liftlab_tags__(), per_unit_params=True)

    def __init__(
        self,
        *,
        predictors: np.ndarray | None = None,
        v: np.ndarray | None = None,
        methods: tuple[str, ...] = OUTER_METHODS,
        seed: int = 0,
        predictor_names: list[str] | None = None,
    ) -> None:
        self.predictors = predictors
        self.v = v
        self.methods = methods
        self.seed = seed
        self.predictor_names = predictor_names

    def _scaled(self, J: int) -> tuple[np.ndarray, np.ndarray]:
        if self.predictors is None:
            raise ConfigError("PredictorSyntheticControl: no predictors given")
        P = np.asarray(self.predictors, float)
        if P.ndim != 2 or P.shape[1] != J + 1:
            raise DataError(
                f"PredictorSyntheticControl: predictors have shape {P.shape}; expected (k, {J + 1}) "
                "(the treated unit, then every donor)"
            )
        if not np.isfinite(P).all():
            raise DataError("PredictorSyntheticControl: predictors contain NaN or infinite values")
        sd = P.std(axis=1, ddof=1)
        P = P / np.where(sd > 0, sd, 1.0)[:, None]
        return P[:, 0], P[:, 1:]

    def _fit(self, Y: np.ndarray, X0: np.ndarray, X1: np.ndarray) -> None:
        y = Y.mean(axis=1)
        p1, P0 = self._scaled(X0.shape[1])
        k = len(p1)

        def weights(v: np.ndarray) -> np.ndarray:
            s = np.sqrt(v)
            return simplex_least_squares(P0 * s[:, None], p1 * s)

        # The outer optimisers stop on absolute tolerances: measure the fit in units of the
        # data's own size so the chosen V (and the weights) do not depend on the outcome's units.
        unit = data_scale(Y, X0) ** 2

        def loss(x: np.ndarray) -> float:
            w = weights(_v_of(x))
            return float(np.mean((y - X0 @ w) ** 2)) / unit

        if self.v is not None:
            v = np.asarray(self.v, float)
            if v.shape != (k,) or np.any(v < 0) or not v.sum() > 0:
                raise ConfigError(
                    f"PredictorSyntheticControl: v must be {k} non-negative weights, got {self.v!r}"
                )
            v = v / v.sum()
        elif k == 1:
            v = np.ones(1)
        else:
            best = None
            for method in self.methods:
                res = minimize(loss, np.full(k, 1.0 / k), method=method)
                if best is None or res.fun < best.fun:
                    best = res
            v = _v_of(best.x)
        w = weights(v)
        self.v_, self.weights_, self.intercept_ = v, w, 0.0
        P = np.asarray(self.predictors, float)
        self.predictor_balance_ = np.column_stack([P[:, 0], P[:, 1:] @ w])
        self.counterfactual_pre_ = X0 @ w
        self.counterfactual_post_ = X1 @ w
        self._diagnostics(y, X0, w)

    def refit_params(self) -> dict:
        """Refits inside inference loops keep the fitted V (the outer optimisation is not re-run)."""
        return {"v": self.v_}

    def placebo_of(self, j: int) -> PredictorSyntheticControl:
        """An unfitted copy with donor ``j`` as the treated unit and the others as donors."""
        P = np.asarray(self.predictors, float)
        order = [j + 1] + [c for c in range(1, P.shape[1]) if c != j + 1]
        return PredictorSyntheticControl(
            predictors=P[:, order],
            v=self.v_ if is_fitted(self) else self.v,
            methods=self.methods,
            seed=self.seed,
            predictor_names=self.predictor_names,
        )
