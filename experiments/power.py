r"""Power of a geo-experiment design by simulation on history.

For a treated set, a test length and each of many historical windows, the
effect :math:`e` is injected into the treated geos over the window
(:math:`y_{it} \to (1+e)\,y_{it}`), the window is read out exactly as
:func:`experiments.readout.read_out` reads out a real test (same estimator,
pre-period = every period before the window, same inference, same decision),
and the share of windows in which the readout detects the effect is the power
at :math:`e`. At :math:`e = 0` that share is the false positive rate.

A detection is a rejection of "no effect" at level ``alpha`` (the readout's
p-value, two-sided, at most ``alpha``: the rule by which
:class:`~causal.conformal.ConformalTest` inverts its interval) with the
estimated effect of the injected sign.

Fast by construction
--------------------
What does not change with the injected effect is computed once per candidate
and window:

* estimators with their own inference (``tbr``, ``did``, ``bsts``) are fitted
  once on the pre-period; only ``effect_inference`` sees the injected test
  outcomes, so it alone is re-run per effect size;
* the conformal inference of the synthetic-control family refits the weights on
  the whole window under the null, so the weights *do* move with the effect.
  For ``sc`` and ``asc`` the refit is the simplex-constrained least squares
  :math:`\min_{w\ge 0, 1'w=1}\|A w - b_0 - e\, b_1\|^2`, whose solution is
  piecewise linear in :math:`e` (a parametric quadratic programme). One NNLS
  solve at :math:`e=0` gives the active set; following the KKT conditions
  (Best 1996; the homotopy of Osborne, Presnell & Turlach 2000) gives the exact
  weights and residuals for *every* effect size at the cost of a few small
  linear solves, and the permutation statistics of all effect sizes are then
  one vectorised array operation. ``asc``'s ridge correction with the penalty
  held fixed (as the readout's refits hold it) is a fixed linear map of those
  residuals.

:func:`window_decisions` with ``method="refit"`` runs the readout's own
computation (a refit per effect size) and is what the fast path is tested
against.

References
----------
Chernozhukov, V., Wüthrich, K. & Zhu, Y. (2021). An exact and robust conformal
inference method for counterfactual and synthetic controls. JASA 116(536), 1849-1864.
Osborne, M. R., Presnell, B. & Turlach, B. A. (2000). A new approach to variable
selection in least squares problems. IMA J. Numer. Anal. 20(3), 389-403.
Vaver, J. & Koehler, J. (2011). Measuring ad effectiveness using geo experiments. Google Inc.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from causal.base import CounterfactualEstimator, clone, get_tags, make_estimator
from causal.conformal import DEFAULT_PERMUTATION, ConformalTest, refit_clone
from causal.errors import ConfigError
from experiments.design_defaults import min_pre_periods

# The readout's default inference for estimators without their own (experiments.readout.INFERENCE).
PERMUTATION, STATISTIC = DEFAULT_PERMUTATION, "mean"


def rejects(p_value: np.ndarray | float, alpha: float) -> np.ndarray:
    """The readout's decision: "no effect" is rejected when the p-value is at most ``alpha``."""
    return np.asarray(p_value) <= alpha


def simulation_windows(
    n_periods: int, duration: int, *, n_windows: int = 20, min_pre: int = 28
) -> np.ndarray:
    """First periods of the historical test windows, latest first.

    The windows of ``duration`` periods end at most at the last period and
    start after at least ``min_pre`` periods of pre-period; ``n_windows`` of
    them are spread evenly over the admissible starts (all of them if fewer).

    Raises
    ------
    ConfigError
        When no window fits: the test is longer than the history allows.
    """
    last = n_periods - duration
    if duration < 1:
        raise ConfigError(f"test length {duration} must be at least 1 period")
    if last < min_pre:
        raise ConfigError(
            f"a test of {duration} periods needs at least {min_pre + duration} periods of history "
            f"({min_pre} to fit on), but the panel has {n_periods}"
        )
    starts = np.arange(last, min_pre - 1, -1)
    if len(starts) > n_windows:
        pick = np.unique(np.round(np.linspace(0, len(starts) - 1, n_windows)).astype(int))
        starts = starts[pick]
    return starts


def default_min_pre(
    estimator: CounterfactualEstimator, duration: int, n_periods: int, period: str = "day"
) -> int:
    """Shortest pre-period a simulated window gets: four test lengths, at least four weeks (eight for weekly data).

    Windows spread over the whole history carry the most independent
    information about the readout's noise; their shorter pre-periods make the
    simulated power slightly conservative against a readout fitted on the
    whole history (``benchmarks/study_design_power.py``).
    """
    return min_pre_periods(duration, period, estimator.min_pre_periods)


