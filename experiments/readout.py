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

import re
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from causal.base import CounterfactualEstimator, EffectInference, clone, make_estimator
from causal.conformal import (
    PlaceboResult,
    conformal_inference,
    placebo_in_space,
    placebo_in_time,
    refit_clone,
)
from causal.errors import ConfigError, DataError
from causal.panel import Panel
from causal.synth_predictors import PredictorSyntheticControl
from experiments.readout_geo import GEO_LEVEL, read_out_geo_level
from experiments.readout_result import MultiCellReadout, Readout

# Inference presets of the readout's conformal test. "geolift" is GeoLift's
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
# Inferences an estimator carries itself: choice -> the estimator parameters that select it.
# The first is the estimator's default; every estimator also takes the conformal presets
# above, except bsts (a refit takes seconds; the conformal test refits hundreds of times).
OWN_INFERENCE: dict[str, dict[str, dict]] = {
    "tbr": {"placebo": {"calibration": "placebo"}, "analytic": {"calibration": None}},
    "did": {"placebo": {"inference": "placebo"}, "cluster": {"inference": "cluster"}},
    "sdid": {"placebo": {"inference": "placebo"}},
    "bsts": {"posterior": {"calibration": None}, "placebo": {"calibration": "placebo"}},
}
# Parameters that turn an estimator's own inference off (a conformal readout, a spend fit).
NO_OWN_INFERENCE: dict[str, dict] = {"tbr": {"calibration": None}, "sdid": {"inference": "conformal"},
                                     "bsts": {"calibration": None}}
NO_CONFORMAL = ("bsts",)
# When an estimator's default (placebo) inference is not available (a balanced design), the own
# inference tried before the conformal test: did's cluster-robust interval covered 0.93-0.95 with a
# false positive rate of 0.07 with 15 of 30 geos treated, its conformal test 0.79-0.82 and 0.21.
OWN_FALLBACK = {"did": "cluster"}
# Estimators (or "estimator:inference") whose intervals missed the nominal rates in the simulation
# study (benchmarks/study_readout.py, docs/readout.md): every readout with them says so.
MISCALIBRATED = {
    "bsts:posterior": "In the simulation study (200 worlds, AR(1) geo deviations; docs/estimators_tbr_did_bsts.md) "
                      "bsts's posterior 90% intervals covered 0.64 and its false positive rate at alpha 0.1 was 0.36: "
                      "they are too narrow on autocorrelated geo data. It is kept for parity with R's CausalImpact "
                      "and is not recommended for inference: use --inference placebo (covered 0.85, false positive "
                      "rate 0.125) or sc / tbr. Its p-value is two-sided (R prints a one-sided posterior tail area).",
    "gbr": "In the simulation study (200 replications, 2 treated of 30 geos, no channel) gbr covered 0.95 with a "
           "false positive rate of 0.05 under no effect but only 0.805 under a 10% lift: its model gives every "
           "treated geo the same effect, and an effect proportional to each geo's size is then under-covered. "
           "With --channel (effects proportional to the spend change) it is the published model; prefer sc "
           "without one.",
    "tbr:conformal-fallback": "In the balanced-design study (15 of 30 geos treated, 100 replications) TBR's "
                              "conformal fallback covered 0.78-0.80 with a false positive rate of 0.22: too "
                              "narrow. For balanced designs prefer sc (0.94, 0.06), did (cluster, 0.93, 0.07) "
                              "or sdid (0.87-0.88, 0.12).",
    "trimmed_match": "On 300 simulated paired experiments of 30 pairs (tests/test_trimmed_match.py) Trimmed "
                     "Match's 90% intervals covered 0.840 (heavy-tailed pair noise) and 0.847 (light-tailed): "
                     "slightly below 0.85, the published interval uses the normal quantile for a studentised "
                     "trimmed mean of a few dozen pairs.",
}
# Rough time allowed for placebo refits of a slow estimator, in seconds (fast ones run every placebo).
PLACEBO_BUDGET_S = 3.0


def inference_choices(estimator: str) -> list[str]:
    """The ``inference`` values an estimator (by name) takes; the first is its default."""
    if estimator in GEO_LEVEL:
        return [estimator]  # the method's own test only
    own = list(OWN_INFERENCE.get(estimator, {}))
    return own + ([] if estimator in NO_CONFORMAL else list(INFERENCE))


