"""``liftlab backtest``: score measurement-and-allocation policies on a simulated world's truth."""

from __future__ import annotations

from pathlib import Path

import click

from allocation.audit import AuditLog
from allocation.backtest import backtest
from allocation.cli.options import SEED, currency_option
from allocation.cli.outputs import outputs
from causal.world import World


@click.command("backtest")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for backtest.json, decisions.csv and audit.db.",
)
@click.option(
    "--report", "report_path", default=None, type=click.Path(dir_okay=False), help="HTML report."
)
@click.option(
    "--days",
    default=182,
    show_default=True,
    type=click.IntRange(7, 5000),
    help="Backtest horizon in days.",
)
@click.option(
    "--history",
    default=365,
    show_default=True,
    type=click.IntRange(119, 20000),
    help="Days of history before the horizon.",
)
@click.option(
    "--geos",
    "n_geos",
    default=50,
    show_default=True,
    type=click.IntRange(4, 2000),
    help="Number of markets.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=SEED,
    help="Seed of the world and of every random draw.",
)
@click.option(
    "--compare-tests",
    is_flag=True,
    help="Add the structural-model loops with no tests, round-robin tests and tests chosen by "
    "value of information (propose-tests), and the oracle within the guardrail (slower).",
)
@currency_option
def command(
    out_dir: str,
    report_path: str | None,
    days: int,
    history: int,
    n_geos: int,
    seed: int,
    compare_tests: bool,
    currency: str | None,
) -> None:
    """Backtest status quo, quarterly (observational and calibrated), the daily loop and the oracle."""
    world = World(n_geos, history + days, seed=seed)
    out = Path(out_dir)
    with outputs() as files:
        audit = AuditLog(str(files.path(out / "audit.db")))
        try:
            result = backtest(world, days=days, seed=seed, audit=audit, compare_tests=compare_tests)
        finally:
            audit.close()
        files.write_json(out / "backtest.json", result.to_dict())
        result.decisions.to_csv(files.path(out / "decisions.csv"), index=False)
        if report_path:
            from allocation.cli.backtest_report import backtest_report

            files.write_text(report_path, backtest_report(result, currency=currency))
    click.echo(result.summary())
    click.echo(
        f"-> {out / 'backtest.json'}, {out / 'decisions.csv'}, {out / 'audit.db'}"
        + (f", {report_path}" if report_path else "")
    )
