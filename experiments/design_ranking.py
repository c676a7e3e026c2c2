"""Scoring and choosing designs: pre-period fit, investment, the composite rank and the cells.

The ranking follows GeoLift's composite: the sum of a design's ranks on MDE,
pre-period fit, investment (when priced) and excess false positives, designs
that reach the power target within budget first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from causal.base import clone
from causal.errors import ConfigError, DataError
from experiments.design_result import CandidateDesign

__all__ = ["choose_cells", "fit_quality", "price", "rank_designs"]


def fit_quality(
    Y: np.ndarray, treated: Sequence[int], control: Sequence[int], estimator
) -> tuple[dict, np.ndarray]:
    """Pre-period fit of the treated average on the whole history; (metrics, synthetic series)."""
    est = clone(estimator).fit(Y[:, treated], Y[:, control], None)
    y = Y[:, treated].mean(axis=1)
    synth = np.asarray(est.counterfactual_pre_, dtype=float)
    resid = y - synth
    sst = float(np.sum((y - y.mean()) ** 2))
    out = {
        "r2": float(1 - np.sum(resid**2) / sst) if sst > 0 else None,
        "mape": float(np.mean(np.abs(resid) / np.maximum(np.abs(y), 1e-12))),
        "scaled_l2_imbalance": float(getattr(est, "scaled_l2_imbalance_", np.nan)),
    }
    return out, synth


def rank_designs(
    designs: list[CandidateDesign], use_investment: bool, alpha: float
) -> list[CandidateDesign]:
    """GeoLift-style composite rank: sum of the ranks on MDE, pre-period fit, investment and excess false positives.

    Designs that reach the power target within budget come first; among them the
    composite decides, ties broken by the MDE.
    """
    if not designs:
        return designs
    mde = np.array([d.mde if d.mde is not None else np.inf for d in designs])
    fit = np.array(
        [
            d.fit.get("scaled_l2_imbalance")
            if np.isfinite(d.fit.get("scaled_l2_imbalance") or np.nan)
            else 1 - (d.fit.get("r2") or 0.0)
            for d in designs
        ]
    )
    # Over-rejection on history counts against a design even below the cap: its power is partly false positives.
    fpr = np.array([max(d.null_rejection_rate - alpha, 0.0) for d in designs])
    score = _ranks(mde) + _ranks(fit) + _ranks(fpr)
    if use_investment:
        inv = np.array([d.investment if d.investment is not None else np.inf for d in designs])
        score = score + _ranks(inv)
    ok = np.array([d.feasible for d in designs])
    order = np.lexsort((mde, score, ~ok))
    ranked = [designs[i] for i in order]
    for r, d in enumerate(ranked, start=1):
        d.rank = r
    return ranked


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def price(
    d: CandidateDesign, cpi: float | None, ips: float | None, budget: float | None
) -> CandidateDesign:
    inc = d.power.mde_incremental
    if inc is not None and (cpi is not None or ips is not None):
        d.investment = float(abs(inc) * cpi) if cpi is not None else float(abs(inc) / ips)
    d.within_budget = budget is None or (d.investment is not None and d.investment <= budget)
    return d


def choose_cells(
    ranked: list[CandidateDesign], n_cells: int, include: Sequence[str] = ()
) -> list[CandidateDesign]:
    """The best design holding the included geos, then the best-ranked disjoint designs of its length."""
    first = [d for d in ranked if set(include) <= set(d.treated)]
    if not first:
        raise DataError("no candidate design could be evaluated")
    cells = [first[0]]
    used = set(cells[0].treated)
    for d in ranked:
        if len(cells) == n_cells:
            break
        if d.duration == cells[0].duration and not used & set(d.treated):
            cells.append(d)
            used |= set(d.treated)
    if len(cells) < n_cells:
        raise ConfigError(
            f"only {len(cells)} disjoint treated set(s) of {cells[0].duration} periods among the "
            f"{len(ranked)} simulated designs; ask for fewer cells or allow more geos"
        )
    return cells
