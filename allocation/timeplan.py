r"""Daily plans over a horizon: adstock carryover, a title-launch calendar, a rolling 7-day guardrail.

For line :math:`i` (a channel in a market) and day :math:`t` the plan chooses
spend :math:`x_{it} \ge 0`. Carryover is the normalised geometric adstock of
:mod:`causal.transforms`,

.. math:: a_{it} = (1-\lambda_i) x_{it} + \lambda_i a_{i,t-1},

linear in spend, so the outcome :math:`\sum_{it} m_{it} f_i(a_{it})` stays
concave (each :math:`f_i` is a concave curve of curves.json) and the plan is the
global optimum of a convex problem. :math:`m_{it}` is the launch calendar's
demand multiplier (one elsewhere).

The guardrail says no line changes by more than a share :math:`F` of its
current spend :math:`c_i` within any 7-day window: for every two days
:math:`s < t` with :math:`t - s \le 6`, :math:`|x_{it} - x_{is}| \le F c_i`,
where the days before the plan (the history: yesterday's spend, or the current
spend) take part in the windows that reach back into them.

The launch calendar
-------------------
A launch of strength :math:`k` on day :math:`L` in a market scales demand: on the
``pre_days`` days before it the response of *awareness* channels (``ctv``,
``programmatic``, ``social`` by default) is worth :math:`1 + k` (audiences primed
for the title convert later on what they saw), and from the launch day the
response of *conversion* channels (names containing ``search`` by default) is
worth :math:`1 + k e^{-(t - L)/\tau}` with :math:`\tau` = ``post_days / 2``, for
``post_days`` days (the organic interest that search harvests). The plan then
moves spend toward awareness before a launch and toward search after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np

from allocation.constraints import (
    WINDOW,
    guardrail_box,
    guardrail_constraints,
    guardrail_violation,
    rule_name,
    spend_constraints,
)
from allocation.curves import CurveSet
from allocation.daily_ipm import SUPPORTED, solve_daily
from allocation.jsonfile import read_json
from allocation.plans import TimePlan, _tabulate
from allocation.problem import concave_response, scaling, solve_robust, structure_key
from allocation.rules import Rules, check_feasible, group_matrix, line_bounds, market_matrix
from causal.errors import ConfigError, DataError, InfeasibleError

# The daily problem is large: faer's sparse LDL is ~25% faster than the default qdldl here, and a
# relative gap of 1e-7 (instead of 1e-8) saves a quarter of the iterations at no visible cost.
# Iterative refinement of each KKT solve to 1e-10 instead of Clarabel's 1e-13/1e-12 (far below the
# 1e-7 gap and feasibility tolerances it serves) cut the solve time 2.4x at 100 x 8 lines x 28 days,
# same iterations, objective equal to 1e-9 relative (benchmarks/bench_allocation.py).
_DAILY_OPTIONS = {"direct_solve_method": "faer", "tol_gap_rel": 1e-7, "tol_gap_abs": 1e-6, "tol_feas": 1e-7,
                  "iterative_refinement_reltol": 1e-10, "iterative_refinement_abstol": 1e-10}
AWARENESS = ("ctv", "programmatic", "social")
# Plans and the guardrail live in their own modules; re-exported for existing callers.
__all__ = ["WINDOW", "Launch", "LaunchCalendar", "TimePlan", "guardrail_box", "guardrail_violation", "plan_days",
           "replan"]


@dataclass
class Launch:
    """One title launch: the day (index from the plan's first day), market (None: all), strength."""

    day: int
    market: str | None = None
    strength: float = 0.5
    pre_days: int = 7
    post_days: int = 7


@dataclass
class LaunchCalendar:
    """Title launches, and which channels build awareness and which convert.

    Parameters
    ----------
    launches : list of Launch
    awareness : tuple of str
        Channels whose response before a launch is scaled up.
    conversion : tuple of str or None
        Channels whose response after a launch is scaled up; ``None``: names containing ``search``.
    """

    launches: list[Launch] = field(default_factory=list)
    awareness: tuple[str, ...] = AWARENESS
    conversion: tuple[str, ...] | None = None

    def is_conversion(self, name: str) -> bool:
        return name in self.conversion if self.conversion is not None else "search" in name

    def multipliers(self, curves: CurveSet, days: int) -> np.ndarray:
        """Demand multiplier per line and day, shape ``(lines, days)``."""
        m = np.ones((len(curves), days))
        t = np.arange(days)
        for ev in self.launches:
            pre = (t >= ev.day - ev.pre_days) & (t < ev.day)
            tau = max(ev.post_days / 2.0, 1e-9)
            post = (t >= ev.day) & (t < ev.day + ev.post_days)
            post_boost = np.where(post, ev.strength * np.exp(-(t - ev.day) / tau), 0.0)
            for i, c in enumerate(curves):
                if ev.market is not None and c.market != ev.market:
                    continue
                if c.name in self.awareness:
                    m[i] += np.where(pre, ev.strength, 0.0)
                elif self.is_conversion(c.name):
                    m[i] += post_boost
        return m

    def shifted(self, days: int) -> LaunchCalendar:
        """The same calendar seen ``days`` later (for a re-plan)."""
        return LaunchCalendar([Launch(e.day - days, e.market, e.strength, e.pre_days, e.post_days)
                               for e in self.launches], self.awareness, self.conversion)

    def to_dict(self) -> dict[str, Any]:
        return {"launches": [vars(e) for e in self.launches], "awareness": list(self.awareness),
                "conversion": None if self.conversion is None else list(self.conversion)}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<calendar>") -> LaunchCalendar:
        if isinstance(data, list):
            data = {"launches": data}
        if not isinstance(data, dict) or not isinstance(data.get("launches"), list):
            raise DataError(f"{source}: expected {{\"launches\": [{{\"day\": 10, \"market\": \"US\", \"strength\": 0.5}}]}}")
        launches = []
        for i, e in enumerate(data["launches"]):
            where = f"{source}: launches[{i}]"
            if not isinstance(e, dict) or "day" not in e:
                raise DataError(f"{where}: needs key 'day' (index of the launch day from the plan's first day)")
            unknown = set(e) - {"day", "market", "strength", "pre_days", "post_days"}
            if unknown:
                raise DataError(f"{where}: unknown key '{sorted(unknown)[0]}'")
            try:
                ev = Launch(int(e["day"]), e.get("market"), float(e.get("strength", 0.5)),
                            int(e.get("pre_days", 7)), int(e.get("post_days", 7)))
            except (TypeError, ValueError) as exc:
                raise DataError(f"{where}: {exc}") from None
            if ev.strength < 0 or ev.pre_days < 0 or ev.post_days < 0:
                raise DataError(f"{where}: strength, pre_days and post_days must be >= 0")
            launches.append(ev)
        conv = data.get("conversion")
        return cls(launches, tuple(data.get("awareness", AWARENESS)), None if conv is None else tuple(conv))

    @classmethod
    def load(cls, path: str | Path) -> LaunchCalendar:
        return cls.from_dict(read_json(path, "launch calendar"), source=str(path))


def plan_days(curves: CurveSet, rules: Rules, *, days: int = 28, calendar: LaunchCalendar | None = None,
              history: np.ndarray | None = None, solver: str = "auto") -> TimePlan:
    """The optimal daily plan over ``days`` days.

    Parameters
    ----------
    curves : CurveSet
        Concave curves with ``adstock.decay`` per line (0: no carryover).
    rules : Rules
        ``budget`` is the total over the horizon (default: current spend times ``days``);
        floors, ceilings, commitments, market and group budgets apply per day;
        ``max_change`` is the rolling 7-day guardrail.
    calendar : LaunchCalendar, optional
    history : array (lines, h), optional
        Spend on the days before the plan (oldest first), for the guardrail windows and
        the starting adstock; default: one day at the current spend.
    solver : str, default="auto"
        ``"structured"``: the interior-point method of :mod:`allocation.daily_ipm`, which
        solves one small block per line and the budget row by a Schur complement (it
        handles the budget, floors, ceilings, commitments and the guardrail; not market or
        group budgets, which couple lines day by day). Any cvxpy solver name (``"CLARABEL"``)
        solves the same problem written in cvxpy. ``"auto"``: structured when it applies,
        otherwise Clarabel. Both reach the same optimum (tests/test_alloc_daily_ipm.py).

    Returns
    -------
    TimePlan
    """
    if days < 1:
        raise ConfigError(f"days must be >= 1, got {days}")
    if not all(c.is_concave for c in curves):
        bad = next(c for c in curves if not c.is_concave)
        raise ConfigError(f"line {bad.label}: S-shaped curves are not supported in daily plans "
                          "(use the static allocate, which handles them with a mixed-integer model)")
    rules = Rules(**rules.to_dict()).validate()
    n = len(curves)
    need_current = rules.max_change is not None
    cur = curves.current(required=need_current, why=f"the guardrail (max_change {rules.max_change}) needs")
    if history is None:
        history = np.nan_to_num(cur, nan=0.0)[:, None]
    history = np.asarray(history, dtype=float)
    if history.shape[0] != n:
        raise DataError(f"history has {history.shape[0]} lines, curves have {n}")
    if rules.budget is None:
        if np.isnan(cur).any():
            raise ConfigError("a daily plan needs --budget (total over the horizon) when a line has no current_spend")
        rules.budget = float(cur.sum() * days)
    static_rules = Rules(**{**rules.to_dict(), "max_change": None, "budget": None})
    bounds = line_bounds(curves, static_rules)
    lo = np.repeat(bounds.lower[:, None], days, axis=1)
    hi = np.repeat(bounds.upper[:, None], days, axis=1)
    band = None
    if rules.max_change is not None:
        band = rules.max_change * cur
        glo, ghi = guardrail_box(history, days, band)
        lo, hi = np.maximum(lo, glo), np.minimum(hi, ghi)
        # Over the whole horizon a line can drift at most the band from the last history day's 7-day reach.
    bad = np.argwhere(lo > hi * (1 + 1e-12) + 1e-12)
    if len(bad):
        i, t = bad[0]
        raise InfeasibleError(f"line {curves.labels[i]} day {t}: the guardrail window (max_change "
                              f"{rules.max_change}) allows at most {hi[i, t]:,.2f} but floors/commitments need {lo[i, t]:,.2f}")
    per_day = Rules(**{**rules.to_dict(), "budget": rules.spendable / days if rules.spendable is not None else None,
                       "reserve": 0.0, "reserve_share": 0.0, "max_change": None})
    check_feasible(curves, per_day, bounds, objective="max_incremental")
    if rules.spendable < lo.sum() * (1 - 1e-9) - 1e-9:
        raise InfeasibleError(f"the daily lower bounds (floors, commitments, guardrail from the history) sum to "
                              f"{lo.sum():,.2f} over {days} days, above the budget {rules.spendable:,.2f}")
    if rules.budget_mode == "eq" and np.isfinite(hi).all() and hi.sum() < rules.spendable * (1 - 1e-9):
        raise InfeasibleError(f"the daily upper bounds (ceilings, guardrail) sum to {hi.sum():,.2f} over {days} days, "
                              f"below the budget {rules.spendable:,.2f} that budget_mode 'eq' must spend")

    # Starting adstock: the history run through the recursion from its first day.
    lam = np.array([c.decay for c in curves])
    a0 = history[:, 0].copy()
    for t in range(1, history.shape[1]):
        a0 = (1 - lam) * history[:, t] + lam * a0
    refs = [c.max_spend or (cur[i] if np.isfinite(cur[i]) and cur[i] > 0 else None) or rules.budget / days / n
            for i, c in enumerate(curves)]
    cs = np.array([scaling(c, r) for c, r in zip(curves, refs)])
    coef, scale = cs[:, 0], cs[:, 1]
    mult = calendar.multipliers(curves, days) if calendar is not None else np.ones((n, days))

    structured_reason = _structured_blocker(curves, rules, coef[:, None] * mult, lo, hi, band)
    if solver.lower() == "structured" and structured_reason:
        raise ConfigError(f"solver 'structured' does not apply here: {structured_reason}; use --solver CLARABEL")
    fallback = ""
    if solver.lower() in ("structured", "auto") and not structured_reason:
        try:
            return _plan_structured(curves, rules, coef, scale, mult, lam, a0, lo, hi, band, history, cur, calendar)
        except _Stalled as exc:
            if solver.lower() == "structured":
                raise InfeasibleError(f"{exc}; retry with --solver CLARABEL") from None
            fallback = f"; {exc}, solved by Clarabel instead"
    if solver.lower() == "auto":
        solver = "CLARABEL"

    x = cp.Variable((n, days), nonneg=True, name="spend")
    w = cp.Variable((n, days), nonneg=True, name="scaled_adstock")  # adstock / scale
    lam_c, keep = lam[:, None], (1 - lam)[:, None] / scale[:, None]
    cons: dict[str, cp.Constraint] = {}
    cons["adstock_start"] = w[:, 0] == cp.multiply(keep[:, 0], x[:, 0]) + lam * a0 / scale
    if days > 1:
        cons["adstock"] = w[:, 1:] == cp.multiply(np.repeat(keep, days - 1, 1), x[:, 1:]) + cp.multiply(
            np.repeat(lam_c, days - 1, 1), w[:, :-1])
    budget_p = cp.Parameter(nonneg=True, name="budget")
    cons.update(spend_constraints(
        x, lower=lo, upper=hi, budget=budget_p, budget_mode=rules.budget_mode,
        market=market_matrix(curves, rules)[:2] if rules.market_budgets else None,
        group=group_matrix(curves, rules)[:3] if rules.group_budgets else None))
    if band is not None and days > 1:
        cons.update(guardrail_constraints(x, band))
    weights = coef[:, None] * mult
    objective = concave_response(w, list(structure_key(curves)), weights)
    problem = cp.Problem(cp.Maximize(objective), list(cons.values()))
    budget_p.value = max(rules.spendable, 0.0)
    t0 = time.perf_counter()
    try:
        solve_robust(problem, solver, _DAILY_OPTIONS if solver.upper() == "CLARABEL" else {})
    except cp.error.SolverError as exc:
        raise InfeasibleError(f"solver {solver} failed on the daily plan ({exc})") from None
    elapsed = time.perf_counter() - t0
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE) or x.value is None:
        raise InfeasibleError(f"the daily plan is infeasible under: {', '.join(sorted({rule_name(k) for k in cons}))}")
    spend = np.maximum(x.value, 0.0)
    if band is not None:
        spend = _project_guardrail(spend, lo, hi)
    dual = cons["total_budget"].dual_value
    guarded = np.zeros(n, dtype=bool)
    for name, c in cons.items():
        if name.startswith("guardrail") and c.dual_value is not None:
            guarded |= np.abs(c.dual_value).max(axis=1) > 1e-7
    plan = _tabulate(curves, rules, spend, history, a0, mult, lam, cur, None if dual is None else float(abs(dual)),
                     guarded, problem.status, elapsed, calendar, solver, lo, hi)
    plan.method += fallback
    return plan


