"""The one constraint builder: each business rule one named cvxpy constraint, and the 7-day guardrail.

Every planner (static, S-shaped piecewise, samples, daily) states its rules through
:func:`spend_constraints` and, for daily plans, :func:`guardrail_constraints`, so a rule
means the same thing and carries the same name everywhere:

================== =================================================================
name               rule
================== =================================================================
``total_budget``   total spend ``<=`` (``le``) or ``==`` (``eq``) the spendable budget
``line_floors``    spend ``>=`` the line's lower bound (floor, commitment, guardrail)
``line_ceilings``  spend ``<=`` the line's upper bound (ceiling, guardrail)
``market_budgets`` a market's spend ``<=`` its budget (per period)
``group_budgets``  a channel group's spend ``<=`` its maximum
``group_minimums`` a channel group's spend ``>=`` its minimum
``guardrail``      no line moves by more than ``max_change * current`` within any
                   :data:`WINDOW`-day window (daily plans)
================== =================================================================

The guardrail's window, its box on the first days (from the history), its implied
bounds over the horizon and its check are defined here once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import cvxpy as cp

#: The guardrail's rolling window in days: no two days less than ``WINDOW`` apart differ by more than the band.
WINDOW = 7


def _rows(values, days: int | None):
    """Per-row values, repeated over days when the spend is a (lines x days) matrix."""
    if days is None or not isinstance(values, np.ndarray):
        return values
    return np.repeat(values[:, None], days, axis=1)


def spend_constraints(
    spend: cp.Expression,
    *,
    lower: np.ndarray | cp.Expression | None = None,
    upper: np.ndarray | cp.Expression | None = None,
    upper_idx: np.ndarray | None = None,
    budget: float | cp.Expression | None = None,
    budget_mode: str = "le",
    market: tuple | None = None,
    group: tuple | None = None,
) -> dict[str, Any]:
    """The named constraints of an allocation on a cvxpy spend vector (lines) or matrix (lines x days).

    Parameters
    ----------
    spend : cvxpy.Expression
        Spend per line, or per line and day (then the budget is the total over all days and
        market and group budgets hold each day).
    lower, upper : array or cvxpy.Parameter, optional
        Bounds of the shape of ``spend`` (``upper`` may hold ``inf``: no ceiling there), or, with
        ``upper_idx``, the ceilings of those lines only.
    budget : float or cvxpy.Parameter, optional
        The spendable budget; none: no ``total_budget``.
    budget_mode : {"le", "eq"}
    market : (matrix, caps), optional
        0/1 rows selecting each budgeted market's lines, and the caps (array or Parameter).
    group : (matrix, caps, minimums), optional
        The same for channel groups; caps may hold ``inf`` (no maximum) when an array.

    Returns
    -------
    dict of name -> cvxpy.Constraint
    """
    import cvxpy as cp

    days = spend.shape[1] if len(spend.shape) == 2 else None
    cons: dict[str, Any] = {}
    if budget is not None:
        total = cp.sum(spend)
        cons["total_budget"] = (total == budget) if budget_mode == "eq" else (total <= budget)
    if lower is not None:
        cons["line_floors"] = spend >= lower
    if upper is not None:
        if upper_idx is not None:
            if len(upper_idx):
                cons["line_ceilings"] = spend[upper_idx] <= upper
        else:
            fin = np.isfinite(upper)
            if fin.all():
                cons["line_ceilings"] = spend <= upper
            elif fin.any():
                cons["line_ceilings"] = spend[fin] <= upper[fin]
    if market is not None and len(market[0]):
        mat, caps = market
        cons["market_budgets"] = mat @ spend <= _rows(caps, days)
    if group is not None and len(group[0]):
        mat, caps, mins = group
        if isinstance(caps, np.ndarray):
            fc = np.isfinite(caps)
            if fc.any():
                cons["group_budgets"] = mat[fc] @ spend <= _rows(caps[fc], days)
        else:
            cons["group_budgets"] = mat @ spend <= caps
        cons["group_minimums"] = mat @ spend >= _rows(mins, days)
    return cons


def guardrail_constraints(x: cp.Expression, band: np.ndarray) -> dict[str, Any]:
    """The rolling guardrail on a (lines x days) spend matrix: ``|x_t - x_{t-k}| <= band`` for ``k < WINDOW``.

    One constraint per lag and direction (``guardrail_lag{k}_up``/``_down``), so each reports
    its dual; all are the rule ``guardrail``. A margin of 1e-6 of the band absorbs the
    solver's feasibility tolerance, so a reported plan never exceeds the band by rounding.
    """
    days = x.shape[1]
    cons: dict[str, Any] = {}
    for k in range(1, min(WINDOW, days)):
        d = x[:, k:] - x[:, :-k]
        b = np.repeat(np.asarray(band)[:, None] * (1 - 1e-6), days - k, 1)
        cons[f"guardrail_lag{k}_up"] = d <= b
        cons[f"guardrail_lag{k}_down"] = d >= -b
    return cons


def rule_name(constraint: str) -> str:
    """The rule a constraint name belongs to (``guardrail_lag3_up`` -> ``guardrail``)."""
    return "guardrail" if constraint.startswith("guardrail") else constraint


def guardrail_box(
    history: np.ndarray, days: int, band: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the first days implied by the history days inside their 7-day windows."""
    n, h = history.shape
    lo, hi = np.zeros((n, days)), np.full((n, days), np.inf)
    for j in range(min(days, WINDOW - 1)):
        for k in range(j + 1, WINDOW):  # partner is k days earlier, in the history
            pos = h + j - k
            if pos < 0:
                break
            lo[:, j] = np.maximum(lo[:, j], history[:, pos] - band)
            hi[:, j] = np.minimum(hi[:, j], history[:, pos] + band)
    return lo, hi


