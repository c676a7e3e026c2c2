"""The historical windows of a design: those that choose it and those that measure it.

Picking the best of many candidates by their MDE on some windows and quoting
that MDE is optimistic (the winner's curse); :func:`split_windows` holds the
latest windows out of the search so that the recommended design's claim is
measured on windows that did not choose it.
"""

from __future__ import annotations

import numpy as np

from experiments.design_defaults import SimulationPlan
from experiments.power import simulation_windows

__all__ = ["MIN_SPLIT_WINDOWS", "split_windows", "thin_starts"]


#: Fewest windows on either side of the split between search and claim.
MIN_SPLIT_WINDOWS = 4


def thin_starts(starts: np.ndarray, n: int) -> np.ndarray:
    """``n`` of the starts, spread evenly (all of them if fewer)."""
    if len(starts) <= n:
        return starts
    return starts[np.unique(np.round(np.linspace(0, len(starts) - 1, max(n, 1))).astype(int))]


def split_windows(
    n_periods: int, plan: SimulationPlan, claim_share: float
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray], bool]:
    """Windows that choose the design and later windows that measure the chosen one.

    The latest ``claim_share`` of the admissible window starts, every one of
    them, are held out of the search: the recommended design's power, MDE and
    false positive rate are measured there. The MDE of the best of many
    candidates measured on the windows that picked it is biased low (the
    winner's curse); measured on windows that did not pick it, it is not.
    The earlier starts, thinned to ``plan.n_windows``, run the search.

    Returns ``(claim, search, search_all, held_out)``; when either side would
    have fewer than :data:`MIN_SPLIT_WINDOWS` windows for some test length
    (or ``claim_share`` is 0) nothing is held out, the claim is made on the
    search windows and ``held_out`` is False.
    """
    claim, select, select_all = {}, {}, {}
    held_out = claim_share > 0
    every = {
        d: simulation_windows(n_periods, d, n_windows=n_periods, min_pre=plan.min_pre[d])
        for d in plan.durations
    }
    ks = {
        d: int(np.ceil(len(st) * claim_share)) if claim_share > 0 else 0 for d, st in every.items()
    }
    if any(k < MIN_SPLIT_WINDOWS or len(every[d]) - k < MIN_SPLIT_WINDOWS for d, k in ks.items()):
        held_out = False
    for d, st in every.items():
        k = ks[d] if held_out else 0
        select_all[d] = st[k:]
        select[d] = thin_starts(st[k:], plan.n_windows)
        claim[d] = st[:k] if held_out else select[d]
    return claim, select, select_all, held_out
