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

The launch calendar (:mod:`allocation.launches`) scales each line's response per day. The
checked inputs go to the structured solver (:mod:`allocation.daily_structured`, which also
takes S-shaped curves) or, for what it does not take, to the cvxpy problem written here.
A re-plan (:func:`replan`) reads yesterday's plan.json (:mod:`allocation.plan_file`).
"""

from __future__ import annotations

import time

import cvxpy as cp
import numpy as np

from allocation.business_rules import (
    Rules,
    check_feasible,
    group_matrix,
    line_bounds,
    market_matrix,
)
from allocation.constraints import (
    WINDOW,
    guardrail_box,
    guardrail_constraints,
    rule_name,
    spend_constraints,
)
from allocation.curves import CurveSet
from allocation.daily_inputs import DailyInputs
from allocation.daily_structured import (
    Stalled,
    plan_s_curves,
    plan_structured,
    project_box,
    structured_blocker,
)
from allocation.launches import LaunchCalendar
from allocation.plan_file import check_previous_plan, check_same_lines
from allocation.plans import TimePlan, tabulate_days
from allocation.problem import concave_response, scaling, solve_robust, structure_key
from causal.errors import ConfigError, DataError, InfeasibleError

# The daily problem is large: faer's sparse LDL is ~25% faster than the default qdldl here, and a
# relative gap of 1e-7 (instead of 1e-8) saves a quarter of the iterations at no visible cost.
# Iterative refinement of each KKT solve to 1e-10 instead of Clarabel's 1e-13/1e-12 (far below the
# 1e-7 gap and feasibility tolerances it serves) cut the solve time 2.4x at 100 x 8 lines x 28 days,
# same iterations, objective equal to 1e-9 relative (benchmarks/bench_allocation.py).
_DAILY_OPTIONS = {
    "direct_solve_method": "faer",
    "tol_gap_rel": 1e-7,
    "tol_gap_abs": 1e-6,
    "tol_feas": 1e-7,
    "iterative_refinement_reltol": 1e-10,
    "iterative_refinement_abstol": 1e-10,
}
__all__ = ["check_size", "plan_days", "replan"]


#: 139 MiB peak at 1,520 lines x 28 days, growing linearly) with a margin for temporaries.
BYTES_PER_LINE_DAY = 4096
#: The largest daily plan taken: lines x days. The cvxpy path (group budgets, a named solver) needs
#: far more memory per line-day (its canonicalisation), so it has its own, smaller limit.
MAX_LINE_DAYS = 500_000
MAX_LINE_DAYS_CVXPY = 60_000


def check_size(lines: int, days: int, *, structured: bool = True) -> None:
    """Refuse a daily plan past the size limit, naming it, instead of running out of memory."""
    limit = MAX_LINE_DAYS if structured else MAX_LINE_DAYS_CVXPY
    if lines * days > limit:
        need = lines * days * BYTES_PER_LINE_DAY / 2**30
        raise ConfigError(
            f"daily plan of {lines:,} lines x {days} days = {lines * days:,} line-days is past the limit "
            f"of {limit:,} line-days ({'structured solver' if structured else 'cvxpy path'}; about "
            f"{need:.1f} GiB for the structured solver): plan fewer days or split the markets"
        )


def plan_days(
    curves: CurveSet,
    rules: Rules,
    *,
    days: int = 28,
    calendar: LaunchCalendar | None = None,
    history: np.ndarray | None = None,
    solver: str = "auto",
) -> TimePlan:
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
    convex = next((c for c in curves if c.form == "power" and not c.is_concave), None)
    if convex is not None:
        raise ConfigError(
            f"line {convex.label}: power curve with exponent {convex.params['exponent']:g} > 1 is "
            "convex (increasing returns without bound); use exponent <= 1 or a Hill curve"
        )
    rules = Rules(**rules.to_dict()).validate()
    n = len(curves)
    check_size(
        n, days, structured=solver.lower() in ("structured", "auto") and not rules.group_budgets
    )
    need_current = rules.max_change is not None
    cur = curves.current(
        required=need_current, why=f"the guardrail (max_change {rules.max_change}) needs"
    )
    if history is None:
        history = np.nan_to_num(cur, nan=0.0)[:, None]
    history = np.asarray(history, dtype=float)
    if history.shape[0] != n:
        raise DataError(f"history has {history.shape[0]} lines, curves have {n}")
    if rules.budget is None:
        if np.isnan(cur).any():
            raise ConfigError(
                "a daily plan needs a budget (the total over the horizon) when a line has no "
                "current_spend"
            )
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
        raise InfeasibleError(
            f"line {curves.labels[i]} day {t}: the guardrail window (max_change "
            f"{rules.max_change}) allows at most {hi[i, t]:,.2f} but floors/commitments need {lo[i, t]:,.2f}"
        )
    per_day = Rules(
        **{
            **rules.to_dict(),
            "budget": rules.spendable / days if rules.spendable is not None else None,
            "reserve": 0.0,
            "reserve_share": 0.0,
            "max_change": None,
        }
    )
    check_feasible(curves, per_day, bounds, objective="max_incremental")
    if rules.spendable < lo.sum() * (1 - 1e-9) - 1e-9:
        need = (lo.sum() + rules.reserve) / (1 - rules.reserve_share)
        raise InfeasibleError(
            f"the daily lower bounds (floors, commitments, guardrail from the history) sum to "
            f"{lo.sum():,.2f} over {days} days, above the budget {rules.spendable:,.2f}; binding "
            f"rule: {'guardrail (max_change)' if band is not None else 'line_floors'}; the smallest "
            f"feasible budget is {need:,.2f}"
        )
    if (
        rules.budget_mode == "eq"
        and np.isfinite(hi).all()
        and hi.sum() < rules.spendable * (1 - 1e-9)
    ):
        raise InfeasibleError(
            f"the daily upper bounds (ceilings, guardrail) sum to {hi.sum():,.2f} over {days} days, "
            f"below the budget {rules.spendable:,.2f} that budget_mode 'eq' must spend"
        )

    # Starting adstock: the history run through the recursion from its first day.
    decay = np.array([c.decay for c in curves])
    a0 = history[:, 0].copy()
    for t in range(1, history.shape[1]):
        a0 = (1 - decay) * history[:, t] + decay * a0
    refs = [
        c.max_spend
        or (cur[i] if np.isfinite(cur[i]) and cur[i] > 0 else None)
        or rules.budget / days / n
        for i, c in enumerate(curves)
    ]
    cs = np.array([scaling(c, r) for c, r in zip(curves, refs)])
    if calendar is not None:
        calendar.check(curves)
    mult = calendar.multipliers(curves, days) if calendar is not None else np.ones((n, days))
    inp = DailyInputs(
        curves=curves,
        rules=rules,
        coef=cs[:, 0],
        scale=cs[:, 1],
        mult=mult,
        decay=decay,
        start_adstock=a0,
        lower=lo,
        upper=hi,
        band=band,
        history=history,
        current=cur,
        calendar=calendar,
    )

    structured_reason = structured_blocker(inp)
    s_lines = [c.label for c in curves if not c.is_concave]
    if s_lines:
        if structured_reason or solver.lower() not in ("structured", "auto"):
            why = structured_reason or f"solver {solver} takes concave (DCP) curves only"
            raise ConfigError(
                f"line {s_lines[0]}: S-shaped Hill curve in a daily plan needs the structured solver, "
                f"which does not apply here: {why}"
            )
        return plan_s_curves(inp)
    if solver.lower() == "structured" and structured_reason:
        raise ConfigError(
            f"solver 'structured' does not apply here: {structured_reason}; "
            "a cvxpy solver (CLARABEL) takes it"
        )
    fallback = ""
    if solver.lower() in ("structured", "auto") and not structured_reason:
        try:
            return plan_structured(inp)
        except Stalled as exc:
            if solver.lower() == "structured":
                raise InfeasibleError(f"{exc}; a cvxpy solver (CLARABEL) may reach it") from None
            fallback = f"; {exc}, solved by Clarabel instead"
    plan = _plan_cvxpy(inp, "CLARABEL" if solver.lower() == "auto" else solver)
    plan.method += fallback
    return plan


def _plan_cvxpy(inp: DailyInputs, solver: str) -> TimePlan:
    """The daily plan as a cvxpy problem, one named constraint per rule, solved by ``solver``."""
    curves, rules, band, lo, hi = inp.curves, inp.rules, inp.band, inp.lower, inp.upper
    n, days = inp.mult.shape
    decay, scale = inp.decay, inp.scale
    x = cp.Variable((n, days), nonneg=True, name="spend")
    w = cp.Variable((n, days), nonneg=True, name="scaled_adstock")  # adstock / scale
    keep = (1 - decay)[:, None] / scale[:, None]
    cons: dict[str, cp.Constraint] = {}
    cons["adstock_start"] = (
        w[:, 0] == cp.multiply(keep[:, 0], x[:, 0]) + decay * inp.start_adstock / scale
    )
    if days > 1:
        cons["adstock"] = w[:, 1:] == cp.multiply(
            np.repeat(keep, days - 1, 1), x[:, 1:]
        ) + cp.multiply(np.repeat(decay[:, None], days - 1, 1), w[:, :-1])
    budget_p = cp.Parameter(nonneg=True, name="budget")
    cons.update(
        spend_constraints(
            x,
            lower=lo,
            upper=hi,
            budget=budget_p,
            budget_mode=rules.budget_mode,
            market=market_matrix(curves, rules)[:2] if rules.market_budgets else None,
            group=group_matrix(curves, rules)[:3] if rules.group_budgets else None,
        )
    )
    if band is not None and days > 1:
        cons.update(guardrail_constraints(x, band))
    objective = concave_response(w, list(structure_key(curves)), inp.weights)
    problem = cp.Problem(cp.Maximize(objective), list(cons.values()))
    budget_p.value = max(rules.spendable, 0.0)
    t0 = time.perf_counter()
    try:
        solve_robust(problem, solver, _DAILY_OPTIONS if solver.upper() == "CLARABEL" else {})
    except cp.error.SolverError as exc:
        raise InfeasibleError(f"solver {solver} failed on the daily plan ({exc})") from None
    elapsed = time.perf_counter() - t0
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE) or x.value is None:
        raise InfeasibleError(
            f"the daily plan is infeasible under: {', '.join(sorted({rule_name(k) for k in cons}))}"
        )
    spend = np.maximum(x.value, 0.0)
    if band is not None:
        spend = project_box(spend, lo, hi)
    dual = cons["total_budget"].dual_value
    guarded = np.zeros(n, dtype=bool)
    for name, c in cons.items():
        if name.startswith("guardrail") and c.dual_value is not None:
            guarded |= np.abs(c.dual_value).max(axis=1) > 1e-7
    return tabulate_days(
        inp,
        spend,
        dual=None if dual is None else float(abs(dual)),
        guarded=guarded,
        status=problem.status,
        seconds=elapsed,
        solver=solver,
    )


def replan(
    previous: dict,
    curves: CurveSet,
    *,
    elapsed: int = 1,
    actual: np.ndarray | None = None,
    days: int | None = None,
    budget: float | None = None,
    rules: Rules | None = None,
    solver: str = "auto",
    source: str = "previous plan",
) -> TimePlan:
    """Re-plan from yesterday's plan (a plan.json dict) with refreshed curves.

    The first ``elapsed`` days of the previous plan are done (their planned spend,
    or ``actual`` spend of shape ``(lines, elapsed)``); they join the history so the
    rolling guardrail windows reach back into them. The new plan covers the
    previous plan's remaining days (or ``days``) with the previous plan's
    remaining spend as budget (or ``budget``), and the launch calendar shifted.
    """
    by_label = check_previous_plan(previous, source)
    check_same_lines(by_label, curves, source, curves.source)
    sched, hist = [], []
    for c in curves:
        ln = by_label[(c.name, c.market)]
        sched.append(ln["daily_spend"])
        hist.append(ln.get("history") or [])
    sched = np.array(sched, dtype=float)
    if len({len(h) for h in hist}) > 1:
        raise DataError(f"{source}: key 'history' has different lengths across lines")
    hist = [np.asarray(h, dtype=float) for h in hist]
    prev_days = sched.shape[1]
    if not 1 <= elapsed < prev_days + 1:
        raise ConfigError(
            f"elapsed must be between 1 and the previous plan's {prev_days} days, got {elapsed}"
        )
    done = (
        sched[:, :elapsed]
        if actual is None
        else np.asarray(actual, dtype=float).reshape(len(curves), elapsed)
    )
    history = np.concatenate([np.array(hist, dtype=float).reshape(len(curves), -1), done], axis=1)[
        :, -(WINDOW - 1) :
    ]
    remaining = prev_days - elapsed
    days = days or remaining
    if days < 1:
        raise ConfigError("the previous plan has no days left; give the number of days to plan")
    if budget is None:
        per_day = sched.sum() / prev_days
        budget = float(
            sched[:, elapsed : elapsed + days].sum() + per_day * max(0, days - remaining)
        )
    if rules is None:
        try:
            rules = Rules(**(previous.get("constraints") or {})).validate(
                f"{source}: key 'constraints'"
            )
        except TypeError as exc:
            raise DataError(f"{source}: key 'constraints' has an unknown rule ({exc})") from None
    rules = Rules(**rules.to_dict())
    rules.budget = budget
    if previous.get("max_change") is not None and rules.max_change is None:
        rules.max_change = previous["max_change"]
    cal = previous.get("launch_calendar")
    calendar = (
        LaunchCalendar.from_dict(cal, source=f"{source}: key 'launch_calendar'").shifted(elapsed)
        if cal
        else None
    )
    return plan_days(curves, rules, days=days, calendar=calendar, history=history, solver=solver)