def _structured_blocker(curves: CurveSet, rules: Rules, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                        band: np.ndarray | None) -> str:
    """Why the structured solver cannot take this plan ('' if it can)."""
    if rules.market_budgets:
        return "market budgets couple lines day by day"
    if rules.group_budgets:
        return "group budgets couple lines day by day"
    odd = next((c for c in curves if c.form not in SUPPORTED), None)
    if odd is not None:
        return f"line {odd.label} has form {odd.form}"
    # A linear line is flat in the direction of moving its spend between days: its block of the
    # Newton system is singular but for the barrier, which the per-line elimination cannot take.
    flat = next((c for c in curves if c.form == "linear" or (c.form == "power" and float(c.params["exponent"]) >= 1)),
                None)
    if flat is not None:
        return f"line {flat.label} has a linear curve"
    room = hi.min(axis=1) - lo.max(axis=1)
    if not (room > 0).all():
        i = int(np.argmin(room))
        return f"line {curves.labels[i]} has no constant spend strictly inside its floors, ceilings and guardrail box"
    if (weights < 0).any():
        return "a curve has a negative coefficient"
    if band is not None and not (band > 0).all():
        return "a guardrail band is zero"
    if not rules.spendable or rules.spendable <= 0:
        return "the budget is zero"
    return ""


