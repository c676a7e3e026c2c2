"""Inference of lift readouts: each estimator's choices, the conformal presets, and the fallbacks.

:func:`infer` runs the inference chosen for an estimator and, when it cannot give a finite
interval that contains its estimate, the next valid one (an estimator's other own inference,
the conformal test, placebo gaps), returning notes that say which ran and why. The tables
here (choices, fallbacks, the simulation study's misses) are read by
:func:`experiments.readout.read_out` and the CLI.
"""

from __future__ import annotations

import re

import numpy as np

from causal.base import (
    ESTIMATOR_PATHS,
    CounterfactualEstimator,
    clone,
    estimator_class,
    get_tags,
)
from causal.conformal import conformal_inference, placebo_in_space
from causal.errors import ConfigError, DataError
from causal.inference import EffectInference
from experiments.readout_geo import GEO_LEVEL

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
# The estimators' declarations (their tags, causal.base.EstimatorTags), by INTERFACE.md name:
# the inferences each carries itself (choice -> the parameters that select it; the first is
# its default), the parameters that turn them off (a conformal readout, a spend fit), and the
# estimators the conformal test cannot refit (bsts: a fit takes seconds, the test refits
# hundreds of times). Every other estimator also takes the conformal presets above.
_TAGS = {name: get_tags(estimator_class(name)()) for name in ESTIMATOR_PATHS}
OWN_INFERENCE: dict[str, dict[str, dict]] = {
    name: {k: dict(v) for k, v in t.inference_options.items()}
    for name, t in _TAGS.items()
    if t.inference_options
}
NO_OWN_INFERENCE: dict[str, dict] = {
    name: dict(t.without_own_inference) for name, t in _TAGS.items() if t.without_own_inference
}
NO_CONFORMAL = tuple(name for name, t in _TAGS.items() if not t.conformal)
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


def inference_choices(estimator: str) -> list[str]:
    """The ``inference`` values an estimator (by name) takes; the first is its default."""
    if estimator in GEO_LEVEL:
        return [estimator]  # the method's own test only
    own = list(OWN_INFERENCE.get(estimator, {}))
    return own + ([] if estimator in NO_CONFORMAL else list(INFERENCE))


def configure_inference(
    est: CounterfactualEstimator, inference: str | None
) -> tuple[CounterfactualEstimator, str]:
    """The estimator set up for the chosen inference, and the choice (``None``: the estimator's default)."""
    name = estimator_name(est)
    if name in OWN_INFERENCE or name in NO_CONFORMAL:
        choices = inference_choices(name)
    else:
        # An estimator of the user's own: "own" when it carries its inference.
        tags = get_tags(est)
        choices = (["own"] if tags.own_inference else []) + (
            list(INFERENCE) if tags.conformal else []
        )
    if inference is None:
        # An estimator object configured for its own inference keeps it; otherwise the first choice.
        if name in OWN_INFERENCE and not get_tags(est).own_inference:
            return est, "conformal"
        return est, choices[0]
    if inference not in choices:
        raise ConfigError(
            f"inference '{inference}' is not available for estimator '{name}' "
            f"(valid: {', '.join(choices)})"
        )
    if inference in OWN_INFERENCE.get(name, {}):
        est.set_params(**OWN_INFERENCE[name][inference])
    elif name in NO_OWN_INFERENCE:
        est.set_params(**NO_OWN_INFERENCE[name])
    return est, inference


def estimator_name(est: CounterfactualEstimator) -> str:
    return est.name or type(est).__name__


def _valid(inf: EffectInference | None) -> bool:
    """A finite interval that contains its own estimate."""
    if inf is None:
        return False
    lo, hi = inf.effect_ci
    tol = 1e-9 * max(abs(inf.effect), abs(lo), abs(hi), 1e-300)
    return bool(
        np.isfinite([lo, hi]).all()
        and lo - tol <= inf.effect <= hi + tol
        and np.isfinite(inf.p_value)
    )


