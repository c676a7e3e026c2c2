r"""Conformal and placebo inference for counterfactual estimators without their own.

Conformal inference (Chernozhukov, Wüthrich & Zhu 2021), as GeoLift uses it
through augsynth: to test the sharp null that the effect is :math:`\tau_0` in
every test period, subtract :math:`\tau_0` from the treated test-period
outcomes, refit the estimator on the *whole* period (pre and test) as if
nothing happened, and compare a statistic of the test-period residuals with
the same statistic on permuted residuals. Inverting the test over
:math:`\tau_0` gives the interval for the average effect.

Permutations. GeoLift's default draws i.i.d. permutations of the residuals,
which assumes exchangeable residuals in time. Real geo data are
autocorrelated (the simulated world has AR(1) deviations with
:math:`\rho=0.8`), and i.i.d. permutations then break up runs of same-signed
residuals and understate the spread of a window sum: intervals too narrow,
false positives too frequent. CWZ's *moving-block* permutations (cyclic
shifts of time) keep the dependence inside the window; ``permutation="iid"``
reproduces GeoLift. ``"block"`` shifts the whole period (all :math:`T`
shifts). The default, ``"recent"``, runs the same moving-block test on the
*recent segment* only: the last :math:`W = 16 T_1` periods (the window and
the :math:`15 T_1` before it; the whole period when shorter), with all
:math:`W` cyclic shifts inside the segment and the residuals centred on the
segment's mean. The estimator is still refitted on the whole period; only
the reference distribution is local.

Why the recent segment. (1) A synthetic control fitted over a long history
leaves residuals that drift when the treated geos grow at a rate no convex
mix of donors follows (or their scale grows with their level); with a drift
the last block, where the window always is, is an extreme block of the whole
period, and the test over-rejects at the end of a long history. (2) A design
search (:mod:`experiments.design`) picks the treated geos whose history
happened to be calm; against that whole calm history a later window looks
extreme too often (docs/design.md). Within the recent segment the window is
compared with periods of about the same level and volatility. The test is
the CWZ moving-block test on a shorter series, so it keeps its justification
(stationary, weakly dependent residuals, now only over the segment) and
pays with a noisier reference (fewer independent blocks). When the history
is no longer than :math:`W` it is exactly ``"block"``.

Statistic. ``"mean"`` (default) is :math:`|\sum_{t\in post} \hat u_t|/\sqrt{T_1}`,
the statistic for the average effect, the quantity reported. ``"abs"`` is
augsynth's default :math:`\sum_{t\in post}|\hat u_t|/\sqrt{T_1}` (``q = 1``),
which tests the whole path of effects and is kept for parity with GeoLift.

Placebo checks: in space (each donor in turn treated as if it were the test
geo, the real treated geos left out) and in time (the test window moved back
into the pre-period); each gives a distribution of standardised placebo
effects and a rank p-value.

References
----------
Chernozhukov, V., Wüthrich, K. & Zhu, Y. (2021). An exact and robust conformal
inference method for counterfactual and synthetic controls. JASA 116(536),
1849-1864.
Abadie, A., Diamond, A. & Hainmueller, J. (2010). Synthetic control methods for
comparative case studies. JASA 105(490), 493-505 (placebo tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal.base import CounterfactualEstimator, clone, is_fitted
from causal.errors import ConfigError
from causal.inference import EffectInference

PERMUTATIONS = ("recent", "block", "iid")
# The default permutations, and the length of their recent segment in test lengths.
DEFAULT_PERMUTATION = "recent"
RECENT_MULTIPLE = 16
STATISTICS = ("mean", "abs")


def refit_clone(estimator: CounterfactualEstimator) -> CounterfactualEstimator:
    """An unfitted copy for refits in inference loops.

    A fitted estimator that chose a tuning parameter by cross-validation
    returns it from ``refit_params()`` (e.g. the ridge penalty of ``asc``; empty
    for most estimators); refits keep it fixed rather than re-running the
    cross-validation each time.
    """
    new = clone(estimator)
    if is_fitted(estimator):
        new.set_params(**estimator.refit_params())
    return new


class ConformalTest:
    """The conformal test of one estimator on one treated series, reusable for many nulls.

    Parameters
    ----------
    estimator : CounterfactualEstimator
        Fitted on the real data (its tuning parameters are kept in refits).
    y_pre, y_post : ndarray (T0,), (T1,)
        Treated average outcomes.
    X_pre, X_post : ndarray (T0, J), (T1, J)
        Donor outcomes.
    permutation : {"recent", "block", "iid"}, default="recent"
        Moving blocks within the recent segment (all its cyclic shifts),
        moving blocks over the whole period (all T shifts), or i.i.d.
        permutations (GeoLift).
    statistic : {"mean", "abs"}, default="mean"
    n_permutations : int, default=1000
        Number of i.i.d. permutations.
    seed : int, default=0
    recent_periods : int, optional
        Length ``W`` of the recent segment; default ``RECENT_MULTIPLE`` test
        lengths, at most the whole period.
    """

    def __init__(
        self,
        estimator,
        y_pre,
        y_post,
        X_pre,
        X_post,
        *,
        permutation: str = DEFAULT_PERMUTATION,
        statistic: str = "mean",
        n_permutations: int = 1000,
        seed: int = 0,
        recent_periods: int | None = None,
    ) -> None:
        if permutation not in PERMUTATIONS:
            raise ConfigError(f"permutation must be one of {PERMUTATIONS}, got {permutation!r}")
        if statistic not in STATISTICS:
            raise ConfigError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
        self.estimator, self.statistic, self.permutation = estimator, statistic, permutation
        self.y_pre, self.y_post, self.X_pre, self.X_post = y_pre, y_post, X_pre, X_post
        T1 = len(y_post)
        T = len(y_pre) + T1
        post = np.arange(T - T1, T)
        # The periods the permutations draw from: the whole period, or its last W.
        self.segment_start = 0
        if permutation == "block":
            # Shift j moves period t to (t + j) mod T; the identity (j = 0) comes first.
            self.index = (post[None, :] + np.arange(T)[:, None]) % T
        elif permutation == "recent":
            W = RECENT_MULTIPLE * T1 if recent_periods is None else int(recent_periods)
            W = max(T1 + 1, min(W, T))
            self.segment_start = T - W
            # The same cyclic shifts, inside the segment.
            self.index = (
                self.segment_start + (np.arange(W - T1, W)[None, :] + np.arange(W)[:, None]) % W
            )
        else:
            rng = np.random.default_rng(seed)
            draws = np.array([rng.permutation(T)[T - T1 :] for _ in range(n_permutations)])
            self.index = np.vstack([post[None, :], draws])

    @property
    def n_periods(self) -> int:
        return len(self.y_pre) + len(self.y_post)

    def residuals(self, tau0: float) -> np.ndarray:
        """Residuals of the whole-period refit under the null of effect ``tau0`` in every test period."""
        y = np.concatenate([self.y_pre, self.y_post - tau0])
        X = np.vstack([self.X_pre, self.X_post])
        est = refit_clone(self.estimator).fit(y, X, None)
        return y - est.counterfactual_pre_

    def statistics(self, u: np.ndarray) -> np.ndarray:
        """The statistic of every permutation (the identity first) for residuals ``u``.

        ``u`` is one residual series (T,) or a stack of them (K, T); the result
        is (P,) or (K, P).
        """
        if self.segment_start > 0:
            # Centred on the segment (the refit's level is the whole period's).
            u = u - u[..., self.segment_start :].mean(axis=-1, keepdims=True)
        block = u[..., self.index]
        T1 = block.shape[-1]
        if self.statistic == "mean":
            return np.abs(block.sum(axis=-1)) / np.sqrt(T1)
        return np.abs(block).sum(axis=-1) / np.sqrt(T1)

    @staticmethod
    def p_values(stats: np.ndarray) -> np.ndarray:
        """Share of permutations whose statistic is at least the observed one (column 0), per row."""
        # A relative tolerance keeps ties (e.g. residuals exactly zero) counted as ties.
        return np.mean(stats >= stats[..., :1] * (1 - 1e-10), axis=-1)

    def p_value(self, tau0: float) -> float:
        """Share of permutations whose statistic is at least the observed one (identity included)."""
        return float(self.p_values(self.statistics(self.residuals(tau0))))

    def interval(
        self, estimate: float, alpha: float, scale: float, *, tol: float = 1e-3
    ) -> tuple[float, float]:
        """Per-period effects ``tau0`` not rejected at ``alpha``: the test inverted.

        Starts from the estimate or, if that is rejected (the refit under a
        null can move the residuals' centre), from the accepted points of a
        grid of +-20 ``scale`` around it; then searches outward by doubling
        steps of ``scale`` and bisects each edge to ``tol * scale``. If no
        point is accepted the interval is ``(nan, nan)``.
        """
        scale = scale if scale > 0 else max(abs(estimate), 1.0)
        if self.p_value(estimate) > alpha:
            low_in = high_in = estimate
        else:
            grid = estimate + scale * np.linspace(-20.0, 20.0, 81)
            ok = [t for t in grid if self.p_value(t) > alpha]
            if not ok:
                return float("nan"), float("nan")
            low_in, high_in = min(ok), max(ok)
        ends = []
        for sign, inside in ((-1.0, low_in), (1.0, high_in)):
            step = scale
            outside = inside + sign * step
            for _ in range(60):
                if self.p_value(outside) > alpha:
                    inside, step = outside, step * 2.0
                    outside = inside + sign * step
                else:
                    break
            while abs(outside - inside) > tol * scale:
                mid = 0.5 * (inside + outside)
                if self.p_value(mid) > alpha:
                    inside = mid
                else:
                    outside = mid
            ends.append(inside)
        return ends[0], ends[1]


def conformal_inference(
    estimator: CounterfactualEstimator,
    y_pre: np.ndarray,
    X_pre: np.ndarray,
    y_post: np.ndarray,
    X_post: np.ndarray,
    *,
    alpha: float = 0.1,
    permutation: str = DEFAULT_PERMUTATION,
    statistic: str = "mean",
    n_permutations: int = 1000,
    seed: int = 0,
    widen: float = 1.0,
) -> EffectInference:
    """Conformal inference on the average effect over the test period.

    Parameters
    ----------
    estimator : CounterfactualEstimator
        Fitted on ``(y_pre, X_pre, X_post)``.
    y_pre, y_post : ndarray
        The treated *average* series (the estimators' convention).
    X_pre, X_post : ndarray
        Donor outcomes.
    alpha : float, default=0.1
        One minus the confidence level.
    permutation : {"recent", "block", "iid"}, default="recent"
        Moving blocks within the recent segment (default) or over the whole
        period, both robust to autocorrelation, or GeoLift's i.i.d.
    statistic : {"mean", "abs"}, default="mean"
    n_permutations : int, default=1000
        i.i.d. permutations drawn (ignored for moving blocks).
    seed : int, default=0
    widen : float, default=1.0
        At least 1: the test's noise is taken as ``widen`` times what the
        permutations measure (e.g. a treated set a design search chose for its
        calm history, :mod:`experiments.readout_selection`). The interval's
        edges move ``widen`` times as far from the estimate, the p-value is the
        test's at ``estimate * (1 - 1/widen)`` (the null mapped the same way, so
        the p-value and the interval agree), the pointwise band is ``widen``
        times as wide. For a fixed-weight fit this is the test with every
        permuted statistic multiplied by ``widen``; scaling the statistics
        themselves is not used because shifts overlapping the test window carry
        its effect and would, once scaled, never reject.

    Returns
    -------
    EffectInference
        ``effect`` and ``effect_ci`` are sums over the test periods of the
        treated-average effect. ``counterfactual_lo/hi`` is a pointwise band:
        the counterfactual plus/minus the ``1 - alpha`` quantile of the
        absolute whole-period residuals under the null at the estimate
        (a full-conformal prediction interval for one period).

    References
    ----------
    Chernozhukov, Wüthrich & Zhu (2021), JASA 116(536), 1849-1864.
    """
    y_pre, y_post = np.asarray(y_pre, float).ravel(), np.asarray(y_post, float).ravel()
    X_pre, X_post = np.asarray(X_pre, float), np.asarray(X_post, float)
    T1 = len(y_post)
    test = ConformalTest(
        estimator,
        y_pre,
        y_post,
        X_pre,
        X_post,
        permutation=permutation,
        statistic=statistic,
        n_permutations=n_permutations,
        seed=seed,
    )
    if not (np.isfinite(widen) and widen >= 1.0):
        raise ConfigError(f"widen must be a finite number >= 1, got {widen}")
    cf = np.asarray(estimator.counterfactual_post_, float)
    tau_hat = float(np.mean(y_post - cf))
    p = test.p_value(tau_hat * (1.0 - 1.0 / widen))
    pre_resid = y_pre - np.asarray(estimator.counterfactual_pre_, float)
    scale = float(np.std(pre_resid)) / np.sqrt(T1) + 1e-12
    lo, hi = test.interval(tau_hat, alpha, scale)
    lo, hi = tau_hat + widen * (lo - tau_hat), tau_hat + widen * (hi - tau_hat)
    u = test.residuals(tau_hat)
    q = float(np.quantile(np.abs(u), 1 - alpha)) * widen
    n_perm = test.index.shape[0]
    kind = {
        "block": "moving-block (all cyclic shifts)",
        "iid": "i.i.d.",
        "recent": f"moving-block (all cyclic shifts of the last {n_perm} periods)",
    }[permutation]
    method = (
        f"conformal inference (Chernozhukov, Wuthrich & Zhu 2021), {kind} permutations of "
        f"whole-period residuals, {n_perm} permutations, '{statistic}' statistic"
    )
    if widen != 1.0:
        method += f", widened x{widen:.2f}"
    return EffectInference(tau_hat * T1, (lo * T1, hi * T1), p, cf - q, cf + q, method)


@dataclass
class PlaceboResult:
    """A placebo check: standardised placebo effects against the real one.

    Attributes
    ----------
    kind : str
        ``"space"`` or ``"time"``.
    labels : list of str
        Donor geo (space) or first placebo period index (time) of each placebo.
    effects : ndarray
        Mean test-window gap of each placebo, in outcome units per period.
    scores : ndarray
        ``effects`` divided by the placebo's pre-period RMSE.
    actual_score : float
        The real effect's score.
    p_value : float
        ``(1 + #{|score| >= |actual|}) / (n + 1)``, two-sided.
    """

    kind: str
    labels: list
    effects: np.ndarray
    scores: np.ndarray
    actual_score: float

    @property
    def p_value(self) -> float:
        n = len(self.scores)
        if n == 0:
            return float("nan")
        return float(
            (1 + np.sum(np.abs(self.scores) >= abs(self.actual_score) * (1 - 1e-10))) / (n + 1)
        )

    def to_dict(self) -> dict:
        # JSON has no NaN: no placebos (too little history) is a null p-value.
        p = self.p_value
        actual = self.actual_score
        return {
            "kind": self.kind,
            "labels": [str(x) for x in self.labels],
            "effects": self.effects.tolist(),
            "scores": self.scores.tolist(),
            "actual_score": actual if np.isfinite(actual) else None,
            "p_value": p if np.isfinite(p) else None,
        }


def _score(estimator, y_pre, X_pre, y_post, X_post) -> tuple[float, float]:
    est = refit_clone(estimator).fit(y_pre, X_pre, X_post)
    gap = float(np.mean(y_post - est.counterfactual_post_))
    rmse = float(np.sqrt(np.mean((y_pre - est.counterfactual_pre_) ** 2)))
    return gap, gap / rmse if rmse > 0 else np.inf * np.sign(gap)


def placebo_in_space(
    estimator: CounterfactualEstimator,
    y_pre: np.ndarray,
    X_pre: np.ndarray,
    y_post: np.ndarray,
    X_post: np.ndarray,
    labels: list[str],
    *,
    max_placebos: int | None = None,
) -> PlaceboResult:
    """Each donor in turn as a placebo treated unit, the other donors as its controls.

    ``estimator`` is fitted on the real data (its score is the reference).
    ``max_placebos`` keeps the first donors only (by the order given).
    """
    y_pre, y_post = np.asarray(y_pre, float).ravel(), np.asarray(y_post, float).ravel()
    actual_gap = float(np.mean(y_post - estimator.counterfactual_post_))
    actual_rmse = float(np.sqrt(np.mean((y_pre - estimator.counterfactual_pre_) ** 2)))
    actual = actual_gap / actual_rmse if actual_rmse > 0 else np.inf * np.sign(actual_gap)
    J = X_pre.shape[1]
    effects, scores, used = [], [], []
    order = range(J) if max_placebos is None else range(min(J, max_placebos))
    for j in order:
        if J < 2:
            break
        others = np.arange(J) != j
        if np.ptp(X_pre[:, j]) == 0:
            continue  # a constant donor cannot be a placebo treated series
        # An estimator with per-unit inputs (covariate predictors) re-arranges them for the placebo.
        base = estimator.placebo_of(j)
        g, s = _score(base, X_pre[:, j], X_pre[:, others], X_post[:, j], X_post[:, others])
        effects.append(g)
        scores.append(s)
        used.append(labels[j])
    return PlaceboResult("space", used, np.array(effects), np.array(scores), float(actual))


def placebo_in_time(
    estimator: CounterfactualEstimator,
    y_pre: np.ndarray,
    X_pre: np.ndarray,
    test_length: int,
    *,
    min_pre: int | None = None,
    max_placebos: int = 20,
    actual_score: float = float("nan"),
) -> PlaceboResult:
    """The test window moved back into the pre-period, in steps of its length.

    Each placebo fits on the periods before its fake window (at least
    ``min_pre``, by default the larger of the estimator's minimum and the
    window length) and scores the gap in the fake window.
    """
    y_pre = np.asarray(y_pre, float).ravel()
    T0 = len(y_pre)
    min_pre = min_pre or max(estimator.min_pre_periods, test_length)
    effects, scores, starts = [], [], []
    start = T0 - test_length
    while start >= min_pre and len(starts) < max_placebos:
        g, s = _score(
            estimator,
            y_pre[:start],
            X_pre[:start],
            y_pre[start : start + test_length],
            X_pre[start : start + test_length],
        )
        effects.append(g)
        scores.append(s)
        starts.append(start)
        start -= test_length
    return PlaceboResult("time", starts, np.array(effects), np.array(scores), float(actual_score))