# -- one window ----------------------------------------------------------------
@dataclass
class WindowDecisions:
    """The readout's outcome in one historical window for each effect size.

    Attributes
    ----------
    lifts : ndarray (K,)
    p_values : ndarray (K,)
    effects : ndarray (K,)
        Estimated effect on the treated average, summed over the test.
    baseline : float
        Observed treated-average total over the window before injection.
    """

    lifts: np.ndarray
    p_values: np.ndarray
    effects: np.ndarray
    baseline: float

    def detections(self, alpha: float) -> np.ndarray:
        sign_ok = (self.lifts == 0) | (np.sign(self.effects) == np.sign(self.lifts))
        return rejects(self.p_values, alpha) & sign_ok


def window_decisions(
    estimator: CounterfactualEstimator,
    Y_pre: np.ndarray,
    Y_post: np.ndarray,
    X_pre: np.ndarray,
    X_post: np.ndarray,
    lifts: np.ndarray,
    alpha: float,
    *,
    method: str = "fast",
    seed: int = 0,
) -> WindowDecisions:
    """Read out one window for every injected lift, as :func:`~experiments.readout.read_out` does.

    Parameters
    ----------
    estimator : CounterfactualEstimator
        Unfitted; cloned here.
    Y_pre, Y_post : ndarray (T0, N1), (T1, N1)
        Treated geos' outcomes before injection.
    X_pre, X_post : ndarray (T0, J), (T1, J)
        Donors' outcomes.
    lifts : ndarray (K,)
        Relative effects injected into the treated geos over the window.
    alpha : float
        One minus the readout's confidence.
    method : {"fast", "refit"}, default="fast"
        ``refit`` repeats the readout's computation for every lift; ``fast``
        reuses what does not change with the lift (module docstring).
    seed : int, default=0
        The readout's seed (used by i.i.d. permutations only).
    """
    lifts = np.asarray(lifts, dtype=float)
    fitted = clone(estimator).fit(Y_pre, X_pre, X_post)
    y_pre, y_post = Y_pre.mean(axis=1), Y_post.mean(axis=1)
    cf = np.asarray(fitted.counterfactual_post_, dtype=float)
    baseline = float(y_post.sum())
    K = len(lifts)
    p = np.empty(K)
    effects = np.empty(K)
    if get_tags(fitted).own_inference:
        # Fitted on the pre-period only: nothing but the inference sees the injection.
        for k, e in enumerate(lifts):
            inf = fitted.effect_inference(Y_post * (1.0 + e), confidence=1.0 - alpha)
            p[k], effects[k] = inf.p_value, inf.effect
        return WindowDecisions(lifts, p, effects, baseline)
    # The readout's point estimate comes from the pre-period fit, so it is linear in the lift.
    effects = ((1.0 + lifts)[:, None] * y_post[None, :] - cf[None, :]).sum(axis=1)
    test = ConformalTest(
        fitted,
        y_pre,
        y_post,
        X_pre,
        X_post,
        permutation=PERMUTATION,
        statistic=STATISTIC,
        seed=seed,
    )
    U = None
    if method == "fast":
        U = fitted.null_refit_residuals(y_pre, y_post, np.vstack([X_pre, X_post]), lifts)
        if U is None:
            U = _linear_residuals(test, fitted, y_pre, y_post, lifts)
    if U is None:
        for k, e in enumerate(lifts):
            t = ConformalTest(
                fitted,
                y_pre,
                y_post * (1.0 + e),
                X_pre,
                X_post,
                permutation=PERMUTATION,
                statistic=STATISTIC,
                seed=seed,
            )
            p[k] = t.p_value(0.0)
        return WindowDecisions(lifts, p, effects, baseline)
    # The readout's own statistic and p-value, for every lift at once.
    return WindowDecisions(lifts, test.p_values(test.statistics(U)), effects, baseline)


def _linear_residuals(test: ConformalTest, fitted, y_pre, y_post, lifts) -> np.ndarray | None:
    """Estimators whose whole-window refit is linear in the treated series: two refits give every lift.

    Linearity is checked with a third refit at the largest lift; otherwise None (refit each lift).
    """
    X = np.vstack([test.X_pre, test.X_post])

    def resid(e: float) -> np.ndarray:
        y = np.concatenate([y_pre, y_post * (1.0 + e)])
        est = refit_clone(fitted).fit(y, X, None)
        return y - est.counterfactual_pre_

    u0, u1 = resid(0.0), resid(1.0)
    e_chk = float(np.max(np.abs(lifts))) if len(lifts) else 0.0
    if e_chk == 0:
        return np.repeat(u0[None, :], len(lifts), axis=0)
    check = resid(e_chk)
    pred = u0 + e_chk * (u1 - u0)
    if not np.allclose(check, pred, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(check).max()))):
        return None
    return u0[None, :] + lifts[:, None] * (u1 - u0)[None, :]


