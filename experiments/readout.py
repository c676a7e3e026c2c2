"""Lift readouts of geo experiments: incremental (not total) signups with honest intervals.

:func:`read_out` takes a validated :class:`~causal.panel.Panel`, the treated
geos, the test window and an estimator (a name from INTERFACE.md or an
unfitted estimator), fits a counterfactual for the treated *average* series on
the pre-period, and reports totals over the treated geos: observed,
counterfactual, incremental = treated-average effect x number of treated
geos, its interval, the lift, a two-sided p-value and, with a channel, the
spend change estimated the same way and the cost per incremental signup.

Inference: estimators carrying their own (``tbr``, ``did``, ``bsts`` and
``sdid``'s placebo inference, with ``own_inference`` true) are asked for it
through ``effect_inference``; ``sc`` and ``asc`` (and ``sdid`` with
``inference="conformal"``) get conformal inference (:mod:`causal.conformal`). Placebo-in-space and placebo-in-time checks are run
for every estimator as diagnostics.

References
----------
Vaver, J. & Koehler, J. (2011). Measuring ad effectiveness using geo experiments. Google Inc.
Chernozhukov, V., Wüthrich, K. & Zhu, Y. (2021). JASA 116(536), 1849-1864.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from causal.base import CounterfactualEstimator, EffectInference, clone, make_estimator
from causal.conformal import conformal_inference, placebo_in_space, placebo_in_time
from causal.errors import ConfigError, DataError
from causal.panel import Panel
from experiments.readout_result import MultiCellReadout, Readout

# Inference presets for estimators without their own. "geolift" is GeoLift's
# headline test exactly (i.i.d. permutations, sum of absolute residuals); the
# default uses moving-block permutations, which keep nominal size on
# autocorrelated geo data, within the recent segment (the last 16 test lengths)
# with the average-effect statistic: it keeps its size at the end of a long
# history whose residuals drift or whose calm past got the geos chosen
# (causal.conformal; docs/readout.md, docs/design.md). "conformal-mean" is the
# earlier default (moving blocks over the whole period).
INFERENCE = {
    "conformal": {"permutation": "recent", "statistic": "mean"},
    "geolift": {"permutation": "iid", "statistic": "abs"},
    "conformal-iid": {"permutation": "iid", "statistic": "mean"},
    "conformal-mean": {"permutation": "block", "statistic": "mean"},
}
# Estimators whose intervals missed the nominal rates in the simulation study
# (benchmarks/study_readout.py, docs/readout.md): every readout with them says so.
MISCALIBRATED = {
    "bsts": "In the simulation study (40 replications, AR(1) geo deviations) bsts's 90% intervals covered 73% "
            "and its false positive rate at alpha 0.1 was 0.275: its intervals are too narrow; "
            "prefer sc or asc for inference.",
}
# Rough time allowed for placebo refits of a slow estimator, in seconds.
PLACEBO_BUDGET_S = 10.0


def _dates(panel: Panel, period, role: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    if period is None or len(period) != 2:
        raise ConfigError(f"{role} must be a pair (first_date, last_date), got {period!r}")
    start = panel.check_date(period[0], f"{role} start")
    end = panel.check_date(period[1], f"{role} end")
    if start > end:
        raise DataError(f"{role} starts {start.date()} after it ends {end.date()}")
    return start, end


def _as_estimator(estimator: str | CounterfactualEstimator) -> CounterfactualEstimator:
    if isinstance(estimator, str):
        return make_estimator(estimator)
    if not isinstance(estimator, CounterfactualEstimator):
        raise ConfigError(f"estimator must be a name or a CounterfactualEstimator, got {type(estimator).__name__}")
    return clone(estimator)


def _estimator_name(est: CounterfactualEstimator) -> str:
    return est.name or type(est).__name__


def _check_treated_series(panel: Panel, frame: pd.DataFrame, treated: Sequence[str]) -> None:
    for g in treated:
        values = frame[g].to_numpy()
        if np.all(values == 0):
            raise DataError(f"{panel.source}: treated geo '{g}' has '{panel.y}' all zero over the pre and test periods; "
                            "nothing to read out")
        if np.ptp(values) == 0:
            raise DataError(f"{panel.source}: treated geo '{g}' has a constant '{panel.y}' ({values[0]:g}) over the "
                            "pre and test periods; a counterfactual cannot be fitted")


def read_out(
    panel: Panel,
    treated: Sequence[str],
    test_period: Sequence,
    *,
    pre_period: Sequence | None = None,
    control: Sequence[str] | None = None,
    estimator: str | CounterfactualEstimator = "sc",
    confidence: float = 0.9,
    channel: str | None = None,
    seed: int = 0,
    inference: str = "conformal",
    placebos: bool = True,
    _exclude: Sequence[str] = (),
) -> Readout:
    """Read out a geo experiment: incremental signups in the treated geos, with an interval.

    Parameters
    ----------
    panel : Panel
        The validated long panel (:func:`causal.panel.load_panel`).
    treated : sequence of str
        Treated geos; their average series is fitted, totals are scaled back.
    test_period : (first_date, last_date)
        The test window, inclusive.
    pre_period : (first_date, last_date), optional
        The fitting window; by default from the panel's first date to the day
        before the test. It must end before the test starts.
    control : sequence of str, optional
        Donor geos; by default every geo not treated.
    estimator : str or CounterfactualEstimator, default="sc"
        ``sc``, ``asc``, ``sdid``, ``tbr``, ``did``, ``bsts`` or an unfitted estimator (cloned).
    confidence : float, default=0.9
        Level of every interval.
    channel : str, optional
        The channel whose spend the test moved: its ``spend_<channel>`` column
        gets the same counterfactual, giving ``spend_delta`` and cost per incremental.
    seed : int, default=0
        Seed of the random permutations (block permutations are deterministic).
    inference : {"conformal", "geolift", "conformal-iid", "conformal-mean"}, default="conformal"
        For estimators without their own inference: moving-block conformal
        inference on the average effect within the recent segment (default),
        GeoLift's headline test (i.i.d. permutations of the sum of absolute
        residuals) for parity, i.i.d. permutations of the average-effect
        statistic, or moving blocks over the whole period (the earlier
        default, for comparison).
    placebos : bool, default=True
        Run the placebo-in-space and placebo-in-time checks. Each placebo is a
        refit; for a slow estimator (e.g. ``bsts``, seconds per fit) the
        number of placebos is capped so they take about ``PLACEBO_BUDGET_S``
        seconds, and a note says so.

    Returns
    -------
    Readout

    Raises
    ------
    DataError
        A treated geo not in the panel or also a control, dates outside the
        data, a pre-period too short for the method, a constant or all-zero
        treated series, a missing spend column.
    ConfigError
        An unknown estimator or inference, a confidence outside (0, 1).

    Examples
    --------
    >>> from causal.panel import load_panel
    >>> from causal.world import World
    >>> panel = load_panel(World(8, 120, seed=1).panel())
    >>> r = read_out(panel, ["NA01"], ("2024-04-10", "2024-04-29"), placebos=False)
    >>> r.treated, abs(r.incremental - (r.observed - r.counterfactual)) < 1e-6
    (['NA01'], True)
    """
    if not 0.0 < float(confidence) < 1.0:
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence}")
    if inference not in INFERENCE:
        raise ConfigError(f"inference must be one of {', '.join(INFERENCE)}, got {inference!r}")
    est = _as_estimator(estimator)
    # The fits inside inference loops are many small matrix problems: BLAS threads
    # only add contention there (ten times slower on a busy two-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        return _read_out(panel, treated, test_period, pre_period=pre_period, control=control, est=est,
                         confidence=float(confidence), channel=channel, seed=seed, inference=inference,
                         placebos=placebos, exclude=_exclude)


def _read_out(panel, treated, test_period, *, pre_period, control, est, confidence, channel, seed, inference,
              placebos, exclude) -> Readout:
    alpha = 1.0 - confidence

    treated = panel.check_geos(list(treated), "treated")
    if not treated:
        raise DataError("no treated geos given")
    start, end = _dates(panel, test_period, "test period")
    if pre_period is None:
        pos = panel.date_position(start)
        if pos == 0:
            raise DataError(f"test period starts {start.date()}, the panel's first date: no pre-period to fit on")
        pre_start, pre_end = panel.dates[0], panel.dates[pos - 1]
    else:
        pre_start, pre_end = _dates(panel, pre_period, "pre-period")
        if pre_end >= start:
            raise DataError(f"pre-period ends {pre_end.date()}, not before the test starts {start.date()}")

    if control is None:
        skip = set(treated) | set(exclude)
        control = [g for g in panel.geos if g not in skip]
    else:
        control = panel.check_geos(list(control), "control")
        both = [g for g in control if g in treated]
        if both:
            raise DataError(f"geo '{both[0]}' is given both as treated and as control")
    if not control:
        raise DataError("no control geos left: every geo of the panel is treated")

    wide = panel.wide()
    pre_mask = (wide.index >= pre_start) & (wide.index <= pre_end)
    post_mask = (wide.index >= start) & (wide.index <= end)
    n_pre = int(pre_mask.sum())
    if n_pre < est.min_pre_periods:
        raise DataError(
            f"pre-period {pre_start.date()}..{pre_end.date()} has {n_pre} periods; estimator "
            f"'{_estimator_name(est)}' needs at least {est.min_pre_periods}"
        )
    _check_treated_series(panel, wide.loc[pre_mask | post_mask], treated)

    Y_pre, Y_post = wide.loc[pre_mask, treated].to_numpy(), wide.loc[post_mask, treated].to_numpy()
    X_pre, X_post = wide.loc[pre_mask, control].to_numpy(), wide.loc[post_mask, control].to_numpy()
    t0 = time.perf_counter()
    fitted = clone(est).fit(Y_pre, X_pre, X_post)
    fit_seconds = time.perf_counter() - t0
    y_pre, y_post = Y_pre.mean(axis=1), Y_post.mean(axis=1)

    if getattr(fitted, "own_inference", False):
        inf = fitted.effect_inference(Y_post, alpha)
    else:
        inf = conformal_inference(fitted, y_pre, X_pre, y_post, X_post, alpha=alpha, seed=seed,
                                  **INFERENCE[inference])
        if inference == "geolift":
            # GeoLift's sum-of-|residuals| statistic tests the whole path of effects;
            # the interval on the *average* effect inverts the average-effect statistic.
            ci_inf = conformal_inference(fitted, y_pre, X_pre, y_post, X_post, alpha=alpha, seed=seed,
                                         permutation="iid", statistic="mean")
            inf = EffectInference(inf.effect, ci_inf.effect_ci, inf.p_value, inf.counterfactual_lo,
                                  inf.counterfactual_hi, inf.method + "; interval: same permutations, 'mean' statistic")

    placebo, extra_notes = {}, []
    if placebos:
        cap = max(3, int(PLACEBO_BUDGET_S / max(fit_seconds, 1e-6)))
        n_space = min(len(control), max(2, 2 * cap // 3))
        space = placebo_in_space(fitted, y_pre, X_pre, y_post, X_post, list(control), max_placebos=n_space)
        placebo["space"] = space
        placebo["time"] = placebo_in_time(fitted, y_pre, X_pre, len(y_post), actual_score=space.actual_score,
                                          max_placebos=min(20, max(1, cap - n_space)))
        if n_space < len(control):
            extra_notes.append(f"Placebo in space limited to the first {n_space} of {len(control)} donors: "
                               f"one fit takes {fit_seconds:.1f} s.")

    spend = None
    if channel is not None:
        col = panel.spend_column(channel)
        sw = panel.wide(col)
        S_pre, S_post = sw.loc[pre_mask, treated].to_numpy(), sw.loc[post_mask, treated].to_numpy()
        C_pre, C_post = sw.loc[pre_mask, control].to_numpy(), sw.loc[post_mask, control].to_numpy()
        spend_fit = clone(est).fit(S_pre, C_pre, C_post)
        n1 = len(treated)
        spend = {
            "observed": float(S_post.sum()),
            "counterfactual": float(spend_fit.counterfactual_post_.sum() * n1),
            "counterfactual_series": spend_fit.counterfactual_post_ * n1,
            "observed_series": S_post.sum(axis=1),
        }

    name = _estimator_name(est)
    if name in MISCALIBRATED:
        extra_notes.append(MISCALIBRATED[name])
    return Readout.build(
        panel=panel, estimator=fitted, estimator_name=_estimator_name(est), confidence=float(confidence),
        treated=treated, control=list(control), pre_period=(pre_start, pre_end), test_period=(start, end),
        pre_dates=wide.index[pre_mask], post_dates=wide.index[post_mask], y_pre=y_pre, y_post=y_post,
        inference=inf, placebo=placebo, channel=channel, spend=spend, seed=seed, extra_notes=extra_notes,
    )


def parse_cells(text: str) -> dict[str, list[str]]:
    """``"north=G1,G2;south=G3"`` -> ``{"north": ["G1", "G2"], "south": ["G3"]}``."""
    cells: dict[str, list[str]] = {}
    for i, part in enumerate(p for p in text.split(";") if p.strip()):
        name, sep, geos = part.partition("=")
        if not sep:
            name, geos = f"cell{i + 1}", part
        name = name.strip()
        if name in cells:
            raise ConfigError(f"cell '{name}' is given twice in --cells")
        cells[name] = [g.strip() for g in geos.split(",") if g.strip()]
        if not cells[name]:
            raise ConfigError(f"cell '{name}' has no geos in --cells")
    if not cells:
        raise ConfigError("--cells is empty; use name=G1,G2;name2=G3")
    return cells


def read_out_cells(
    panel: Panel,
    cells: Mapping[str, Sequence[str]],
    test_period: Sequence,
    **kwargs,
) -> MultiCellReadout:
    """Read out a multi-cell test: disjoint treated groups, each against the untreated geos.

    Every cell is read out by :func:`read_out` with the geos of *all* cells
    left out of the donors (a treated geo of another cell is not a control).
    Keyword arguments are passed to :func:`read_out`; a ``control`` list
    given there must not contain a treated geo of any cell.

    Raises
    ------
    DataError
        Overlapping cells (a geo in two cells), and every error of :func:`read_out`.
    """
    if not cells:
        raise ConfigError("no cells given")
    owner: dict[str, str] = {}
    for name, geos in cells.items():
        for g in panel.check_geos(list(geos), f"cell '{name}'"):
            if g in owner:
                raise DataError(f"geo '{g}' is in two cells, '{owner[g]}' and '{name}'; cells must be disjoint")
            owner[g] = name
    control = kwargs.get("control")
    if control is not None:
        clash = [g for g in control if g in owner]
        if clash:
            raise DataError(f"geo '{clash[0]}' is given both as control and in cell '{owner[clash[0]]}'")
    readouts = {name: read_out(panel, geos, test_period, _exclude=tuple(owner), **kwargs) for name, geos in cells.items()}
    return MultiCellReadout(readouts)