def _conformal(
    fitted, y_pre, X_pre, y_post, X_post, alpha, seed, preset, scale=1.0
) -> tuple[EffectInference, list[dict]]:
    """The conformal test of ``preset``; with ``geolift`` also the average-effect test behind its interval."""
    data = (fitted, y_pre, X_pre, y_post, X_post)
    inf = conformal_inference(*data, alpha=alpha, seed=seed, widen=scale, **INFERENCE[preset])
    tests = [{"test": preset, "p_value": inf.p_value, "method": inf.method}]
    if preset == "geolift":
        # GeoLift's sum-of-|residuals| statistic tests the whole path of effects;
        # the interval on the *average* effect inverts the average-effect statistic.
        ci_inf = conformal_inference(
            *data, alpha=alpha, seed=seed, permutation="iid", statistic="mean", widen=scale
        )
        tests.append(
            {
                "test": "interval (same permutations, 'mean' statistic)",
                "p_value": ci_inf.p_value,
                "method": ci_inf.method,
            }
        )
        inf = EffectInference(
            inf.effect,
            ci_inf.effect_ci,
            inf.p_value,
            inf.counterfactual_lo,
            inf.counterfactual_hi,
            inf.method + "; interval: same permutations, 'mean' statistic",
        )
    return inf, tests


def gap_placebo_inference(
    fitted, y_pre, X_pre, y_post, X_post, alpha: float, *, refit: bool = True
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
        space = placebo_in_space(
            fitted, y_pre, X_pre, y_post, X_post, [str(j) for j in range(X_pre.shape[1])]
        )
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
    return EffectInference(
        effect,
        (effect - q, effect + q),
        p,
        cf - band,
        cf + band,
        f"placebo gaps ({kind}; Abadie, Diamond & Hainmueller 2010), rank test",
    )


def infer(
    fitted,
    mode: str,
    name: str,
    Y_pre,
    Y_post,
    y_pre,
    X_pre,
    y_post,
    X_post,
    alpha,
    seed,
    reference_scale: float = 1.0,
) -> tuple[EffectInference, list[dict], list[str]]:
    """The chosen inference, or the first valid fallback, with the tests run and notes on what fell back.

    ``reference_scale`` widens every conformal test's interval (``widen`` of
    :func:`causal.conformal.conformal_inference`; :func:`experiments.readout_selection.selection_scale`)."""
    notes: list[str] = []
    tried: list[str] = []
    if mode in OWN_INFERENCE.get(name, {}) or mode == "own":
        try:
            z = getattr(fitted, "placebo_z_", None)
            if mode == "placebo" and z is not None and z.size < 10:
                # tbr/bsts would quietly use their analytic interval, which misses on geo data.
                raise ConfigError(f"{z.size} placebo groups, fewer than 10 (too few control geos)")
            inf = fitted.effect_inference(Y_post, confidence=1.0 - alpha)
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
                inf = alt_fit.effect_inference(Y_post, confidence=1.0 - alpha)
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
        inf, tests = _conformal(
            conf_fit, y_pre, X_pre, y_post, X_post, alpha, seed, preset, reference_scale
        )
        if _valid(inf):
            if tried:
                notes.append(
                    f"Inference fell back to the conformal test '{preset}': "
                    + "; ".join(tried)
                    + "."
                )
                if f"{name}:conformal-fallback" in MISCALIBRATED:
                    notes.append(MISCALIBRATED[f"{name}:conformal-fallback"])
            return inf, tests, notes
        tried.append(
            f"the conformal test '{preset}' gave no finite interval containing the estimate"
        )
    inf = gap_placebo_inference(
        fitted, y_pre, X_pre, y_post, X_post, alpha, refit=name not in NO_CONFORMAL
    )
    if inf is None:
        raise DataError(
            f"no valid inference for estimator '{name}': "
            + "; ".join(tried)
            + "; and there are too few donors and pre-periods for placebo gaps"
        )
    notes.append("Inference fell back to placebo gaps: " + "; ".join(tried) + ".")
    return inf, [{"test": "placebo gaps", "p_value": inf.p_value, "method": inf.method}], notes


def permutation_note(method: str, alpha: float) -> str | None:
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
    return (
        f"The test's reference distribution has {n} draws: the smallest attainable p-value is {p_min:.3f}, "
        f"and at {1 - alpha:.0%} the interval's edges rest on its {max(int(np.floor(alpha / p_min)), 1)} most "
        "extreme draw(s), so it is wide and moves in steps with the confidence level; a longer pre-period or "
        "more control geos give a finer test."
    )
