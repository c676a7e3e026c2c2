"""The readout's first days apart from its total: what the daily series says about carryover.

A go-dark (or heavy-up) does not move the outcome at once: the effect ramps in as the channel's
adstock decays, faster for a short carryover than for a long one. The readout's total says how large
the effect is; how it ramps in over the first days says how long the channel carries over. The
structural model (:mod:`allocation.structural`) enters this as a second likelihood term next to the
total: the early window's incremental *given the total* (exact for jointly Gaussian errors:
``p(early, total) = p(total) p(early | total)``), so the total's term is unchanged and the two
terms are independent.

The conditional's slope and spread come from the readout's own pre-period residuals (observed minus
counterfactual, treated markets summed): over every window of the test's length in the pre-period,
the first ``r`` periods' sum against the window's sum. The spread is then scaled to the readout's own
interval of the total, so autocorrelated residuals (real geo data) set the early window's share of
the noise, and the inference that made the total's interval sets its size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

# The early window: the first week of a daily test (the ramp of a channel whose carryover decays by
# at most 0.7 a day is 92% done after 7 days), the first period of a weekly one; at most a third of
# the test, so the rest of the window still holds most of its periods.
EARLY_PERIODS = {"day": 7, "week": 1}
# Windows of the test's length in the pre-period needed to estimate the slope and spread.
MIN_BLOCKS = 20


def early_window(
    series: pd.DataFrame,
    incremental: float,
    incremental_ci: tuple[float, float],
    confidence: float,
    period: str,
) -> dict | None:
    """The first periods' incremental and its conditional law given the total, or None.

    Parameters
    ----------
    series : DataFrame
        The readout's series: ``period`` ("pre" or "test") and ``incremental`` (observed minus
        counterfactual, treated markets summed), indexed by date.
    incremental, incremental_ci, confidence
        The readout's total and its interval.
    period : str
        The panel's period name; only daily and weekly readouts have an early window.

    Returns
    -------
    dict or None
        ``start``, ``end`` (ISO dates of the early window), ``incremental`` (its observed sum),
        ``slope_on_total`` and ``sd_given_total``: given the total ``T``, the early window's sum is
        normal with mean ``E[early] + slope (T - E[T])`` and this sd. None when the test is too
        short, the pre-period too short, or the series does not add up to the total.
    """
    r = EARLY_PERIODS.get(period)
    test = series[series["period"] == "test"]
    pre = series[series["period"] == "pre"]["incremental"].to_numpy(float)
    n = len(test)
    if r is None or n < 3 * r:
        return None
    inc = test["incremental"].to_numpy(float)
    lo, hi = incremental_ci
    if not (np.isfinite(inc).all() and np.isfinite([lo, hi]).all() and hi > lo):
        return None
    if abs(inc.sum() - incremental) > 1e-6 * max(1.0, abs(incremental)):
        return None  # an inference whose total is not the series' sum
    blocks = len(pre) - n + 1
    if blocks < MIN_BLOCKS or not np.isfinite(pre).all():
        return None
    c = np.concatenate([[0.0], np.cumsum(pre)])
    starts = np.arange(blocks)
    early = c[starts + r] - c[starts]
    total = c[starts + n] - c[starts]
    cov = np.cov(early, total)
    if not cov[1, 1] > 0:
        return None
    slope = float(cov[0, 1] / cov[1, 1])
    # The residual variance's share of the total's, never below a tenth of the independent-periods
    # value (a few hundred overlapping windows estimate it; a near-zero share would make the term
    # claim a precision no readout has).
    share = max(float((cov[0, 0] - slope * cov[0, 1]) / cov[1, 1]), 0.1 * (r / n) * (1 - r / n))
    sd_total = (hi - lo) / (2 * stats.norm.ppf(0.5 + confidence / 2))
    return {
        "start": pd.Timestamp(test.index[0]).date().isoformat(),
        "end": pd.Timestamp(test.index[r - 1]).date().isoformat(),
        "periods": r,
        "incremental": float(inc[:r].sum()),
        "slope_on_total": slope,
        "sd_given_total": float(sd_total * np.sqrt(share)),
    }
