"""``liftlab simulate``: write a simulated world's panel and its truth."""

from __future__ import annotations

from pathlib import Path

import click

from allocation.cli.options import out_option, seed_option
from allocation.cli.outputs import outputs
from causal.world import Experiment
from causal.world_io import simulate, truth_clusters


@click.command("simulate")
@out_option("Folder for panel.csv, clusters.csv and truth.json.", file=False)
@click.option(
    "--geos",
    "n_geos",
    default=50,
    show_default=True,
    type=click.IntRange(4, 2000),
    help="Number of markets.",
)
@click.option(
    "--days",
    "n_days",
    default=730,
    show_default=True,
    type=click.IntRange(28, 20000),
    help="Number of days.",
)
@seed_option
@click.option("--start", default="2024-01-01", show_default=True, help="First date.")
@click.option("--partnerships", is_flag=True, help="Add the partnerships channel.")
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    metavar="CH:KIND:G1,G2:START:END",
    help="Run an experiment inside the world, e.g. ctv:go_dark:NA01,NA02:2025-10-01:2025-10-28; "
    "KIND is go_dark, holdback, heavy_up or a spend multiplier. Repeatable.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True
)
def command(
    out_dir: str,
    n_geos: int,
    n_days: int,
    seed: int,
    start: str,
    partnerships: bool,
    experiments: tuple[str, ...],
    fmt: str,
) -> None:
    """Simulate a marketing world with known truth: DIR/panel.csv, DIR/clusters.csv and DIR/truth.json."""
    exps = [Experiment.parse(e) for e in experiments]
    panel, truth = simulate(
        n_geos, n_days, seed=seed, start=start, experiments=exps, partnerships=partnerships
    )
    out = Path(out_dir)
    with outputs() as files:
        panel_path = out / f"panel.{fmt}"
        if fmt == "csv":
            panel.to_csv(files.path(panel_path), index=False)
        else:
            panel.to_parquet(files.path(panel_path), index=False)
        files.write_json(out / "truth.json", truth)
        # The market clusters as a user's mapping file would hold them (calibrate --clusters).
        truth_clusters(truth).to_csv(files.path(out / "clusters.csv"), index=False)
    total = truth["total_signups"]
    click.echo(
        f"simulated {n_geos} geos x {n_days} days (seed {seed}) -> {panel_path}, {out / 'clusters.csv'}, "
        f"{out / 'truth.json'}"
    )
    click.echo(
        f"signups {total:,.0f}, of which organic {truth['organic_signups']:,.0f} ({truth['organic_signups'] / total:.0%})"
    )
    for ch, c in truth["contributions"].items():
        spend = truth["total_spend"][ch]
        click.echo(
            f"  {ch:<16} spend {spend:>14,.0f}  true incremental {c:>11,.0f}  cost per incremental {spend / c if c else float('nan'):>8,.2f}"
        )
    for e in truth["experiments"]:
        click.echo(
            f"  experiment {e['name']}: true incremental {e['true_incremental']:,.0f} for spend change {e['spend_delta']:,.0f}"
        )