def _configure_inference(est: CounterfactualEstimator, inference: str | None) -> tuple[CounterfactualEstimator, str]:
    """The estimator set up for the chosen inference, and the choice (``None``: the estimator's default)."""
    name = _estimator_name(est)
    if name in OWN_INFERENCE or name in NO_CONFORMAL:
        choices = inference_choices(name)
    else:
        # An estimator of the user's own: "own" when it carries its inference.
        choices = (["own"] if getattr(est, "own_inference", False) else []) + list(INFERENCE)
    if inference is None:
        # An estimator object configured for its own inference keeps it; otherwise the first choice.
        if name in OWN_INFERENCE and not getattr(est, "own_inference", False):
            return est, "conformal"
        return est, choices[0]
    if inference not in choices:
        raise ConfigError(f"inference '{inference}' is not available for estimator '{name}' "
                          f"(valid: {', '.join(choices)})")
    if inference in OWN_INFERENCE.get(name, {}):
        est.set_params(**OWN_INFERENCE[name][inference])
    elif name in NO_OWN_INFERENCE:
        est.set_params(**NO_OWN_INFERENCE[name])
    return est, inference


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
    inference: str | None = None,
    placebos: bool = True,
    pairs: Sequence[tuple[str, str]] | None = None,
    predictors: Sequence[str] | None = None,
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
            raise ConfigError(f"inference '{inference}' is not available for estimator '{estimator}' "
                              f"(valid: {estimator})")
        if pairs is None:
            treated = panel.check_geos(list(treated), "treated")
        start, end, pre = _periods(panel, test_period, pre_period)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = read_out_geo_level(panel, (start, end), method=estimator, pre_period=pre,
                                   treated=None if pairs is not None else treated, control=control, pairs=pairs,
                                   confidence=float(confidence), channel=channel, seed=seed)
        r.notes += warning_notes(caught)
        if estimator == "trimmed_match" or (estimator in MISCALIBRATED and channel is None):
            r.notes.append(MISCALIBRATED[estimator])
        return r
    if pairs is not None:
        pairs = list(pairs)
        treated, control = [t for t, _ in pairs], [c for _, c in pairs]
    if predictors:
        if estimator != "sc-classic":
            raise ConfigError("predictors are matched by the classic synthetic control: use estimator 'sc-classic' "
                              f"with them, not {estimator if isinstance(estimator, str) else type(estimator).__name__!r}")
        estimator = PredictorSyntheticControl(seed=seed)
    est, mode = _configure_inference(_as_estimator(estimator), inference)
    # The fits inside inference loops are many small matrix problems: BLAS threads
    # only add contention there (ten times slower on a busy two-core machine).
    # Warnings raised on the way become notes of the readout (no raw warnings in reports).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = _read_out(panel, treated, test_period, pre_period=pre_period, control=control, est=est,
                      confidence=float(confidence), channel=channel, seed=seed, mode=mode,
                      placebos=placebos, exclude=_exclude, predictors=list(predictors or []))
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


def _scale_of(*arrays: np.ndarray) -> float:
    """A positive number of the data's order of magnitude: every fit runs on data divided by it."""
    values = np.concatenate([np.abs(np.asarray(a, float)).ravel() for a in arrays])
    s = float(values.mean()) if values.size else 0.0
    return s if np.isfinite(s) and s > 0 else 1.0


class _Unscaled:
    """A fitted estimator's outputs back on the data's scale (what :meth:`Readout.build` reads)."""

    def __init__(self, fitted: CounterfactualEstimator, scale: float) -> None:
        self.counterfactual_pre_ = np.asarray(fitted.counterfactual_pre_, float) * scale
        self.counterfactual_post_ = np.asarray(fitted.counterfactual_post_, float) * scale
        for attr in ("weights_", "pre_r2_", "scaled_l2_imbalance_"):
            if hasattr(fitted, attr):
                setattr(self, attr, getattr(fitted, attr))
        if hasattr(fitted, "pre_rmse_"):
            self.pre_rmse_ = fitted.pre_rmse_ * scale


def _unscale_inference(inf: EffectInference, scale: float) -> EffectInference:
    return EffectInference(inf.effect * scale, (inf.effect_ci[0] * scale, inf.effect_ci[1] * scale), inf.p_value,
                           inf.counterfactual_lo * scale, inf.counterfactual_hi * scale, inf.method)


def _valid(inf: EffectInference | None) -> bool:
    """A finite interval that contains its own estimate."""
    if inf is None:
        return False
    lo, hi = inf.effect_ci
    tol = 1e-9 * max(abs(inf.effect), abs(lo), abs(hi), 1e-300)
    return bool(np.isfinite([lo, hi]).all() and lo - tol <= inf.effect <= hi + tol and np.isfinite(inf.p_value))


