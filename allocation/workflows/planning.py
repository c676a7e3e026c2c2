"""The budget-plan workflows behind ``liftlab allocate`` and ``liftlab replan``.

:func:`plan_budget` solves the plan (static or day by day), adds the optional
efficient frontier and sample-robust plan, and the plan's gain under every
posterior draw of the curves; :func:`replan_budget` re-plans the remaining
days of a daily plan. Both return a :class:`PlanRun`: the plan objects, the
``plan.json`` payload and the audit record's inputs. :func:`commit_plan`
records the decision in the audit trail around the caller's file writing, so
a plan that was never written leaves no record. An infeasible request is
recorded too, then raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allocation.audit import AuditLog
from allocation.business_rules import Rules
from allocation.curves import CurveSet
from allocation.optimize import allocate
from allocation.scenarios import budget_sweep, plan_uncertainty, robust_allocate, sample_curves
from causal.errors import InfeasibleError


@dataclass
class PlanRun:
    """What a plan workflow produced.

    Attributes
    ----------
    plan : Plan or TimePlan
        The optimal plan.
    curves : CurveSet
        The curves it was solved on.
    result : dict
        The ``plan.json`` payload (INTERFACE.md keys, plus ``uncertainty``,
        ``frontier``, ``robust``, ``timing``); :func:`commit_plan` adds ``audit_id``.
    audit : dict
        Keyword arguments of :meth:`AuditLog.recording`: every input of the decision.
    frontier, robust : optional
        The efficient frontier and the sample-robust plan, when asked for.
    notes : list of str
        Facts a reader should see beside the plan (where the samples came from).
    """

    plan: Any
    curves: CurveSet
    result: dict
    audit: dict
    frontier: Any = None
    robust: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def uncertainty(self) -> dict | None:
        """The plan's outcome and gain over the current spend under the curves' posterior draws."""
        return self.result.get("uncertainty")


def current_budget(curves: CurveSet, why: str) -> float:
    """The current spend summed over the lines: the budget every command defaults to."""
    cur = curves.current(
        required=True, why=f"{why} without a budget (the budget defaults to the current spend)"
    )
    return float(cur.sum())


def _solve_or_record(solve: Callable[[], Any], log: AuditLog | None, record: dict) -> Any:
    try:
        return solve()
    except InfeasibleError as exc:
        # An infeasible request is a decision too: record it, then let the caller report it.
        if log is not None:
            log.record(**{**record, "solution": {**record["solution"], "error": str(exc)}})
        raise


def plan_budget(
    curves: CurveSet,
    rules: Rules,
    *,
    objective: str = "max_incremental",
    target: float | None = None,
    value_per_signup: float | None = None,
    days: int | None = None,
    calendar=None,
    solver: str = "auto",
    s_curves: str = "milp",
    frontier: int | None = None,
    n_samples: int | None = None,
    risk: str = "expected",
    tail: float = 0.1,
    sample_cv: float = 0.2,
    seed: int = 0,
    log: AuditLog | None = None,
    sources: dict | None = None,
) -> PlanRun:
    """Solve a budget plan on ``curves`` under ``rules``, with its uncertainty.

    Parameters
    ----------
    curves : CurveSet
    rules : Rules
        Budget, guardrail and named constraints; a ``frontier`` without a
        budget sweeps around the current spend (``rules.budget`` is set to it).
    objective, target, value_per_signup, s_curves
        As :func:`allocation.optimize.allocate`.
    days, calendar, solver
        Plan day by day over ``days`` (:func:`allocation.daily_plan.plan_days`).
    frontier : int, optional
        Budgets of the efficient frontier, from 0.25x to 2x the budget per period.
    n_samples, risk, tail, sample_cv, seed
        Also plan over ``n_samples`` draws of the curves (their posterior draws,
        or log-normal draws with coefficient of variation ``sample_cv``),
        maximising the expected outcome or its lower-``tail`` CVaR.
    log : AuditLog, optional
        Where an infeasible request is recorded before it is raised.
    sources : dict, optional
        File names of the inputs, stored with the audit record.

    Returns
    -------
    PlanRun
    """
    if frontier and rules.budget is None:
        rules.budget = current_budget(curves, "the frontier") * (days or 1)
    options = {
        "frontier": frontier,
        "samples": n_samples,
        "risk": risk,
        "alpha": tail,  # the audit trail's key since its first record
        "sample_cv": sample_cv,
        "seed": seed,
        "objective": objective,
        "target": target,
        "value_per_signup": value_per_signup,
        "days": days,
        "solver": solver,
        "s_curves": s_curves,
        **(sources or {}),
        "launch_calendar": None if calendar is None else calendar.to_dict(),
    }
    record = {
        "command": "allocate",
        "curves": curves.to_dict(),
        "constraints": rules.to_dict(),
        "solution": {"status": "infeasible", "objective": objective},
        "options": options,
    }
    if days:
        from allocation.daily_plan import plan_days

        if calendar is not None:
            calendar.check(curves, days)  # a launch in no market or day of the plan changes nothing

        plan = _solve_or_record(
            lambda: plan_days(curves, rules, days=days, calendar=calendar, solver=solver),
            log,
            record,
        )
        command = "allocate --days"
    else:
        plan = _solve_or_record(
            lambda: allocate(
                curves,
                objective=objective,
                rules=rules,
                target=target,
                value_per_signup=value_per_signup,
                s_curves=s_curves,
            ),
            log,
            record,
        )
        command = "allocate"
    result = plan.to_dict()
    timing = result.pop("timing", {})
    sweep = robust = None
    notes: list[str] = []
    if frontier:
        sweep = budget_sweep(
            curves,
            np.linspace(0.25, 2.0, frontier) * (rules.budget / (days or 1)),
            rules=Rules(**rules.to_dict()),
        )
        result["frontier"] = sweep.to_dict()
        timing["frontier_seconds"] = result["frontier"].pop("timing")["solve_seconds"]
    result["uncertainty"] = plan_uncertainty(curves, plan)
    if n_samples:
        if rules.budget is None:
            per_period = current_budget(curves, "the sample-robust plan")
        else:
            per_period = rules.budget / (days or 1)
        robust = robust_allocate(
            curves,
            sample_curves(curves, n_samples, cv=sample_cv, seed=seed),
            budget=per_period,
            rules=Rules(**{**rules.to_dict(), "budget": None}),
            risk=risk,
            tail=tail,
        )
        result["robust"] = robust.to_dict()
        src = curves.source
        result["robust"]["sample_source"] = (
            f"posterior draws in {src} (the first {min(n_samples, curves.n_draws)} of {curves.n_draws})"
            if curves.n_draws
            else f"no posterior draws in {src}: log-normal draws of beta and scale "
            f"(cv {sample_cv}, seed {seed})"
        )
        notes.append("samples: " + result["robust"]["sample_source"])
    result["timing"] = timing
    audit = {**record, "command": command, "solution": result}
    return PlanRun(plan, curves, result, audit, frontier=sweep, robust=robust, notes=notes)


def replan_budget(
    previous: dict,
    curves: CurveSet,
    *,
    elapsed: int,
    days: int | None = None,
    budget: float | None = None,
    max_change: float | None = None,
    solver: str = "auto",
    log: AuditLog | None = None,
    sources: dict | None = None,
) -> PlanRun:
    """Re-plan the remaining days of a daily plan (``previous``, a parsed plan.json) on refreshed curves.

    Parameters
    ----------
    previous : dict
        Yesterday's daily plan, checked by :func:`allocation.plan_file.check_previous_plan`.
    curves : CurveSet
    elapsed : int
        Days of the old plan already spent.
    days, budget, max_change, solver
        The new horizon, budget and guardrail (default: the old plan's).
    log : AuditLog, optional
        Where an infeasible re-plan is recorded before it is raised.
    sources : dict, optional
        File names of the inputs, stored with the audit record.
    """
    from allocation.daily_plan import replan

    plan_source = (sources or {}).get("plan_file") or "previous plan"
    rules = None
    if max_change is not None:
        rules = Rules(**(previous.get("constraints") or {}))
        rules.max_change = max_change
    # Every input of the decision: yesterday's plan is one (its schedule, history and calendar).
    options = {
        **(sources or {}),
        "elapsed": elapsed,
        "days": days,
        "budget": budget,
        "max_change": max_change,
        "solver": solver,
        "previous_plan": {k: v for k, v in previous.items() if k not in ("timing", "audit_db")},
    }
    record = {
        "command": "replan",
        "curves": curves.to_dict(),
        "constraints": previous.get("constraints") or {},
        "solution": {"status": "infeasible"},
        "options": options,
    }
    plan = _solve_or_record(
        lambda: replan(
            previous,
            curves,
            elapsed=elapsed,
            days=days,
            budget=budget,
            rules=rules,
            solver=solver,
            source=plan_source,
        ),
        log,
        record,
    )
    result = plan.to_dict()
    result["previous_audit_id"] = previous.get("audit_id")
    result["uncertainty"] = plan_uncertainty(curves, plan)
    audit = {**record, "constraints": plan.rules, "solution": result}
    return PlanRun(plan, curves, result, audit)


def commit_plan(run: PlanRun, log: AuditLog, write: Callable[[dict], None]) -> int:
    """Record ``run`` in the audit trail around ``write(run.result)``; returns the record's id.

    ``write`` writes the plan's files (all or nothing); the record commits only
    after it returns, so a plan that was never written leaves no record, and a
    failed record leaves the caller's writer to discard its files.
    """
    with log.recording(**run.audit) as audit_id:
        run.result["audit_id"] = audit_id
        if run.audit["command"].startswith("allocate"):
            run.result["audit_db"] = log.safe_url()
        write(run.result)
    return audit_id