# -- one candidate -------------------------------------------------------------
@dataclass
class PowerResult:
    """Simulated power of one design (treated set and test length).

    Attributes
    ----------
    treated : tuple of str
    duration : int
    lifts : ndarray (K,)
        The effect-size grid.
    power : ndarray (K,)
        Power against each lift: the share of windows in which the readout
        detects it, averaged over injecting it with either sign (the rate at
        which a lift of that size is detected whatever the history's drift).
    power_injected : ndarray (K,)
        The detection rate of each lift injected with its own sign only.
    false_positive_rate : float
        Rejection rate with no effect injected.
    mde : float or None
        Smallest lift (on a fine grid up to the largest lift simulated) whose
        power reaches the target; None when none does.
    mde_power : float or None
        The simulated power at ``mde``.
    baseline : float
        Mean treated total (all treated geos) over a window, before injection.
    n_windows : int
    window_starts : ndarray
        Positions of the windows' first periods.
    detections : ndarray (n_windows, K) of bool
    mde_slope : float or None
        Slope of the power curve at the MDE (for the MDE's standard error).
    fine_lifts, fine_power : ndarray, optional
        The power curve on the fine grid the MDE is found on (lifts >= 0).
    selection_factor : float
        How much the readout will widen the interval of this treated set for its calm history
        (:mod:`experiments.readout_selection`; 1.0 when it does not act). The lifts, the MDE and
        its slope are already scaled by it (:meth:`widened`).
    """

    treated: tuple[str, ...]
    duration: int
    lifts: np.ndarray
    power: np.ndarray
    false_positive_rate: float
    mde: float | None
    mde_power: float | None
    baseline: float
    n_windows: int
    window_starts: np.ndarray = field(repr=False)
    detections: np.ndarray = field(repr=False)
    power_injected: np.ndarray | None = field(default=None, repr=False)
    mde_slope: float | None = None
    fine_lifts: np.ndarray | None = field(default=None, repr=False)
    fine_power: np.ndarray | None = field(default=None, repr=False)
    selection_factor: float = 1.0

    def widened(self, factor: float) -> PowerResult:
        """The power of the same design read out with its interval widened ``factor`` times.

        A readout whose interval is ``factor`` times wider around the same estimate detects a lift
        ``factor`` times larger as often as the plain readout detects the lift itself (the effect is
        linear in the lift; exact up to the estimate's own noise, which the widening does not move).
        So on the same lift grid the power is the plain curve's at ``lift / factor``, and the MDE is
        ``factor`` times the plain one. The false positive rate stays, as an upper bound (a wider
        interval rejects less often); ``detections`` stay the plain readout's.
        """
        f = float(factor)
        if not np.isfinite(f) or f < 1.0:
            raise ValueError(f"a widening factor must be finite and at least 1, got {factor}")

        def at(lifts, power):
            if power is None:
                return None
            x, y = np.asarray(lifts, float), np.asarray(power, float)
            order = np.argsort(x)
            return np.interp(x / f, x[order], y[order])

        zero = np.asarray(self.lifts) == 0
        power = at(self.lifts, self.power)
        power[zero] = np.asarray(self.power)[zero]
        return replace(
            self,
            power=power,
            power_injected=at(self.lifts, self.power_injected),
            mde=None if self.mde is None else float(self.mde * f),
            mde_slope=None if self.mde_slope is None else float(self.mde_slope / f),
            fine_power=None if self.fine_lifts is None else at(self.fine_lifts, self.fine_power),
            selection_factor=float(self.selection_factor * f),
        )

    @property
    def mde_incremental(self) -> float | None:
        return None if self.mde is None else float(self.mde * self.baseline)

    @property
    def n_effective(self) -> float:
        """Independent windows the rates rest on: overlapping windows share their test periods.

        The windows' test periods cover ``span + duration`` periods, which hold
        ``span / duration + 1`` disjoint tests; never more than the windows themselves.
        """
        st = np.asarray(self.window_starts)
        if len(st) == 0:
            return 0.0
        span = float(st.max() - st.min())
        return float(min(len(st), span / max(self.duration, 1) + 1.0))

    def rate_se(self, rate: float | None) -> float | None:
        """Monte-Carlo standard error of a rate over the windows, with :attr:`n_effective` windows.

        A binomial standard error on the effective number of windows, with the
        rate shrunk half a window towards 1/2 so a rate of 0 or 1 on few
        windows does not claim certainty.
        """
        n = self.n_effective
        if rate is None or n <= 0:
            return None
        p = (rate * n + 0.5) / (n + 1.0)
        return float(np.sqrt(p * (1 - p) / n))

    @property
    def power_se(self) -> float | None:
        """Standard error of the power at the MDE."""
        return self.rate_se(self.mde_power)

    @property
    def false_positive_rate_se(self) -> float | None:
        return self.rate_se(self.false_positive_rate)

    @property
    def mde_se(self) -> float | None:
        """Standard error of the MDE: the power's, through the slope of the power curve at the MDE."""
        se = self.power_se
        if se is None or not self.mde_slope or self.mde_slope <= 0:
            return None
        return float(se / self.mde_slope)

    def power_at(self, lift: float) -> float:
        return float(np.interp(lift, self.lifts, self.power))

    def to_dict(self) -> dict:
        return {
            "treated": list(self.treated),
            "duration_days": int(self.duration),
            "mde": self.mde,
            "mde_power": self.mde_power,
            "mde_incremental": self.mde_incremental,
            "baseline": self.baseline,
            "false_positive_rate": self.false_positive_rate,
            "power_se": self.power_se,
            "false_positive_rate_se": self.false_positive_rate_se,
            "mde_se": self.mde_se,
            "n_effective_windows": self.n_effective,
            "power_curve": [
                {"lift": float(x), "power": float(p)} for x, p in zip(self.lifts, self.power)
            ],
            "power_injected": None
            if self.power_injected is None
            else [float(p) for p in self.power_injected],
            "n_windows": self.n_windows,
            "selection_factor": self.selection_factor,
        }