def _conformal(fitted, y_pre, X_pre, y_post, X_post, alpha, seed, preset) -> tuple[EffectInference, list[dict]]:
    """The conformal test of ``preset``; with ``geolift`` also the average-effect test behind its interval."""
    inf = conformal_inference(fitted, y_pre, X_pre, y_post, X_post, alpha=alpha, seed=seed, **INFERENCE[preset])
    tests = [{"test": preset, "p_value": inf.p_value, "method": inf.method}]
    if preset == "geolift":
        # GeoLift's sum-of-|residuals| statistic tests the whole path of effects;
        # the interval on the *average* effect inverts the average-effect statistic.
        ci_inf = conformal_inference(fitted, y_pre, X_pre, y_post, X_post, alpha=alpha, seed=seed,
                                     permutation="iid", statistic="mean")
        tests.append({"test": "interval (same permutations, 'mean' statistic)", "p_value": ci_inf.p_value,
                      "method": ci_inf.method})
        inf = EffectInference(inf.effect, ci_inf.effect_ci, inf.p_value, inf.counterfactual_lo,
                              inf.counterfactual_hi, inf.method + "; interval: same permutations, 'mean' statistic")
    return inf, tests


def gap_placebo_inference(fitted, y_pre, X_pre, y_post, X_post, alpha: float, *, refit: bool = True
                          ) -> EffectInference | None:
    """The last-resort interval: the estimate plus or minus the placebos' gaps (Abadie et al. 2010).

    Each donor in turn is read out as if treated over the same window (the
    other donors its controls); its summed gap is a draw of the estimation
    error under no effect. The interval is the estimate plus or minus the
    conservative ``1 - alpha`` rank of the absolute placebo gaps, and the
    p-value the rank of the estimate among them (the same test, so they
    agree). With fewer than two placebos (or ``refit=False``, for a slow
    estimator), the pre-period's own residual sums over windows of the test's
    length are used. ``None`` when neither exists.
    """
    T1 = len(y_post)
    gaps = np.empty(0)
    if refit:
        space = placebo_in_space(fitted, y_pre, X_pre, y_post, X_post, [str(j) for j in range(X_pre.shape[1])])
        gaps, kind = space.effects * T1, f"placebo-in-space gaps of {len(space.effects)} donors"
    if gaps.size < 2:
        resid = y_pre - np.asarray(fitted.counterfactual_pre_, float)
        n = len(resid) - T1 + 1
        if n < 2:
            return None
        sums = np.convolve(resid - resid.mean(), np.ones(T1), mode="valid")
        gaps, kind = sums, f"pre-period residual sums over {n} windows of the test's length"
    gaps = np.abs(gaps[np.isfinite(gaps)])
    if gaps.size < 2:
        return None
    effect = float(np.sum(y_post - fitted.counterfactual_post_))
    n = gaps.size
    k = int(np.ceil((1 - alpha) * (n + 1)))
    q = float(np.sort(gaps)[min(k, n) - 1])
    p = float((1 + np.sum(gaps >= abs(effect) * (1 - 1e-10))) / (n + 1))
    cf = np.asarray(fitted.counterfactual_post_, float)
    band = q / T1
    return EffectInference(effect, (effect - q, effect + q), p, cf - band, cf + band,
                           f"placebo gaps ({kind}; Abadie, Diamond & Hainmueller 2010), rank test")


