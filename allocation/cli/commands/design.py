"""``liftlab design``: choose treated markets, test length and investment before a geo test."""

from __future__ import annotations

import click

from allocation.cli.options import (
    currency_option,
    int_range,
    numbers,
    out_option,
    panel_options,
    read_panel,
    report_option,
    seed_option,
    split_list,
)
from allocation.cli.outputs import outputs
from causal.errors import ConfigError
from causal.progress import enabled as progress_enabled


@click.command("design")
@panel_options
@out_option("design.json to write.")
@report_option
@click.option(
    "--treated",
    "treated_range",
    default=None,
    metavar="N..M",
    help="Number of treated geos, e.g. 2..5.",
)
@click.option(
    "--treated-min", type=click.IntRange(1), default=None, help="Fewest treated geos (default 2)."
)
@click.option(
    "--treated-max", type=click.IntRange(1), default=None, help="Most treated geos (default 5)."
)
@click.option(
    "--treated-share",
    default=None,
    metavar="LO..HI",
    help="Share of the total outcome the treated geos may hold, e.g. 0.05..0.2.",
)
@click.option("--include", default=None, metavar="G1,G2", help="Geos that must be treated.")
@click.option(
    "--exclude",
    default=None,
    metavar="G1,G2",
    help="Geos that must not be treated (they may be controls).",
)
@click.option(
    "--durations",
    default=None,
    help="Test lengths to consider, in periods (default: chosen from the history's length and frequency, "
    "e.g. 14,21,28 days or 4,6,8 weeks, those leaving at least 10 windows; printed).",
)
@click.option(
    "--effect-sizes",
    default=None,
    help="Relative lifts to simulate, e.g. 0,0.05,0.1 (default 0 to 0.25 by 0.025).",
)
@click.option(
    "--alpha",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0.001, 0.5),
    help="Significance level (two-sided).",
)
@click.option(
    "--power-target",
    default=0.8,
    show_default=True,
    type=click.FloatRange(0.05, 0.999),
    help="Power the MDE is defined at.",
)
@click.option(
    "--estimator",
    default="sc",
    show_default=True,
    help="Readout estimator (sc, asc, sdid, tbr, did, bsts).",
)
@click.option(
    "--cost-per-incremental",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Spend per incremental outcome, to turn the MDE into an investment.",
)
@click.option(
    "--incremental-per-spend",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Prior incremental outcome per unit of spend (alternative to --cost-per-incremental).",
)
@click.option(
    "--budget",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Largest investment allowed.",
)
@click.option(
    "--n-cells",
    "--cells",
    "n_cells",
    default=1,
    show_default=True,
    type=click.IntRange(1, 10),
    help="How many disjoint test cells to design (--cells: its older name).",
)
@click.option(
    "--windows",
    "n_windows",
    default=None,
    type=click.IntRange(1),
    help="Historical windows simulated per design (default 30, or all the history holds).",
)
@click.option(
    "--claim-share",
    default=1 / 3,
    show_default="1/3",
    type=click.FloatRange(0, 0.9),
    help="Share of the latest windows held out of the search to measure the chosen design on.",
)
@click.option(
    "--method",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "exhaustive", "matched", "stratified", "all", "screen"]),
    help="Candidate generation ('screen': only the --prescreen sets).",
)
@click.option(
    "--prescreen",
    "n_prescreen",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Stratified treated sets scored all at once by a vectorised TBR screen before the readout is "
    "simulated on the best of them (for many geos and large treated sets).",
)
@click.option(
    "--n-jobs",
    default=1,
    show_default=True,
    type=int,
    help="Parallel workers (joblib; -1 all cores).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Dask scheduler address: run the search on that cluster.",
)
@currency_option
@seed_option
def command(
    out_path: str,
    report_path: str | None,
    treated_range: str | None,
    treated_min: int | None,
    treated_max: int | None,
    treated_share: str | None,
    include: str | None,
    exclude: str | None,
    durations: str | None,
    claim_share: float,
    effect_sizes: str | None,
    alpha: float,
    power_target: float,
    estimator: str,
    cost_per_incremental: float | None,
    incremental_per_spend: float | None,
    budget: float | None,
    n_cells: int,
    n_windows: int | None,
    method: str,
    n_prescreen: int,
    n_jobs: int,
    scheduler: str | None,
    seed: int,
    currency: str | None,
    **panel_kwargs,
) -> None:
    """Design a geo experiment: treated markets, test length, MDE and investment, with power simulated on history."""
    from experiments.design import design_experiment

    rng = int_range(treated_range, "--treated")
    if rng is not None and (treated_min is not None or treated_max is not None):
        raise ConfigError("give either --treated N..M or --treated-min/--treated-max, not both")
    if rng is None:
        rng = (
            treated_min if treated_min is not None else 2,
            treated_max if treated_max is not None else 5,
        )
        if treated_min is not None and treated_max is None and treated_min > 5:
            rng = (treated_min, treated_min)
    panel = read_panel(panel_kwargs)
    kwargs = {}
    if treated_share is not None:
        parts = numbers(treated_share.replace("..", ","), "--treated-share")
        if len(parts) != 2:
            raise ConfigError(f"--treated-share '{treated_share}' is not LO..HI")
        kwargs["treated_share"] = tuple(parts)
    if effect_sizes is not None:
        kwargs["effect_sizes"] = numbers(effect_sizes, "--effect-sizes")
    if n_windows is not None:
        kwargs["n_windows"] = n_windows
    result = design_experiment(
        panel,
        n_treated=rng,
        include=split_list(include),
        exclude=split_list(exclude),
        durations=numbers(durations, "--durations", int),
        claim_share=claim_share,
        alpha=alpha,
        power_target=power_target,
        estimator=estimator,
        cost_per_incremental=cost_per_incremental,
        incremental_per_spend=incremental_per_spend,
        budget=budget,
        n_cells=n_cells,
        method=method,
        n_prescreen=n_prescreen,
        seed=seed,
        n_jobs=n_jobs,
        scheduler=scheduler,
        progress=progress_enabled(),
        **kwargs,
    )
    with outputs() as files:
        files.write_json(out_path, result.to_dict())
        if report_path:
            from allocation.cli.design_report import render_design_report

            files.write_text(report_path, render_design_report(result, currency=currency))
    click.echo(result.plan.describe())
    click.echo(result.summary().text)
    click.echo(f"-> {out_path}" + (f", {report_path}" if report_path else ""))
