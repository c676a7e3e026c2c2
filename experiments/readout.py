"""Lift readouts of geo experiments: incremental (not total) signups with honest intervals.

:func:`read_out` takes a validated :class:`~causal.panel.Panel`, the treated
geos, the test window and an estimator (a name from INTERFACE.md or an
unfitted estimator), fits a counterfactual for the treated *average* series on
the pre-period, and reports totals over the treated geos: observed,
counterfactual, incremental = treated-average effect x number of treated
geos, its interval, the lift, a two-sided p-value and, with a channel, the
spend change estimated the same way and the cost per incremental signup.

Inference: every estimator lists its choices (:func:`inference_choices`):
its own (``tbr``, ``did``, ``sdid``, ``bsts``, through ``effect_inference``)
and the readout's conformal test (:mod:`causal.conformal`), the only one of
``sc``, ``sc-classic`` and ``asc``. A choice that cannot give a finite
interval containing its estimate falls back to the next valid one, down to
placebo gaps, and a note says which ran. Placebo-in-space and placebo-in-time
checks are run for every estimator as diagnostics.

References
----------
Vaver, J. & Koehler, J. (2011). Measuring ad effectiveness using geo experiments. Google Inc.
Chernozhukov, V., Wüthrich, K. & Zhu, Y. (2021). JASA 116(536), 1849-1864.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from causal.base import CounterfactualEstimator, clone, data_scale, get_tags, make_estimator
from causal.conformal import (
    PlaceboResult,
    placebo_in_space,
    placebo_in_time,
    refit_clone,
)
from causal.errors import ConfigError, DataError
from causal.inference import EffectInference
from causal.panel import Panel
from causal.synth_predictors import PredictorSyntheticControl
from experiments.readout_geo import GEO_LEVEL, read_out_geo_level
from experiments.readout_inference import (  # noqa: F401 (INFERENCE, inference_choices: the public tables)
    INFERENCE,
    MISCALIBRATED,
    OWN_INFERENCE,
    configure_inference,
    estimator_name,
    infer,
    inference_choices,
    permutation_note,
)
from experiments.readout_predictors import parse_predictor, predictor_matrix  # noqa: F401
from experiments.readout_result import MultiCellReadout, Readout
from experiments.readout_selection import selection_scale
from experiments.readout_spend import spend_readout

# Rough time allowed for placebo refits of a slow estimator, in seconds (fast ones run every placebo).
PLACEBO_BUDGET_S = 3.0


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
        raise ConfigError(
            f"estimator must be a name or a CounterfactualEstimator, got {type(estimator).__name__}"
        )
    return clone(estimator)


def _check_treated_series(panel: Panel, frame: pd.DataFrame, treated: Sequence[str]) -> None:
    for g in treated:
        values = frame[g].to_numpy()
        if np.all(values == 0):
            raise DataError(
                f"{panel.source}: treated geo '{g}' has '{panel.y}' all zero over the pre and test periods; "
                "nothing to read out"
            )
        if np.ptp(values) == 0:
            raise DataError(
                f"{panel.source}: treated geo '{g}' has a constant '{panel.y}' ({values[0]:g}) over the "
                "pre and test periods; a counterfactual cannot be fitted"
            )


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
    inference: str | None = None,
    placebos: bool = True,
    pairs: Sequence[tuple[str, str]] | None = None,
    predictors: Sequence[str] | None = None,
    selection_check: bool = False,
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
        ``sc`` (GeoLift's demeaned synthetic control), ``sc-classic`` (Abadie et
        al.'s, on levels), ``asc``, ``sdid``, ``tbr``, ``did``, ``bsts`` or an
        unfitted estimator (cloned).
    confidence : float, default=0.9
        Level of every interval.
    channel : str, optional
        The channel whose spend the test moved: its ``spend_<channel>`` column
        gets a counterfactual too (zero when the treated geos had no spend on it
        before the test), giving ``spend_delta`` and the cost per incremental.
        A spend change within the spend's own pre-period noise gets no cost per
        incremental (the test did not move spend), with a note.
    seed : int, default=0
        Seed of the random permutations (block permutations are deterministic).
    inference : str, optional
        One of :func:`inference_choices` for the estimator; by default its
        first. Every estimator but ``bsts`` takes the conformal presets:
        ``conformal`` (moving-block conformal inference on the average effect
        within the recent segment), ``geolift`` (GeoLift's headline test:
        i.i.d. permutations of the sum of absolute residuals, its interval from
        the same permutations on the average effect), ``conformal-iid``,
        ``conformal-mean`` (moving blocks over the whole period). ``tbr``
        also takes ``placebo`` (default) and ``analytic``; ``did`` ``placebo``
        (default) and ``cluster``; ``sdid`` ``placebo`` (default); ``bsts``
        ``posterior`` (default) and ``placebo``. When the chosen inference
        cannot give a finite interval that contains the estimate (too few
        control geos for placebos, e.g. a balanced design; a yearly panel too
        short for the conformal test), the readout falls back to the next valid
        one and a note says which ran.
    placebos : bool, default=True
        Run the placebo-in-space and placebo-in-time checks. Each placebo is a
        refit; for a slow estimator (e.g. ``bsts``, seconds per fit) the
        number of placebos is capped so they take about ``PLACEBO_BUDGET_S``
        seconds, and a note says so.
    pairs : sequence of (treated, control), optional
        Matched pairs of geos (a paired design). Required by ``trimmed_match``
        and used by ``gbr``, the geo-level methods
        (:mod:`experiments.readout_geo`); ``treated`` and ``control`` are then
        the pairs' geos.
    predictors : sequence of str, optional
        Covariate predictors for the classic synthetic control (with
        ``estimator="sc-classic"``): the readout then runs
        :class:`causal.synth_predictors.PredictorSyntheticControl` (Abadie's
        V-weighted predictor matching, named ``sc-predictors``). Each is
        ``COL`` (the column's mean over the pre-period), ``COL@A:B`` (its mean
        from date A to date B) or ``COL@A`` (its value at date A); ``COL`` may
        be the outcome.
    selection_check : bool, default=False
        The treated set was chosen by a design search: compare its pre-period
        with ``N_SETS`` random sets of its size from the same markets
        (:mod:`experiments.readout_selection`) and, when its history is calmer
        than theirs (root mean square), widen the conformal test's interval by
        the ratio, with a note. Only for the conformal inferences. Off by
        default: on randomly chosen sets (2 of 30 markets, the readout study)
        it widened intervals that were already calibrated (coverage 0.905 ->
        0.97, power at a 10% lift 0.815 -> 0.465).

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

    Notes
    -----
    Every fit runs on the outcome divided by one positive number (the mean
    absolute pre-period outcome of the treated and control geos), and the
    results are multiplied back: the readout does not depend on the outcome's
    units (``tests/test_readout_scale.py``).

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
    if isinstance(estimator, str) and estimator in GEO_LEVEL:
        if inference not in (None, estimator):
            raise ConfigError(
                f"inference '{inference}' is not available for estimator '{estimator}' "
                f"(valid: {estimator})"
            )
        if pairs is None:
            treated = panel.check_geos(list(treated), "treated")
        start, end, pre = _periods(panel, test_period, pre_period)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = read_out_geo_level(
                panel,
                (start, end),
                method=estimator,
                pre_period=pre,
                treated=None if pairs is not None else treated,
                control=control,
                pairs=pairs,
                confidence=float(confidence),
                channel=channel,
                seed=seed,
            )
        r.notes += warning_notes(caught)
        if estimator == "trimmed_match" or (estimator in MISCALIBRATED and channel is None):
            r.notes.append(MISCALIBRATED[estimator])
        return r
    if pairs is not None:
        pairs = list(pairs)
        treated, control = [t for t, _ in pairs], [c for _, c in pairs]
    if predictors:
        if estimator != "sc-classic":
            raise ConfigError(
                "predictors are matched by the classic synthetic control: use estimator 'sc-classic' "
                f"with them, not {estimator if isinstance(estimator, str) else type(estimator).__name__!r}"
            )
        estimator = PredictorSyntheticControl(seed=seed)
    est, mode = configure_inference(_as_estimator(estimator), inference)
    # The fits inside inference loops are many small matrix problems: BLAS threads
    # only add contention there (ten times slower on a busy two-core machine).
    # Warnings raised on the way become notes of the readout (no raw warnings in reports).
    with (
        threadpool_limits(limits=1, user_api="blas"),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        r = _read_out(
            panel,
            treated,
            test_period,
            pre_period=pre_period,
            control=control,
            est=est,
            confidence=float(confidence),
            channel=channel,
            seed=seed,
            mode=mode,
            placebos=placebos,
            exclude=_exclude,
            predictors=list(predictors or []),
            selection_check=selection_check,
        )
    r.notes += warning_notes(caught)
    return r


def warning_notes(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """One note per distinct warning message (its category named, no source line)."""
    seen: list[str] = []
    for w in caught:
        text = f"Warning ({w.category.__name__}): {str(w.message).strip()}"
        if text not in seen:
            seen.append(text)
    return seen


def _unscale_diagnostics(diagnostics: dict[str, float], scale: float) -> dict[str, float]:
    """The estimator's pre-fit measures on the data's scale (the RMSE has the outcome's units)."""
    out = dict(diagnostics)
    if "rmse" in out:
        out["rmse"] = out["rmse"] * scale
    return out


def _unscale_inference(inf: EffectInference, scale: float) -> EffectInference:
    return EffectInference(
        inf.effect * scale,
        (inf.effect_ci[0] * scale, inf.effect_ci[1] * scale),
        inf.p_value,
        inf.counterfactual_lo * scale,
        inf.counterfactual_hi * scale,
        inf.method,
    )


def _periods(panel: Panel, test_period, pre_period) -> tuple[pd.Timestamp, pd.Timestamp, tuple]:
    """The checked test window and pre-period (by default every date before the test)."""
    start, end = _dates(panel, test_period, "test period")
    if pre_period is None:
        pos = panel.date_position(start)
        if pos == 0:
            raise DataError(
                f"test period starts {start.date()}, the panel's first date: no pre-period to fit on"
            )
        return start, end, (panel.dates[0], panel.dates[pos - 1])
    pre_start, pre_end = _dates(panel, pre_period, "pre-period")
    if pre_end >= start:
        raise DataError(
            f"pre-period ends {pre_end.date()}, not before the test starts {start.date()}"
        )
    return start, end, (pre_start, pre_end)


def _read_out(
    panel,
    treated,
    test_period,
    *,
    pre_period,
    control,
    est,
    confidence,
    channel,
    seed,
    mode,
    placebos,
    exclude,
    predictors=(),
    selection_check=False,
) -> Readout:
    alpha = 1.0 - confidence

    treated = panel.check_geos(list(treated), "treated")
    if not treated:
        raise DataError("no treated geos given")
    start, end, (pre_start, pre_end) = _periods(panel, test_period, pre_period)

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

    if predictors:
        est.set_params(
            predictors=predictor_matrix(panel, predictors, treated, control, (pre_start, pre_end)),
            predictor_names=list(predictors),
        )
    wide = panel.wide()
    pre_mask = (wide.index >= pre_start) & (wide.index <= pre_end)
    post_mask = (wide.index >= start) & (wide.index <= end)
    n_pre = int(pre_mask.sum())
    if n_pre < est.min_pre_periods:
        raise DataError(
            f"pre-period {pre_start.date()}..{pre_end.date()} has {n_pre} periods; estimator "
            f"'{estimator_name(est)}' needs at least {est.min_pre_periods}"
        )
    _check_treated_series(panel, wide.loc[pre_mask | post_mask], treated)

    Y_pre, Y_post = wide.loc[pre_mask, treated].to_numpy(), wide.loc[post_mask, treated].to_numpy()
    X_pre, X_post = wide.loc[pre_mask, control].to_numpy(), wide.loc[post_mask, control].to_numpy()
    y_pre, y_post = Y_pre.mean(axis=1), Y_post.mean(axis=1)
    # Every fit and test runs on data divided by one number, so no threshold or solver
    # tolerance inside an estimator sees the outcome's units.
    scale = data_scale(Y_pre, X_pre)
    Ys_pre, Ys_post, Xs_pre, Xs_post = Y_pre / scale, Y_post / scale, X_pre / scale, X_post / scale
    ys_pre, ys_post = Ys_pre.mean(axis=1), Ys_post.mean(axis=1)
    t0 = time.perf_counter()
    fitted = clone(est).fit(Ys_pre, Xs_pre, Xs_post)
    fit_seconds = time.perf_counter() - t0
    name = estimator_name(est)

    scale_ref, selection_note = 1.0, None
    # Random sets cannot be refitted with per-geo predictors: those readouts keep their own reference.
    if selection_check and mode in INFERENCE and not predictors:
        scale_ref, selection_note = selection_scale(fitted, Ys_pre, Xs_pre, len(ys_post), seed=seed)
    inf, tests, extra_notes = infer(
        fitted,
        mode,
        name,
        Ys_pre,
        Ys_post,
        ys_pre,
        Xs_pre,
        ys_post,
        Xs_post,
        alpha,
        seed,
        reference_scale=scale_ref,
    )
    if selection_note:
        extra_notes.append(selection_note)
    inf = _unscale_inference(inf, scale)
    note = permutation_note(inf.method, alpha)
    if note:
        extra_notes.append(note)

    placebo = {}
    if placebos:
        if fitted.refit_params():
            # Placebo refits keep the tuning the real fit chose (e.g. sc-predictors' V): time one of those.
            t0 = time.perf_counter()
            refit_clone(fitted).fit(ys_pre, Xs_pre, Xs_post)
            fit_seconds = time.perf_counter() - t0
        cap = max(3, int(PLACEBO_BUDGET_S / max(fit_seconds, 1e-6)))
        n_space = min(len(control), max(2, 2 * cap // 3))
        space = placebo_in_space(
            fitted, ys_pre, Xs_pre, ys_post, Xs_post, list(control), max_placebos=n_space
        )
        time_ = placebo_in_time(
            fitted,
            ys_pre,
            Xs_pre,
            len(y_post),
            actual_score=space.actual_score,
            max_placebos=min(20, max(1, cap - n_space)),
        )
        placebo = {"space": _unscale_placebo(space, scale), "time": _unscale_placebo(time_, scale)}
        if n_space < len(control):
            extra_notes.append(
                f"Placebo in space limited to the first {n_space} of {len(control)} donors: "
                f"one fit takes {fit_seconds:.1f} s."
            )

    spend = None
    if channel is not None:
        col = panel.spend_column(channel)
        sw = panel.wide(col)
        spend, spend_notes = spend_readout(
            est,
            sw.loc[pre_mask, treated].to_numpy(),
            sw.loc[post_mask, treated].to_numpy(),
            sw.loc[pre_mask, control].to_numpy(),
            sw.loc[post_mask, control].to_numpy(),
            alpha,
            channel,
        )
        extra_notes += spend_notes

    miss = MISCALIBRATED.get(f"{name}:{mode}") or MISCALIBRATED.get(name)
    if miss:
        extra_notes.append(miss)
    return Readout.build(
        panel=panel,
        counterfactual_pre=np.asarray(fitted.counterfactual_pre_, float) * scale,
        counterfactual_post=np.asarray(fitted.counterfactual_post_, float) * scale,
        weights=fitted.weights_ if get_tags(fitted).donor_weights else None,
        diagnostics=_unscale_diagnostics(fitted.pre_fit_diagnostics(), scale),
        estimator_name=name,
        confidence=float(confidence),
        treated=treated,
        control=list(control),
        pre_period=(pre_start, pre_end),
        test_period=(start, end),
        pre_dates=wide.index[pre_mask],
        post_dates=wide.index[post_mask],
        y_pre=y_pre,
        y_post=y_post,
        inference=inf,
        placebo=placebo,
        channel=channel,
        spend=spend,
        seed=seed,
        extra_notes=extra_notes,
        tests=tests,
        inference_choice=mode,
    )


def _unscale_placebo(res: PlaceboResult, scale: float) -> PlaceboResult:
    return PlaceboResult(res.kind, res.labels, res.effects * scale, res.scores, res.actual_score)


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
                raise DataError(
                    f"geo '{g}' is in two cells, '{owner[g]}' and '{name}'; cells must be disjoint"
                )
            owner[g] = name
    control = kwargs.get("control")
    if control is not None:
        clash = [g for g in control if g in owner]
        if clash:
            raise DataError(
                f"geo '{clash[0]}' is given both as control and in cell '{owner[clash[0]]}'"
            )
    readouts = {
        name: read_out(panel, geos, test_period, _exclude=tuple(owner), **kwargs)
        for name, geos in cells.items()
    }
    return MultiCellReadout(readouts)
