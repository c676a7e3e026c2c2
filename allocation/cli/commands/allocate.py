"""``liftlab allocate``: the budget plan on response curves, with its audit record.

The command parses its options, calls :func:`allocation.workflows.plan_budget`, writes the plan
(and its report) inside the audit record (:func:`allocation.workflows.commit_plan`) and prints.
"""

from __future__ import annotations

import click

from allocation.audit import AuditLog
from allocation.business_rules import Rules
from allocation.cli.options import (
    audit_db_option,
    currency_option,
    out_option,
    report_option,
    seed_option,
)
from allocation.cli.outputs import dumps, outputs
from allocation.curves import CurveSet
from allocation.optimize import OBJECTIVES
from allocation.workflows.planning import PlanRun, commit_plan, plan_budget
from causal.errors import ConfigError


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
@out_option("plan.json to write.")
@report_option
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
@currency_option
@seed_option
@audit_db_option
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
    currency: str | None,
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
    # The library names its parameters; the command line names its flags.
    if objective == "min_spend" and target is None:
        raise click.UsageError(
            "--objective min_spend needs --target (the incremental outcome to reach)"
        )
    if objective == "max_profit" and value_per_signup is None:
        raise click.UsageError("--objective max_profit needs --value-per-signup")
    _refuse_ignored_options(objective, target, value_per_signup, days, n_samples, risk)
    calendar = None
    if calendar_path:
        from allocation.launches import LaunchCalendar

        calendar = LaunchCalendar.load(calendar_path)
        calendar.check(curves, days)
    if frontier_points and rules.budget is None:
        rules.budget = _current(curves, "--frontier") * (days or 1)
    if frontier_points and (rules.budget is None or rules.budget <= 0):
        raise ConfigError(
            f"--frontier needs a positive --budget (the sweep runs from 0.25x to 2x it), "
            f"got {rules.budget}"
        )
    if n_samples and rules.budget is None:
        _current(curves, "--samples")  # the one-line error names the flag
    log = AuditLog(audit_db)
    run = plan_budget(
        curves,
        rules,
        objective=objective,
        target=target,
        value_per_signup=value_per_signup,
        days=days,
        calendar=calendar,
        solver=daily_solver,
        s_curves=s_curves,
        frontier=frontier_points,
        n_samples=n_samples,
        risk=risk,
        tail=alpha,
        sample_cv=sample_cv,
        seed=seed,
        log=log,
        sources={
            "curves_file": curves_path,
            "constraints_file": constraints_path,
            "launch_calendar_file": calendar_path,
        },
    )
    html = None
    if report_path:  # rendered before the audit record, so a failed report records nothing
        from allocation.cli.plan_report import render_plan_report

        html = render_plan_report(run, title=f"Budget plan from {curves_path}", currency=currency)
    commit_plan(run, log, lambda result: write_plan(result, out_path, report_path, html))
    echo_plan(run)
    echo_written(run, out_path, report_path)


def write_plan(result: dict, out_path: str, report_path: str | None, html: str | None) -> None:
    """plan.json and its report, all or nothing (called inside the audit record)."""
    with outputs() as files:
        files.write_text(out_path, dumps(result))
        if html is not None:
            files.write_text(report_path, html)


def echo_written(run: PlanRun, out_path: str, report_path: str | None) -> None:
    """The files a plan command wrote and its audit record."""
    click.echo(
        f"wrote {out_path}"
        + (f" and {report_path}" if report_path else "")
        + f"; audit record {run.result['audit_id']}"
    )


def echo_plan(run: PlanRun) -> None:
    """The plan's summary, its gain with the interval over the posterior draws, and its notes."""
    click.echo(run.plan.summary())
    u = run.uncertainty
    if u:
        click.echo(
            f"gain over current spend {u['unit']}: {u['expected_gain']:,.1f} "
            f"[{u['gain_interval'][0]:,.1f}, {u['gain_interval'][1]:,.1f}] at {u['confidence']:.0%} "
            f"({u['n_draws']} posterior draws)"
        )
    for note in run.notes:
        click.echo(note.replace("samples: ", "--samples: ", 1))


def _current(curves: CurveSet, flag: str) -> float:
    """The current spend, which the budget defaults to; an error naming ``flag`` if a line lacks it."""
    cur = curves.current(
        required=True, why=f"{flag} without --budget (the budget defaults to the current spend)"
    )
    return float(cur.sum())


def _refuse_ignored_options(
    objective: str,
    target: float | None,
    value_per_signup: float | None,
    days: int | None,
    n_samples: int | None,
    risk: str,
) -> None:
    """Refuse an option this combination would ignore: one line naming what it needs.

    A daily plan (--days) maximises the incremental outcome with its own S-curve method; --target
    serves only min_spend and --value-per-signup only max_profit (plan.json would merely echo
    them); --risk, --alpha and --sample-cv shape only the sample-robust plan (--samples).
    """
    ctx = click.get_current_context()

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) in (
            click.ParameterSource.COMMANDLINE,
            click.ParameterSource.ENVIRONMENT,
        )

    if days and objective != "max_incremental":
        raise click.UsageError(
            f"--objective {objective} does not apply with --days (a daily plan maximises the "
            "incremental outcome); drop --days or the objective"
        )
    if days and given("s_curves"):
        raise click.UsageError(
            "--s-curves does not apply with --days (a daily plan bounds S-curves by their concave "
            "envelope and its own piecewise-linear model)"
        )
    if target is not None and objective != "min_spend":
        raise click.UsageError(
            f"--target needs --objective min_spend (the objective is {objective})"
        )
    if value_per_signup is not None and objective != "max_profit":
        raise click.UsageError(
            f"--value-per-signup needs --objective max_profit (the objective is {objective})"
        )
    for name, flag in (("risk", "--risk"), ("alpha", "--alpha"), ("sample_cv", "--sample-cv")):
        if not n_samples and given(name):
            raise click.UsageError(f"{flag} needs --samples (it shapes the sample-robust plan)")
    if given("alpha") and risk != "cvar":
        raise click.UsageError("--alpha needs --risk cvar (it is the CVaR tail share)")