def fine_grid(effect_sizes: Sequence[float], step: float = 0.0025) -> np.ndarray:
    """The user's lifts and their mirror images, plus a fine symmetric grid up to the largest, for the MDE."""
    grid = np.abs(np.asarray(effect_sizes, dtype=float))
    top = float(grid.max()) if len(grid) else 0.0
    fine = np.arange(step, top + step / 2, step)
    return np.unique(np.round(np.concatenate([grid, -grid, fine, -fine, [0.0]]), 10))


def mirrored(effect_sizes: Sequence[float]) -> np.ndarray:
    """The user's lifts and their mirror images (what the power of a lift of either sign needs)."""
    grid = np.abs(np.asarray(effect_sizes, dtype=float))
    return np.unique(np.round(np.concatenate([grid, -grid, [0.0]]), 10))


def candidate_power(
    Y: np.ndarray,
    treated: Sequence[int],
    control: Sequence[int],
    duration: int,
    starts: Sequence[int],
    effect_sizes: Sequence[float],
    *,
    estimator: str | CounterfactualEstimator = "sc",
    alpha: float = 0.1,
    power_target: float = 0.8,
    method: str = "fast",
    names: Sequence[str] | None = None,
    mde_step: float | None = 0.0025,
    seed: int = 0,
) -> PowerResult:
    """Power by simulation on history for one treated set and test length.

    Parameters
    ----------
    Y : ndarray (T, G)
        The outcome, periods x geos.
    treated, control : sequence of int
        Column positions of the treated and donor geos.
    duration : int
        Test length in periods.
    starts : sequence of int
        First period of each historical window (:func:`simulation_windows`);
        each window's pre-period is every period before it, as in the readout.
    effect_sizes : sequence of float
        The lifts reported in the power curve.
    estimator, alpha, power_target, method, seed
        As :func:`window_decisions`; ``power_target`` defines the MDE.
    names : sequence of str, optional
        Geo ids (for the result's ``treated``).
    mde_step : float or None, default=0.0025
        Step of the fine grid on which the MDE is found; None evaluates the
        effect sizes only (the MDE is then the smallest of them reaching the target).
    """
    est = make_estimator(estimator) if isinstance(estimator, str) else estimator
    grid = np.asarray(effect_sizes, dtype=float)
    lifts = fine_grid(grid, mde_step) if mde_step else mirrored(grid)
    t_idx, c_idx = np.asarray(treated), np.asarray(control)
    det = np.empty((len(starts), len(lifts)), dtype=bool)
    base = np.empty(len(starts))
    for i, s in enumerate(starts):
        s = int(s)
        wd = window_decisions(
            est,
            Y[:s, t_idx],
            Y[s : s + duration, t_idx],
            Y[:s, c_idx],
            Y[s : s + duration, c_idx],
            lifts,
            alpha,
            method=method,
            seed=seed,
        )
        det[i] = wd.detections(alpha)
        base[i] = wd.baseline * len(t_idx)
    raw = det.mean(axis=0)
    # Power against a lift of size |e| of either sign: the mean of detecting +e and -e. A window
    # whose history already drifts one way detects one sign easily and the other hardly; averaging
    # both keeps that drift from passing for power (and from winning the search).
    mirror = np.searchsorted(lifts, -lifts)
    sym = 0.5 * (raw + raw[mirror])
    zero = int(np.flatnonzero(lifts == 0)[0])
    fpr = float(raw[zero])
    mde, mde_power = _mde(lifts, sym, power_target, grid)
    on_grid = np.searchsorted(lifts, grid)
    labels = tuple(names[i] for i in t_idx) if names is not None else tuple(str(i) for i in t_idx)
    return PowerResult(
        labels,
        int(duration),
        grid,
        sym[on_grid],
        fpr,
        mde,
        mde_power,
        float(base.mean()),
        len(starts),
        np.asarray(starts),
        det[:, on_grid],
        power_injected=raw[on_grid],
        mde_slope=_slope(lifts, sym, mde),
        fine_lifts=lifts[lifts >= 0],
        fine_power=sym[lifts >= 0],
    )