def _infer(fitted, mode: str, name: str, Y_pre, Y_post, y_pre, X_pre, y_post, X_post, alpha, seed
           ) -> tuple[EffectInference, list[dict], list[str]]:
    """The chosen inference, or the first valid fallback, with the tests run and notes on what fell back."""
    notes: list[str] = []
    tried: list[str] = []
    if mode in OWN_INFERENCE.get(name, {}) or mode == "own":
        try:
            z = getattr(fitted, "placebo_z_", None)
            if mode == "placebo" and z is not None and z.size < 10:
                # tbr/bsts would quietly use their analytic interval, which misses on geo data.
                raise ConfigError(f"{z.size} placebo groups, fewer than 10 (too few control geos)")
            inf = fitted.effect_inference(Y_post, alpha)
            if _valid(inf):
                return inf, [{"test": mode, "p_value": inf.p_value, "method": inf.method}], notes
            tried.append(f"'{mode}' gave no valid interval")
        except (ConfigError, DataError) as exc:
            tried.append(f"'{mode}' is not available here ({exc})")
        alt = OWN_FALLBACK.get(name)
        if alt is not None and alt != mode:
            # An own inference that the study found calibrated where the default is not available.
            alt_fit = clone(fitted).set_params(**OWN_INFERENCE[name][alt]).fit(Y_pre, X_pre, X_post)
            try:
                inf = alt_fit.effect_inference(Y_post, alpha)
                if _valid(inf):
                    notes.append(f"Inference fell back to '{alt}': " + "; ".join(tried) + ".")
                    return inf, [{"test": alt, "p_value": inf.p_value, "method": inf.method}], notes
                tried.append(f"'{alt}' gave no valid interval")
            except (ConfigError, DataError) as exc:
                tried.append(f"'{alt}' is not available here ({exc})")
        presets = [] if name in NO_CONFORMAL else ["conformal", "conformal-mean"]
        conf_fit = None
        if presets:
            conf_fit = clone(fitted).set_params(**NO_OWN_INFERENCE.get(name, {}))
            conf_fit.fit(y_pre, X_pre, X_post)
    else:
        presets = list(dict.fromkeys([mode, "conformal", "conformal-mean"]))
        conf_fit = fitted
    for preset in presets:
        inf, tests = _conformal(conf_fit, y_pre, X_pre, y_post, X_post, alpha, seed, preset)
        if _valid(inf):
            if tried:
                notes.append(f"Inference fell back to the conformal test '{preset}': " + "; ".join(tried) + ".")
                if f"{name}:conformal-fallback" in MISCALIBRATED:
                    notes.append(MISCALIBRATED[f"{name}:conformal-fallback"])
            return inf, tests, notes
        tried.append(f"the conformal test '{preset}' gave no finite interval containing the estimate")
    inf = gap_placebo_inference(fitted, y_pre, X_pre, y_post, X_post, alpha, refit=name not in NO_CONFORMAL)
    if inf is None:
        raise DataError(f"no valid inference for estimator '{name}': " + "; ".join(tried)
                        + "; and there are too few donors and pre-periods for placebo gaps")
    notes.append("Inference fell back to placebo gaps: " + "; ".join(tried) + ".")
    return inf, [{"test": "placebo gaps", "p_value": inf.p_value, "method": inf.method}], notes


def _permutation_note(method: str, alpha: float) -> str | None:
    """Say the smallest attainable p-value when the reference distribution is small for the level."""
    m = re.search(r"(\d+) (?:permutations|placebo groups|control groups|donors|windows)", method)
    if not m:
        return None
    n = int(m.group(1))
    if "permutations" in method:
        p_min = 1.0 / n
    else:
        p_min = 1.0 / (n + 1)
    if n * alpha >= 5:
        return None
    return (f"The test's reference distribution has {n} draws: the smallest attainable p-value is {p_min:.3f}, "
            f"and at {1 - alpha:.0%} the interval's edges rest on its {max(int(np.floor(alpha / p_min)), 1)} most "
            "extreme draw(s), so it is wide and moves in steps with the confidence level; a longer pre-period or "
            "more control geos give a finer test.")


def _spend_readout(est, S_pre, S_post, C_pre, C_post, alpha: float, channel: str) -> tuple[dict, list[str]]:
    """Spend observed and without the test in the treated geos (totals), and whether the test moved it."""
    n1, T1 = S_pre.shape[1], S_post.shape[0]
    s_pre = S_pre.mean(axis=1)
    notes: list[str] = []
    if not np.any(S_pre):
        # A new channel (or a heavy-up from nothing): without the test the treated geos spend nothing.
        cf_post, resid = np.zeros(T1), np.zeros(len(s_pre))
        method = "zero: the treated geos had no spend on the channel before the test"
    elif np.ptp(C_pre.mean(axis=1)) == 0 and np.ptp(np.vstack([C_pre, C_post]).mean(axis=1)) == 0:
        # The controls' spend never moved (e.g. zero everywhere): it predicts nothing; the treated
        # geos' own pre-period level is the counterfactual.
        cf_post, resid = np.full(T1, s_pre.mean()), s_pre - s_pre.mean()
        method = "the treated geos' pre-period level (the control geos' spend is constant)"
    else:
        scale = _scale_of(S_pre, C_pre)
        spend_est = clone(est).set_params(**NO_OWN_INFERENCE.get(_estimator_name(est), {}))
        try:
            fit = spend_est.fit(S_pre / scale, C_pre / scale, C_post / scale)
            cf_post = np.asarray(fit.counterfactual_post_) * scale
            resid = s_pre - np.asarray(fit.counterfactual_pre_) * scale
            method = f"the '{_estimator_name(est)}' counterfactual of the spend"
        except DataError as exc:
            cf_post, resid = np.full(T1, s_pre.mean()), s_pre - s_pre.mean()
            method = "the treated geos' pre-period level"
            notes.append(f"The spend model of '{channel}' could not be fitted ({exc}); its counterfactual is "
                         "the treated geos' pre-period level.")
    observed = float(S_post.sum())
    counterfactual = float(cf_post.sum() * n1)
    noise = _window_noise(resid, T1, alpha) * n1
    return {
        "observed": observed,
        "counterfactual": counterfactual,
        "counterfactual_series": cf_post * n1,
        "observed_series": S_post.sum(axis=1),
        "method": method,
        "noise": noise,
        "moved": bool(abs(observed - counterfactual) > noise),
    }, notes


