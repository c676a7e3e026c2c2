r"""A mixed-integer piecewise-linear daily plan: the reference for small S-curve instances.

Each line's curve is interpolated on its reachable adstock range (from the bounds and the
guardrail, :func:`allocation.constraints.implied_bounds`) at ``pieces + 1`` breakpoints,
in the incremental formulation (Dantzig 1960); the segments of an S-shaped line are
forced to fill in order by binaries, one set per line and day. HiGHS solves it to a
relative MIP gap of 1e-9. With :math:`\varepsilon_i` the largest under-statement of line
:math:`i`'s curve by its interpolant, every feasible plan's true outcome is at most the
model's optimum plus :math:`\sum_{i,t} m_{it} \varepsilon_i`: that is the upper bound
reported. The binaries grow as lines x days x pieces, so this is for small cases and
for checking the daily planner (tests/test_alloc_daily_s_curves.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from allocation.business_rules import Rules, group_matrix, market_matrix
from allocation.constraints import guardrail_constraints, implied_bounds, spend_constraints
from allocation.curves import CurveSet
from causal import response as R

#: The most binaries the reference takes (lines with S-curves x days x pieces).
MAX_BINARIES = 6000


@dataclass
class PiecewiseDaily:
    """The reference plan: spend (lines x days), its true outcome and the proven upper bound."""

    spend: np.ndarray
    outcome: float
    upper_bound: float
    model_value: float
    binaries: int

    @property
    def gap(self) -> float:
        return max(0.0, (self.upper_bound - self.outcome) / max(abs(self.upper_bound), 1e-300))


def daily_outcome(
    curves: CurveSet, spend: np.ndarray, decay: np.ndarray, start: np.ndarray, mult: np.ndarray
) -> float:
    """Total outcome over the horizon of a daily plan on the true curves (adstock and multipliers)."""
    return float((curves.evaluate_lines(R.geometric_carry(spend, decay, start)) * mult).sum())


def solve_daily_pwl(
    curves: CurveSet,
    *,
    lo: np.ndarray,
    hi: np.ndarray,
    band: np.ndarray | None,
    decay: np.ndarray,
    start: np.ndarray,
    mult: np.ndarray,
    budget: float,
    budget_mode: str = "le",
    rules: Rules | None = None,
    pieces: int = 40,
) -> PiecewiseDaily:
    """Maximise the piecewise-linear outcome over daily spend with binaries for S-shaped lines.

    ``lo``, ``hi`` (lines x days) are the spend bounds (floors, ceilings, the guardrail box from
    the history), ``band`` the guardrail per line, ``decay`` and ``start`` the adstock, ``mult``
    the calendar's multipliers, ``budget`` the spendable total over the horizon; ``rules`` adds
    market and group budgets.
    """
    n, days = mult.shape
    ilo, ihi = implied_bounds(lo, hi, band)
    ihi = np.minimum(ihi, budget)  # no day can take more than the whole budget
    a_lo = R.geometric_carry(ilo, decay, start).min(axis=1)
    a_hi = R.geometric_carry(ihi, decay, start).max(axis=1)
    s_lines = np.array([not c.is_concave for c in curves])
    binaries = int(s_lines.sum()) * days * (pieces - 1)
    if binaries > MAX_BINARIES:
        raise ValueError(
            f"{binaries} binaries: the piecewise-linear reference is for small cases "
            f"(at most {MAX_BINARIES})"
        )
    pw = [
        R.piecewise(c.form, c.params, a_lo[i], max(a_hi[i], a_lo[i] + 1e-9), pieces)
        for i, c in enumerate(curves)
    ]
    width = np.array([np.diff(p.xs) for p in pw])  # (n, K)
    slope = np.array([p.slopes for p in pw])
    rep = np.repeat(np.arange(n), days)  # row (i, t) of the stacked segment variables
    x = cp.Variable((n, days), nonneg=True, name="spend")
    a = cp.Variable((n, days), name="adstock")
    d = cp.Variable((n * days, pieces), nonneg=True, name="segments")
    cons = [
        a[:, 0] == cp.multiply(1 - decay, x[:, 0]) + decay * start,
        d <= width[rep],
        cp.reshape(cp.sum(d, axis=1), (n, days), order="C") == a - a_lo[:, None],
    ]
    if days > 1:
        cons.append(
            a[:, 1:]
            == cp.multiply(np.repeat((1 - decay)[:, None], days - 1, 1), x[:, 1:])
            + cp.multiply(np.repeat(decay[:, None], days - 1, 1), a[:, :-1])
        )
    s_rows = np.flatnonzero(s_lines[rep])
    if len(s_rows) and pieces > 1:
        y = cp.Variable((len(s_rows), pieces - 1), boolean=True, name="segment_order")
        ds = d[s_rows, :]
        cons += [
            ds[:, :-1] >= cp.multiply(width[rep][s_rows, :-1], y),
            ds[:, 1:] <= cp.multiply(width[rep][s_rows, 1:], y),
        ]
    named = spend_constraints(
        x,
        lower=lo,
        upper=hi,
        budget=budget,
        budget_mode=budget_mode,
        market=market_matrix(curves, rules)[:2]
        if rules is not None and rules.market_budgets
        else None,
        group=group_matrix(curves, rules)[:3]
        if rules is not None and rules.group_budgets
        else None,
    )
    if band is not None and days > 1:
        named.update(guardrail_constraints(x, band))
    base = np.array([p.ys[0] for p in pw])
    m_flat = mult.reshape(-1)
    objective = float((base[:, None] * mult).sum()) + cp.sum(
        cp.multiply(slope[rep] * m_flat[:, None], d)
    )
    problem = cp.Problem(cp.Maximize(objective), cons + list(named.values()))
    problem.solve(solver="HIGHS", mip_rel_gap=1e-9, output_flag=False)
    if x.value is None:
        raise ValueError(f"piecewise-linear daily reference: solver status {problem.status}")
    spend = np.clip(x.value, lo, hi)
    eps = np.array([p.under for p in pw])
    bound = float(problem.value) + float((eps[:, None] * mult).sum())
    return PiecewiseDaily(
        spend,
        daily_outcome(curves, spend, decay, start, mult),
        bound,
        float(problem.value),
        binaries,
    )
