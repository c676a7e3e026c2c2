"""The spend side of a lift readout: counterfactual spend, and whether the test moved spend at all."""

from __future__ import annotations

import numpy as np
from scipy import stats

from causal.base import clone, data_scale
from causal.errors import DataError
from experiments.readout_inference import NO_OWN_INFERENCE, estimator_name

# A positive number of the data's order of magnitude: every fit runs on data divided by it.


def spend_readout(
    est, S_pre, S_post, C_pre, C_post, alpha: float, channel: str
) -> tuple[dict, list[str]]:
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
        scale = data_scale(S_pre, C_pre)
        spend_est = clone(est).set_params(**NO_OWN_INFERENCE.get(estimator_name(est), {}))
        try:
            fit = spend_est.fit(S_pre / scale, C_pre / scale, C_post / scale)
            cf_post = np.asarray(fit.counterfactual_post_) * scale
            resid = s_pre - np.asarray(fit.counterfactual_pre_) * scale
            method = f"the '{estimator_name(est)}' counterfactual of the spend"
        except DataError as exc:
            cf_post, resid = np.full(T1, s_pre.mean()), s_pre - s_pre.mean()
            method = "the treated geos' pre-period level"
            notes.append(
                f"The spend model of '{channel}' could not be fitted ({exc}); its counterfactual is "
                "the treated geos' pre-period level."
            )
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
    return float(stats.norm.ppf(1 - alpha / 2) * r.std(ddof=1) * np.sqrt(T1)) if len(r) > 1 else 0.0