def _window_noise(resid: np.ndarray, T1: int, alpha: float) -> float:
    """The ``1 - alpha`` quantile of |pre-period residual sums over windows of T1 periods|.

    Moving windows keep the residuals' autocorrelation; with fewer than ten
    windows, the residual sd times sqrt(T1) times the normal quantile.
    """
    resid = np.asarray(resid, float)
    if not resid.size or not np.any(resid):
        return 0.0
    r = resid - resid.mean()
    if len(r) - T1 + 1 >= 10:
        return float(np.quantile(np.abs(np.convolve(r, np.ones(T1), mode="valid")), 1 - alpha))
    from scipy import stats

    return float(stats.norm.ppf(1 - alpha / 2) * r.std(ddof=1) * np.sqrt(T1)) if len(r) > 1 else 0.0


def _periods(panel: Panel, test_period, pre_period) -> tuple[pd.Timestamp, pd.Timestamp, tuple]:
    """The checked test window and pre-period (by default every date before the test)."""
    start, end = _dates(panel, test_period, "test period")
    if pre_period is None:
        pos = panel.date_position(start)
        if pos == 0:
            raise DataError(f"test period starts {start.date()}, the panel's first date: no pre-period to fit on")
        return start, end, (panel.dates[0], panel.dates[pos - 1])
    pre_start, pre_end = _dates(panel, pre_period, "pre-period")
    if pre_end >= start:
        raise DataError(f"pre-period ends {pre_end.date()}, not before the test starts {start.date()}")
    return start, end, (pre_start, pre_end)


def parse_predictor(panel: Panel, spec: str, pre_period: tuple) -> tuple[str, pd.Timestamp, pd.Timestamp]:
    """``COL``, ``COL@A:B`` or ``COL@A`` -> (column, first date, last date), checked against the panel."""
    col, _, window = spec.partition("@")
    col = col.strip()
    if col not in panel.data.columns or col in (panel.geo_col, panel.date_col):
        raise DataError(f"{panel.source}: predictor '{spec}': no column '{col}' in the panel")
    if not pd.api.types.is_numeric_dtype(panel.data[col]):
        raise DataError(f"{panel.source}: predictor column '{col}' is not numeric")
    if not window:
        return col, pre_period[0], pre_period[1]
    a, _, b = window.partition(":")
    first = panel.check_date(a.strip(), f"predictor '{spec}' date")
    last = panel.check_date(b.strip(), f"predictor '{spec}' date") if b else first
    if first > last:
        raise DataError(f"predictor '{spec}': its window starts after it ends")
    if last > pre_period[1]:
        raise DataError(f"predictor '{spec}': its window ends {last.date()}, after the pre-period ({pre_period[1].date()})")
    return col, first, last


def predictor_matrix(panel: Panel, specs: Sequence[str], treated: Sequence[str], control: Sequence[str],
                     pre_period: tuple) -> np.ndarray:
    """Predictor values (k, 1 + J): the treated geos' average, then every control geo."""
    rows = []
    for spec in specs:
        col, first, last = parse_predictor(panel, spec, pre_period)
        # Not panel.wide(): a covariate may be missing outside the predictor's own window (checked below).
        d = panel.data
        dates = pd.to_datetime(d[panel.date_col])
        part = d[(dates >= first) & (dates <= last)]
        window = part.pivot(index=panel.date_col, columns=panel.geo_col, values=col)
        window = window.reindex(columns=list(treated) + list(control)).astype(float)
        bad = [g for g in list(treated) + list(control) if window[g].isna().any()]
        if bad:
            raise DataError(f"{panel.source}: predictor '{spec}': column '{col}' is missing for geo '{bad[0]}' "
                            f"within {first.date()}..{last.date()}")
        means = window.mean(axis=0)
        rows.append(np.r_[means[list(treated)].mean(), means[list(control)].to_numpy()])
    return np.asarray(rows, float)