def _slope(
    lifts: np.ndarray, power: np.ndarray, at: float | None, half_width: float = 0.02
) -> float | None:
    """Slope of the power curve around ``at`` (a secant over +-``half_width``: the curve is a step function)."""
    if at is None:
        return None
    side = lifts > 0 if at > 0 else lifts < 0
    x, y = np.abs(lifts[side]), power[side]
    lo, hi = max(abs(at) - half_width, 0.0), min(abs(at) + half_width, float(x.max()))
    if hi <= lo:
        return None
    return float((np.interp(hi, x, y) - np.interp(lo, x, y)) / (hi - lo))


def _mde(
    lifts: np.ndarray, power: np.ndarray, target: float, grid: np.ndarray
) -> tuple[float | None, float | None]:
    """Smallest lift on the side of the grid's lifts (positive unless all are negative) reaching the target."""
    negative = (grid < 0).any() and not (grid > 0).any()
    side = lifts < 0 if negative else lifts > 0
    cand = np.flatnonzero(side & (power >= target))
    if len(cand) == 0:
        return None, None
    k = int(cand[np.argmin(np.abs(lifts[cand]))])
    return float(lifts[k]), float(power[k])


def inject_lift(panel, treated: Sequence[str], first: int, length: int, lift: float):
    """A copy of ``panel`` with the treated geos' outcome times ``1 + lift`` over periods ``first..first+length-1``.

    Used to check a design by reading out injected effects with the readout itself.
    """
    import dataclasses

    data = panel.data.copy()
    data[panel.y] = data[panel.y].astype(float)
    dates = panel.dates[first : first + length]
    mask = data[panel.date_col].isin(dates) & data[panel.geo_col].isin(list(treated))
    data.loc[mask, panel.y] = data.loc[mask, panel.y] * (1.0 + lift)
    return dataclasses.replace(panel, data=data, _wide_cache={})


def null_rejection_rate(
    Y: np.ndarray,
    treated: Sequence[int],
    control: Sequence[int],
    duration: int,
    starts: Sequence[int],
    *,
    estimator: str | CounterfactualEstimator = "sc",
    alpha: float = 0.1,
    seed: int = 0,
) -> float:
    """The readout's rejection rate with nothing injected, over the windows starting at ``starts``.

    Cheap (one lift per window), so it can use many more windows than the
    power curve: the design search uses it to spot treated sets whose readout
    over-rejects, which a small MDE on few windows would otherwise reward.
    """
    est = make_estimator(estimator) if isinstance(estimator, str) else estimator
    t_idx, c_idx = np.asarray(treated), np.asarray(control)
    zero = np.zeros(1)
    hits = [
        window_decisions(
            est,
            Y[:s, t_idx],
            Y[s : s + duration, t_idx],
            Y[:s, c_idx],
            Y[s : s + duration, c_idx],
            zero,
            alpha,
            seed=seed,
        ).detections(alpha)[0]
        for s in (int(x) for x in starts)
    ]
    return float(np.mean(hits))
