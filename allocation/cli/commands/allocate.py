"""``liftlab allocate``: the budget plan on response curves, with its audit record."""

from __future__ import annotations

import click
import numpy as np

from allocation.audit import AuditLog
from allocation.cli.options import seed_option
from allocation.cli.outputs import dumps, outputs
from allocation.curves import CurveSet
from allocation.optimize import OBJECTIVES, allocate
from allocation.rules import Rules
from causal.errors import ConfigError, InfeasibleError


@click.command("allocate")
@click.option(
    "--curves",
    "curves_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="curves.json (INTERFACE.md).",
)
@click.option(
    "--budget",
    type=float,
    default=None,
    help="Total budget per period (over the horizon with --days); default: the current spend.",
)
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False), help="plan.json to write."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="HTML report to write.",
)
@click.option(
    "--max-change",
    type=float,
    default=None,
    help="Guardrail: no line moves by more than this share of its current spend (in any 7-day window).",
)
@click.option(
    "--objective", type=click.Choice(OBJECTIVES), default="max_incremental", show_default=True
)
@click.option(
    "--target", type=float, default=None, help="Incremental outcome to reach (min_spend)."
)
@click.option(
    "--value-per-signup",
    type=float,
    default=None,
    help="Value of one incremental signup (max_profit).",
)
@click.option(
    "--budget-mode",
    type=click.Choice(["le", "eq"]),
    default=None,
    help="Spend at most (le, default) or exactly (eq) the budget.",
)
@click.option(
    "--constraints",
    "constraints_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="constraints.json: commitments, reserve, market and group budgets (docs/allocation.md).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=None,
    help="Plan day by day over this horizon (adstock carryover, rolling 7-day guardrail).",
)
@click.option(
    "--launch-calendar",
    "calendar_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Title launches (JSON list) scaling demand per day and market; needs --days.",
)
@click.option(
    "--s-curves",
    type=click.Choice(["milp", "envelope"]),
    default="milp",
    show_default=True,
    help="S-shaped Hill curves: mixed-integer piecewise-linear model, or the concave envelope.",
)
@click.option(
    "--frontier",
    "frontier_points",
    type=click.IntRange(2, 200),
    default=None,
    help="Add the efficient frontier at this many budgets from 0.25x to 2x --budget (plan.json and report).",
)
@click.option(
    "--samples",
    "n_samples",
    type=click.IntRange(2, 5000),
    default=None,
    help="Also allocate over this many samples of the curves (each line's 'samples' list, or log-normal draws).",
)
@click.option(
    "--risk",
    type=click.Choice(["expected", "cvar"]),
    default="expected",
    show_default=True,
    help="With --samples: maximise the expected outcome or its lower-tail CVaR.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.01, 1.0),
    default=0.1,
    show_default=True,
    help="CVaR tail share.",
)
@click.option(
    "--sample-cv",
    type=click.FloatRange(0.0, 2.0),
    default=0.2,
    show_default=True,
    help="Coefficient of variation of the log-normal curve draws.",
)
@click.option(
    "--solver",
    "daily_solver",
    default="auto",
    show_default=True,
    help="Daily plans (--days): 'structured' (per-line interior point), a cvxpy solver such as CLARABEL, "
    "or 'auto' (structured unless market or group budgets couple lines day by day).",
)
@seed_option
@click.option(
    "--audit-db",
    default=None,
    help="Audit database: SQLite path or SQLAlchemy URL (default $LIFTLAB_DB or liftlab.db).",
)
def command(
    curves_path: str,
    budget: float | None,
    out_path: str,
    report_path: str | None,
    max_change: float | None,
    objective: str,
    target: float | None,
    value_per_signup: float | None,
    budget_mode: str | None,
    constraints_path: str | None,
    days: int | None,
    calendar_path: str | None,
    s_curves: str,
    frontier_points: int | None,
    n_samples: int | None,
    risk: str,
    alpha: float,
    sample_cv: float,
    daily_solver: str,
    seed: int,
    audit_db: str | None,
) -> None:
    """Allocate a budget across channels and markets on the curves (global optimum, named constraints).

    The budget defaults to the current spend (per period; over the horizon with --days).
    """
    curves = CurveSet.load(curves_path)
    rules = Rules.load(
        constraints_path, budget=budget, max_change=max_change, budget_mode=budget_mode
    )
    if calendar_path and not days:
        raise click.UsageError("--launch-calendar needs --days")
    calendar = None
    if calendar_path:
        from allocation.timeplan import LaunchCalendar

        calendar = LaunchCalendar.load(calendar_path)
        calendar.check(curves)
    if frontier_points and rules.budget is None:
        rules.budget = default_budget(curves, "--frontier") * (days or 1)
    if frontier_points and (rules.budget is None or rules.budget <= 0):
        raise ConfigError(
            f"--frontier needs a positive --budget (the sweep runs from 0.25x to 2x it), "
            f"got {rules.budget}"
        )
    log = AuditLog(audit_db)
    # Every input of the decision, so two plans from different inputs never share an inputs_hash.
    options = {
        "frontier": frontier_points,
        "samples": n_samples,
        "risk": risk,
        "alpha": alpha,
        "sample_cv": sample_cv,
        "seed": seed,
        "objective": objective,
        "target": target,
        "value_per_signup": value_per_signup,
        "days": days,
        "solver": daily_solver,
        "s_curves": s_curves,
        "curves_file": curves_path,
        "constraints_file": constraints_path,
        "launch_calendar_file": calendar_path,
        "launch_calendar": None if calendar is None else calendar.to_dict(),
    }
    try:
        if days:
            from allocation.timeplan import plan_days

            plan = plan_days(curves, rules, days=days, calendar=calendar, solver=daily_solver)
            command_name = "allocate --days"
        else:
            plan = allocate(
                curves,
                objective=objective,
                rules=rules,
                target=target,
                value_per_signup=value_per_signup,
                s_curves=s_curves,
            )
            command_name = "allocate"
    except InfeasibleError as exc:
        # An infeasible request is a decision too: record it, then report it (exit 2).
        log.record(
            command="allocate",
            curves=curves.to_dict(),
            constraints=rules.to_dict(),
            solution={"status": "infeasible", "error": str(exc), "objective": objective},
            options=options,
        )
        raise
    result = plan.to_dict()
    timing = result.pop("timing", {})
    frontier = robust = None
    notes = []
    if frontier_points:
        from allocation.scenarios import budget_sweep

        per_period = rules.budget / (days or 1)
        frontier = budget_sweep(
            curves,
            np.linspace(0.25, 2.0, frontier_points) * per_period,
            rules=Rules(**{**rules.to_dict(), "max_change": rules.max_change}),
        )
        result["frontier"] = frontier.to_dict()
        timing["frontier_seconds"] = result["frontier"].pop("timing")["solve_seconds"]
    from allocation.scenarios import plan_uncertainty, robust_allocate, sample_curves

    result["uncertainty"] = plan_uncertainty(curves, plan)
    if n_samples:
        budget_ps = (
            default_budget(curves, "--samples")
            if rules.budget is None
            else rules.budget / days
            if days
            else rules.budget
        )
        robust = robust_allocate(
            curves,
            sample_curves(curves, n_samples, cv=sample_cv, seed=seed),
            budget=budget_ps,
            rules=Rules(**{**rules.to_dict(), "budget": None}),
            risk=risk,
            alpha=alpha,
        )
        result["robust"] = robust.to_dict()
        result["robust"]["sample_source"] = (
            f"posterior draws in {curves_path} (the first {min(n_samples, curves.n_draws)} of {curves.n_draws})"
            if curves.n_draws
            else f"no posterior draws in {curves_path}: log-normal draws of beta and scale "
            f"(cv {sample_cv}, seed {seed})"
        )
        notes.append("--samples: " + result["robust"]["sample_source"])
    result["timing"] = timing
    html = None
    if report_path:  # rendered before the audit record, so a failed report records nothing
        from allocation.cli.plan_report import plan_report

        html = plan_report(
            plan, curves, title=f"Budget plan from {curves_path}", frontier=frontier, robust=robust
        )
    # The record commits only after plan.json (and the report) are in place: a plan that was never
    # written leaves no record, and a killed writer leaves neither.
    with (
        outputs() as files,
        log.recording(
            command=command_name,
            curves=curves.to_dict(),
            constraints=rules.to_dict(),
            solution=result,
            options=options,
        ) as audit_id,
    ):
        result["audit_id"] = audit_id
        result["audit_db"] = log.safe_url()
        files.write_text(out_path, dumps(result))
        if html is not None:
            files.write_text(report_path, html)
        files.commit()
    click.echo(plan.summary())
    if result["uncertainty"]:
        u = result["uncertainty"]
        click.echo(
            f"gain over current spend {u['unit']}: {u['expected_gain']:,.1f} "
            f"[{u['gain_interval'][0]:,.1f}, {u['gain_interval'][1]:,.1f}] at {u['level']:.0%} "
            f"({u['n_draws']} posterior draws)"
        )
    for note in notes:
        click.echo(note)
    click.echo(
        f"wrote {out_path}"
        + (f" and {report_path}" if report_path else "")
        + f"; audit record {result['audit_id']}"
    )


def default_budget(curves: CurveSet, why: str) -> float:
    """The current spend, the budget every command defaults to."""
    cur = curves.current(
        required=True, why=f"{why} without --budget (the budget defaults to the current spend)"
    )
    return float(cur.sum())