def _read_out(panel, treated, test_period, *, pre_period, control, est, confidence, channel, seed, mode,
              placebos, exclude, predictors=()) -> Readout:
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
        est.set_params(predictors=predictor_matrix(panel, predictors, treated, control, (pre_start, pre_end)),
                       predictor_names=list(predictors))
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
    y_pre, y_post = Y_pre.mean(axis=1), Y_post.mean(axis=1)
    # Every fit and test runs on data divided by one number, so no threshold or solver
    # tolerance inside an estimator sees the outcome's units.
    scale = _scale_of(Y_pre, X_pre)
    Ys_pre, Ys_post, Xs_pre, Xs_post = Y_pre / scale, Y_post / scale, X_pre / scale, X_post / scale
    ys_pre, ys_post = Ys_pre.mean(axis=1), Ys_post.mean(axis=1)
    t0 = time.perf_counter()
    fitted = clone(est).fit(Ys_pre, Xs_pre, Xs_post)
    fit_seconds = time.perf_counter() - t0
    name = _estimator_name(est)

    inf, tests, extra_notes = _infer(fitted, mode, name, Ys_pre, Ys_post, ys_pre, Xs_pre, ys_post, Xs_post, alpha, seed)
    inf = _unscale_inference(inf, scale)
    note = _permutation_note(inf.method, alpha)
    if note:
        extra_notes.append(note)

    placebo = {}
    if placebos:
        if hasattr(fitted, "refit_params"):
            # Placebo refits keep the tuning the real fit chose (e.g. sc-predictors' V): time one of those.
            t0 = time.perf_counter()
            refit_clone(fitted).fit(ys_pre, Xs_pre, Xs_post)
            fit_seconds = time.perf_counter() - t0
        cap = max(3, int(PLACEBO_BUDGET_S / max(fit_seconds, 1e-6)))
        n_space = min(len(control), max(2, 2 * cap // 3))
        space = placebo_in_space(fitted, ys_pre, Xs_pre, ys_post, Xs_post, list(control), max_placebos=n_space)
        time_ = placebo_in_time(fitted, ys_pre, Xs_pre, len(y_post), actual_score=space.actual_score,
                                max_placebos=min(20, max(1, cap - n_space)))
        placebo = {"space": _unscale_placebo(space, scale), "time": _unscale_placebo(time_, scale)}
        if n_space < len(control):
            extra_notes.append(f"Placebo in space limited to the first {n_space} of {len(control)} donors: "
                               f"one fit takes {fit_seconds:.1f} s.")

    spend = None
    if channel is not None:
        col = panel.spend_column(channel)
        sw = panel.wide(col)
        spend, spend_notes = _spend_readout(
            est, sw.loc[pre_mask, treated].to_numpy(), sw.loc[post_mask, treated].to_numpy(),
            sw.loc[pre_mask, control].to_numpy(), sw.loc[post_mask, control].to_numpy(), alpha, channel)
        extra_notes += spend_notes

    miss = MISCALIBRATED.get(f"{name}:{mode}") or MISCALIBRATED.get(name)
    if miss:
        extra_notes.append(miss)
    return Readout.build(
        panel=panel, estimator=_Unscaled(fitted, scale), estimator_name=name, confidence=float(confidence),
        treated=treated, control=list(control), pre_period=(pre_start, pre_end), test_period=(start, end),
        pre_dates=wide.index[pre_mask], post_dates=wide.index[post_mask], y_pre=y_pre, y_post=y_post,
        inference=inf, placebo=placebo, channel=channel, spend=spend, seed=seed, extra_notes=extra_notes,
        tests=tests, inference_choice=mode,
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
                raise DataError(f"geo '{g}' is in two cells, '{owner[g]}' and '{name}'; cells must be disjoint")
            owner[g] = name
    control = kwargs.get("control")
    if control is not None:
        clash = [g for g in control if g in owner]
        if clash:
            raise DataError(f"geo '{clash[0]}' is given both as control and in cell '{owner[clash[0]]}'")
    readouts = {name: read_out(panel, geos, test_period, _exclude=tuple(owner), **kwargs) for name, geos in cells.items()}
    return MultiCellReadout(readouts)