class _Stalled(RuntimeError):
    """The structured solver stopped short of the optimum (numerically degenerate plan)."""


def _plan_structured(curves, rules, coef, scale, mult, lam, a0, lo, hi, band, history, cur, calendar):
    n, days = mult.shape
    reference = np.array([cur[i] if np.isfinite(cur[i]) and cur[i] > 0 else rules.spendable / days / n
                          for i in range(n)])
    shapes = np.array([c.shape if c.form == "hill" else float(c.params.get("exponent", 1.0)) for c in curves])
    # The same margin as the cvxpy build: the reported plan stays inside the band, not only within tolerance.
    t0 = time.perf_counter()
    sol = solve_daily(forms=[c.form for c in curves], shapes=shapes, weights=coef[:, None] * mult, scale=scale,
                      decay=lam, start_adstock=a0, lower=lo, upper=hi,
                      band=None if band is None else band * (1 - 1e-6), window=WINDOW,
                      budget=float(rules.spendable), budget_mode=rules.budget_mode, reference=reference)
    elapsed = time.perf_counter() - t0
    if sol.status != "optimal":
        raise _Stalled(f"the structured solver stopped after {sol.iterations} iterations short of the optimum "
                       f"(relative gap {sol.gap:.1e})")
    spend = _project_guardrail(np.maximum(sol.spend, 0.0), lo, hi)
    plan = _tabulate(curves, rules, spend, history, a0, mult, lam, cur, sol.budget_dual,
                     sol.guardrail_dual > 1e-7, "optimal", elapsed, calendar, "liftlab structured IPM", lo, hi)
    plan.method = f"convex (daily, adstock; structured interior point, {sol.iterations} iterations)"
    plan.gap = sol.gap
    return plan


