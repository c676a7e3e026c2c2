"""How calm the treated set's history is against random sets of its size: the selection check.

A design search (:mod:`experiments.design`) picks the treated set whose history gave the
smallest detectable effect, i.e. whose synthetic control happened to fit best. The readout's
conformal test then measures the test window's noise on that same history, which was chosen for
being calm: its reference is too narrow and the interval undercovers. On the demo's
branded-search go-dark (16 designed markets of 50, 56 days) repeated on 13 worlds, the plain
interval covered the truth 8 times in 13 although the readout was not biased; the designed sets
were no more precise during the test than random sets of their size, only calmer before it
(docs/readout.md, "Designed treated sets"; ``benchmarks/study_brand_readout.py``).

:func:`selection_scale` measures it on the pre-period only (untouched by the test): the spread
of the synthetic control's residual sums over windows of the test's length, for the treated set
and for ``n_sets`` random sets of the same size drawn from the treated and control markets
(each fitted on the remaining markets with the readout's estimator). The conformal interval's
edges are moved away from the estimate by the random sets' root-mean-square spread over the
treated set's own, when that is above 1: the interval is then about as wide as an unselected set
of its size would get from these markets (with the check, the designed go-darks covered 11 of 13). A randomly chosen set is often
calmer than that too, so its already calibrated interval widens as well: the check is for sets a
search chose (``read_out(..., selection_check=True)``), off by default.

It acts only when the pre-period is shorter than the conformal test's recent segment
(:data:`causal.conformal.RECENT_MULTIPLE` test lengths), as in the demo (639 days, 56-day tests).
With a longer history the recent-segment reference already gave designed sets calibrated error
rates: in ``benchmarks/study_design_power.py`` (400 days, 14-day tests) the designs' held-out false
positive rate was 0.081 at alpha 0.1 and detection 0.770 against a claimed 0.819 without the check;
widening there took them to 0.047 and 0.406 (docs/design.md).
"""

from __future__ import annotations

import numpy as np

from causal.base import data_scale
from causal.conformal import RECENT_MULTIPLE, refit_clone

#: Random treated sets the treated set's history is compared with.
N_SETS = 50
#: Fewest windows of the test's length the pre-period must hold for the comparison.
MIN_WINDOWS = 4


def window_spread(estimator, y: np.ndarray, X: np.ndarray, length: int) -> float:
    """Root mean square of the (centred) in-sample residual sums over every window of ``length``."""
    fitted = refit_clone(estimator).fit(y, X, X[:1])
    u = y - np.asarray(fitted.counterfactual_pre_, float)
    sums = np.convolve(u - u.mean(), np.ones(length), mode="valid")
    return float(np.sqrt(np.mean(sums**2)))


def selection_scale(
    estimator,
    Y_pre: np.ndarray,
    X_pre: np.ndarray,
    test_length: int,
    *,
    n_sets: int = N_SETS,
    seed: int = 0,
) -> tuple[float, str | None]:
    """The factor to widen the conformal reference by (at least 1), and a note when it is above 1.

    Parameters
    ----------
    estimator : CounterfactualEstimator
        The readout's estimator (fitted or not; refits keep its tuning).
    Y_pre : ndarray (T0, n)
        The treated geos' pre-period outcomes (one column per geo).
    X_pre : ndarray (T0, J)
        The control geos' pre-period outcomes.
    test_length : int
        Periods of the test.
    n_sets : int, default=20
        Random sets of ``n`` geos drawn from the ``n + J`` geos.
    seed : int, default=0

    Returns
    -------
    (float, str or None)
        1.0 and no note when the pre-period holds ``RECENT_MULTIPLE`` test lengths or more (the
        recent segment's reference is then calibrated for designed sets), fewer than ``MIN_WINDOWS`` windows of the
        test's length, when a random set would leave fewer than two donors, or when the
        treated set is no calmer than the median random set.
    """
    T0, n = Y_pre.shape
    J = X_pre.shape[1]
    if T0 < (MIN_WINDOWS + 1) * test_length or T0 >= RECENT_MULTIPLE * test_length or J < 2:
        return 1.0, None
    own = window_spread(estimator, Y_pre.mean(axis=1), X_pre, test_length)
    pool = np.hstack([Y_pre, X_pre])
    rng = np.random.default_rng([seed, 16])
    spreads = []
    for _ in range(n_sets):
        chosen = np.zeros(n + J, bool)
        chosen[rng.choice(n + J, size=n, replace=False)] = True
        y, X = pool[:, chosen].mean(axis=1), pool[:, ~chosen]
        if np.ptp(y) == 0:
            continue
        spreads.append(window_spread(estimator, y, X, test_length))
    if len(spreads) < 2 or not own > 0:
        return 1.0, None
    # The typical spread in the squared sense an interval covers: the root mean square over the sets.
    typical = float(np.sqrt(np.mean(np.square(spreads))))
    scale = typical / own
    if scale <= 1.0:
        return 1.0, None
    calmer = float(np.mean(np.asarray(spreads) > own))
    note = (
        f"The treated set's pre-period is calmer than {calmer:.0%} of {len(spreads)} random sets of "
        f"its size from the same markets (residual sums over {test_length}-period windows "
        f"{scale:.2f}x smaller than their root mean square): a set chosen for a calm history is not calmer "
        f"during the test, so the conformal interval is widened x{scale:.2f}."
    )
    return scale, note


def set_selection_scale(
    estimator, Y_pre: np.ndarray, X_pre: np.ndarray, test_length: int, *, seed: int = 0
) -> float:
    """:func:`selection_scale` of a treated set before its test, on data in the outcome's units.

    The data are divided by the readout's own :func:`causal.base.data_scale` first, so the factor is
    the one the readout will apply. For a design's claim (:func:`experiments.design.design_experiment`)
    and the test planner's expected standard errors.
    """
    unit = data_scale(Y_pre, X_pre)
    factor, _ = selection_scale(estimator, Y_pre / unit, X_pre / unit, int(test_length), seed=seed)
    return factor
