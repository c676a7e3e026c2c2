"""``liftlab replan``: the daily re-plan from yesterday's plan and refreshed curves, within the guardrail."""

from __future__ import annotations

import click

from allocation.audit import AuditLog
from allocation.cli.outputs import dumps, outputs
from allocation.curves import CurveSet
from allocation.jsonfile import read_json
from allocation.timeplan import check_previous_plan, replan
from causal.errors import InfeasibleError


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
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False), help="New plan.json."
)
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
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="HTML report to write.",
)
@click.option(
    "--solver",
    "daily_solver",
    default="auto",
    show_default=True,
    help="'structured' (per-line interior point), a cvxpy solver such as CLARABEL, or 'auto'.",
)
@click.option(
    "--audit-db",
    default=None,
    help="Audit database: SQLite path or SQLAlchemy URL (default $LIFTLAB_DB or liftlab.db).",
)
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
    audit_db: str | None,
) -> None:
    """Re-plan the remaining days from yesterday's plan with refreshed curves, moving within the guardrail."""
    previous = read_json(plan_path, "plan file")
    check_previous_plan(previous, plan_path)
    curves = CurveSet.load(curves_path)
    from allocation.rules import Rules

    rules = None
    if max_change is not None:
        rules = Rules(**(previous.get("constraints") or {}))
        rules.max_change = max_change
    log = AuditLog(audit_db)
    # Every input of the decision: yesterday's plan is one (its schedule, history and calendar).
    options = {
        "plan_file": plan_path,
        "elapsed": elapsed,
        "days": days,
        "budget": budget,
        "max_change": max_change,
        "solver": daily_solver,
        "curves_file": curves_path,
        "previous_plan": {k: v for k, v in previous.items() if k not in ("timing", "audit_db")},
    }
    try:
        plan = replan(
            previous,
            curves,
            elapsed=elapsed,
            days=days,
            budget=budget,
            rules=rules,
            solver=daily_solver,
            source=plan_path,
        )
    except InfeasibleError as exc:
        # An infeasible re-plan is recorded too, then reported (exit 2).
        log.record(
            command="replan",
            curves=curves.to_dict(),
            constraints=previous.get("constraints") or {},
            solution={"status": "infeasible", "error": str(exc)},
            options=options,
        )
        raise
    result = plan.to_dict()
    result["previous_audit_id"] = previous.get("audit_id")
    from allocation.scenarios import plan_uncertainty

    result["uncertainty"] = plan_uncertainty(curves, plan)
    html = None
    if report_path:  # rendered before the audit record, so a failed report records nothing
        from allocation.cli.plan_report import plan_report

        html = plan_report(plan, curves, title=f"Re-plan from {plan_path}")
    # The record commits only after the new plan (and the report) are in place.
    with (
        outputs() as files,
        log.recording(
            command="replan",
            curves=curves.to_dict(),
            constraints=plan.rules,
            solution=result,
            options=options,
        ) as audit_id,
    ):
        result["audit_id"] = audit_id
        files.write_text(out_path, dumps(result))
        if html is not None:
            files.write_text(report_path, html)
        files.commit()
    click.echo(plan.summary())
    click.echo(f"wrote {out_path}; audit record {result['audit_id']}")