def implied_bounds(
    lo: np.ndarray, hi: np.ndarray, band: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Tighter per-day bounds that every plan inside the box and the guardrail satisfies.

    A day within the window of a bounded day can be at most one band further:
    ``lo_t >= lo_s - band`` and ``hi_t <= hi_s + band`` for ``|t - s| < WINDOW``, propagated
    forward and backward until nothing changes. The feasible set is unchanged; the bounds
    say how far the guardrail lets a line's spend (and so its adstock) move over the horizon.
    """
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    if band is None:
        return lo, hi
    b = np.asarray(band, dtype=float)[:, None]
    days = lo.shape[1]
    for _ in range(days):
        old_lo, old_hi = lo.copy(), hi.copy()
        for k in range(1, min(WINDOW, days)):
            lo[:, k:] = np.maximum(lo[:, k:], lo[:, :-k] - b)
            lo[:, :-k] = np.maximum(lo[:, :-k], lo[:, k:] - b)
            hi[:, k:] = np.minimum(hi[:, k:], hi[:, :-k] + b)
            hi[:, :-k] = np.minimum(hi[:, :-k], hi[:, k:] + b)
        if np.array_equal(lo, old_lo) and np.array_equal(hi, old_hi):
            break
    return lo, hi


def guardrail_violation(
    schedule: np.ndarray, history: np.ndarray, current: np.ndarray, max_change: float
) -> float:
    """Largest change within any 7-day window, as a multiple of ``max_change * current`` (<= 1 is fine)."""
    seq = np.concatenate([history, schedule], axis=1)
    h = history.shape[1]
    worst = 0.0
    band = max_change * current
    for k in range(1, WINDOW):
        for t in range(max(h, k), seq.shape[1]):
            d = np.abs(seq[:, t] - seq[:, t - k])
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(band > 0, d / band, np.where(d > 1e-9, np.inf, 0.0))
            worst = max(worst, float(r.max()))
    return worst
