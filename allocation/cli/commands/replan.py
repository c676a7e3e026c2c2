"""``liftlab replan``: the daily re-plan from yesterday's plan and refreshed curves, within the guardrail.

The command parses its options, calls :func:`allocation.workflows.replan_budget`, writes the new
plan inside its audit record and prints.
"""

from __future__ import annotations

import click

from allocation.audit import AuditLog
from allocation.cli.commands.allocate import echo_plan, echo_written, write_plan
from allocation.cli.options import audit_db_option, currency_option, out_option, report_option
from allocation.curves import CurveSet
from allocation.plan_file import check_previous_plan
from allocation.workflows.planning import commit_plan, replan_budget
from causal.jsonfile import read_json


@click.command("replan")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Yesterday's plan.json, written by allocate --days or replan.",
)
@click.option(
    "--curves",
    "curves_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Refreshed curves.json.",
)
@out_option("New plan.json.")
@click.option(
    "--elapsed",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Days of the old plan already run.",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=None,
    help="New horizon (default: the old plan's remaining days).",
)
@click.option(
    "--budget",
    type=float,
    default=None,
    help="Budget over the new horizon (default: the old plan's remaining spend).",
)
@click.option("--max-change", type=float, default=None, help="Guardrail (default: the old plan's).")
@report_option
@click.option(
    "--solver",
    "daily_solver",
    default="auto",
    show_default=True,
    help="'structured' (per-line interior point), a cvxpy solver such as CLARABEL, or 'auto'.",
)
@currency_option
@audit_db_option
def command(
    plan_path: str,
    curves_path: str,
    out_path: str,
    elapsed: int,
    days: int | None,
    budget: float | None,
    max_change: float | None,
    report_path: str | None,
    daily_solver: str,
    currency: str | None,
    audit_db: str | None,
) -> None:
    """Re-plan the remaining days from yesterday's plan with refreshed curves, moving within the guardrail."""
    previous = read_json(plan_path, "plan file")
    check_previous_plan(previous, plan_path)
    curves = CurveSet.load(curves_path)
    log = AuditLog(audit_db)
    run = replan_budget(
        previous,
        curves,
        elapsed=elapsed,
        days=days,
        budget=budget,
        max_change=max_change,
        solver=daily_solver,
        log=log,
        sources={"plan_file": plan_path, "curves_file": curves_path},
    )
    html = None
    if report_path:  # rendered before the audit record, so a failed report records nothing
        from allocation.cli.plan_report import render_plan_report

        html = render_plan_report(run, title=f"Re-plan from {plan_path}", currency=currency)
    commit_plan(run, log, lambda result: write_plan(result, out_path, report_path, html))
    echo_plan(run)
    echo_written(run, out_path, report_path)