def _project_guardrail(spend: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    # Interior-point solutions sit within ~1e-10 of the bounds; clip to the box so a
    # reported plan never exceeds a guardrail bound by rounding.
    return np.minimum(np.maximum(spend, lo), hi)


def replan(previous: dict, curves: CurveSet, *, elapsed: int = 1, actual: np.ndarray | None = None,
           days: int | None = None, budget: float | None = None, rules: Rules | None = None,
           solver: str = "auto") -> TimePlan:
    """Re-plan from yesterday's plan (a plan.json dict) with refreshed curves.

    The first ``elapsed`` days of the previous plan are done (their planned spend,
    or ``actual`` spend of shape ``(lines, elapsed)``); they join the history so the
    rolling guardrail windows reach back into them. The new plan covers the
    previous plan's remaining days (or ``days``) with the previous plan's
    remaining spend as budget (or ``budget``), and the launch calendar shifted.
    """
    prev_lines = previous.get("lines")
    if not isinstance(prev_lines, list) or not prev_lines or "daily_spend" not in prev_lines[0]:
        raise DataError("previous plan: no 'lines' with 'daily_spend' (write it with allocate --days)")
    by_label = {(ln["name"], ln.get("market")): ln for ln in prev_lines}
    sched, hist = [], []
    for c in curves:
        ln = by_label.get((c.name, c.market))
        if ln is None:
            raise DataError(f"previous plan has no line {c.label}; re-plan needs the same lines as yesterday's plan")
        sched.append(ln["daily_spend"])
        hist.append(ln.get("history") or [])
    sched = np.array(sched, dtype=float)
    prev_days = sched.shape[1]
    if not 1 <= elapsed < prev_days + 1:
        raise ConfigError(f"elapsed must be between 1 and the previous plan's {prev_days} days, got {elapsed}")
    done = sched[:, :elapsed] if actual is None else np.asarray(actual, dtype=float).reshape(len(curves), elapsed)
    history = np.concatenate([np.array(hist, dtype=float).reshape(len(curves), -1), done], axis=1)[:, -(WINDOW - 1):]
    remaining = prev_days - elapsed
    days = days or remaining
    if days < 1:
        raise ConfigError("the previous plan has no days left; give --days")
    if budget is None:
        per_day = sched.sum() / prev_days
        budget = float(sched[:, elapsed:elapsed + days].sum() + per_day * max(0, days - remaining))
    rules = Rules(**(rules.to_dict() if rules is not None else previous.get("constraints") or {}))
    rules.budget = budget
    if previous.get("max_change") is not None and rules.max_change is None:
        rules.max_change = previous["max_change"]
    cal = previous.get("launch_calendar")
    calendar = LaunchCalendar.from_dict(cal).shifted(elapsed) if cal else None
    return plan_days(curves, rules, days=days, calendar=calendar, history=history, solver=solver)
