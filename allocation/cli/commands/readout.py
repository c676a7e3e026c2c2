"""``liftlab readout``: read out a geo experiment into readout.json (and an HTML report)."""

from __future__ import annotations

import warnings

import click

from allocation.cli.options import (
    cell_option,
    confidence_option,
    currency_option,
    out_option,
    panel_options,
    parse_cells,
    read_panel,
    report_option,
    seed_option,
    split_list,
)
from allocation.cli.outputs import outputs
from causal.base import ESTIMATOR_PATHS
from causal.errors import ConfigError
from experiments.readout import (
    inference_choices,
    read_out,
    read_out_cells,
    warning_notes,
)
from experiments.readout_geo import GEO_LEVEL, read_pairs


def _echo_one(r, prefix: str = "") -> None:
    lo, hi = r.incremental_ci
    lift = f"{r.lift:+.1%}" if r.lift is not None else "n/a"
    click.echo(
        f"{prefix}treated {', '.join(r.treated)}: total {r.outcome} {r.observed:,.0f}, "
        f"incremental {r.incremental:,.0f} [{lo:,.0f}, {hi:,.0f}] at {r.confidence:.0%}, "
        f"lift {lift}, p = {r.p_value:.3f}"
    )
    if r.channel is not None:
        cpi = f"{r.cost_per_incremental:,.2f}" if r.cost_per_incremental is not None else "n/a"
        moved = (
            ""
            if (r.spend or {}).get("moved", True)
            else " (within the spend's own noise: not moved)"
        )
        click.echo(
            f"{prefix}  {r.channel}: spend change {r.spend_delta:,.0f}{moved}, cost per incremental {cpi}"
        )
    if len(r.tests) > 1:
        click.echo(
            f"{prefix}  tests: " + "; ".join(f"{t['test']} p = {t['p_value']:.3f}" for t in r.tests)
        )
    for note in r.notes:
        # Fallbacks, disagreements and warnings are shown, not only written to the file.
        if note.startswith(
            ("Inference fell back", "The p-value and the interval", "Warning", "The test did not")
        ):
            click.echo(f"{prefix}  note: {note}")


@click.command("readout")
@panel_options
@click.option("--treated", default=None, help="Treated geos, comma-separated (or use --cell).")
@cell_option
@click.option(
    "--cells",
    "cells_legacy",
    default=None,
    hidden=True,
    help='The older one-string form of --cell: "name=G1,G2;name2=G3".',
)
@click.option("--start", required=True, help="First day of the test (YYYY-MM-DD).")
@click.option("--end", required=True, help="Last day of the test (YYYY-MM-DD).")
@click.option(
    "--pre-start",
    default=None,
    help="First day of the pre-period (default: the panel's first date).",
)
@click.option(
    "--control", default=None, help="Control geos, comma-separated (default: every untreated geo)."
)
@click.option(
    "--estimator",
    default="sc",
    show_default=True,
    type=click.Choice(list(ESTIMATOR_PATHS) + list(GEO_LEVEL)),
    help="Method: sc (GeoLift's demeaned synthetic control), sc-classic (Abadie et al., on levels), asc, "
    "sdid, tbr, did, bsts; gbr or trimmed_match (geo-level, iROAS with --channel; trimmed_match "
    "needs --pairs).",
)
@click.option(
    "--predictors",
    default=None,
    help="Covariate predictors for --estimator sc-classic (Abadie's V-weighted matching; the readout is "
    "named sc-predictors): COL (pre-period mean), COL@A:B (mean from date A to B) or COL@A, "
    "comma-separated.",
)
@click.option(
    "--pairs",
    "pairs_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="CSV of matched pairs (columns treated,control): a paired design; replaces --treated.",
)
@click.option(
    "--inference",
    default=None,
    help="Inference (default: the estimator's own first choice). sc, sc-classic, asc: conformal, geolift, "
    "conformal-iid, conformal-mean; tbr: placebo, analytic + those; did: placebo, cluster + those; "
    "sdid: placebo + those; bsts: posterior, placebo.",
)
@click.option(
    "--channel", default=None, help="Channel the test moved (its column is spend_<channel>)."
)
@out_option("readout.json to write.")
@report_option
@click.option(
    "--no-placebos", is_flag=True, help="Skip the placebo-in-space and placebo-in-time checks."
)
@click.option(
    "--selection-check",
    is_flag=True,
    help="The treated markets were picked by a design search (liftlab design): widen the interval "
    "when their history is calmer than random sets of their size.",
)
@confidence_option
@currency_option
@seed_option
def command(
    treated,
    cell_specs,
    cells_legacy,
    predictors,
    pairs_path,
    start,
    end,
    pre_start,
    control,
    estimator,
    inference,
    channel,
    out_path,
    report_path,
    no_placebos,
    selection_check,
    confidence,
    currency,
    seed,
    **panel_kwargs,
) -> None:
    """Read out a geo experiment: total vs incremental signups, interval, p-value, cost per incremental."""
    if cell_specs and cells_legacy:
        raise ConfigError("give the cells with --cell (repeated), not both --cell and --cells")
    # --cells "a=G1;b=G2" is the older spelling of --cell a=G1 --cell b=G2 (docs and scripts use it).
    flag = "--cells" if cells_legacy else "--cell"
    specs = [p for p in (cells_legacy or "").split(";") if p.strip()] or list(cell_specs)
    cells = parse_cells(specs, flag) if (cell_specs or cells_legacy) else None
    if sum(map(bool, (treated, cells_legacy or cell_specs, pairs_path))) != 1:
        raise ConfigError(
            "give the treated geos with exactly one of --treated, --cell (repeated) or --pairs"
        )
    pairs = read_pairs(pairs_path) if pairs_path else None
    if inference is not None and inference not in inference_choices(estimator):
        raise ConfigError(
            f"--inference {inference} is not available for --estimator {estimator} "
            f"(valid: {', '.join(inference_choices(estimator))})"
        )
    # Warnings of the panel's loading (e.g. filled rows) go into the readout's notes.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        panel = read_panel(panel_kwargs)
    pre_period = None
    if pre_start is not None:
        first = panel.check_date(start, "--start")
        pos = panel.date_position(first)
        if pos == 0:
            raise ConfigError(f"--start {start} is the panel's first date: no pre-period")
        pre_period = (pre_start, panel.dates[pos - 1])
    kwargs = dict(
        pre_period=pre_period,
        control=split_list(control) or None,
        estimator=estimator,
        confidence=confidence,
        channel=channel,
        seed=seed,
        inference=inference,
        placebos=not no_placebos,
        pairs=pairs,
        predictors=split_list(predictors) or None,
        selection_check=selection_check,
    )
    if cells:
        result = read_out_cells(panel, cells, (start, end), **kwargs)
        readouts = result.cells
    else:
        result = read_out(panel, split_list(treated) if treated else [], (start, end), **kwargs)
        readouts = {"": result}
    for r in readouts.values():
        r.notes += [n for n in warning_notes(caught) if n not in r.notes]
    with outputs() as files:
        files.write_json(out_path, result.to_dict())
        if report_path:
            from allocation.cli.readout_report import render_readout_report

            files.write_text(report_path, render_readout_report(result, currency=currency))
    click.echo(
        f"readout ({estimator}, {panel.y}, {start}..{end}) -> {out_path}"
        + (f", {report_path}" if report_path else "")
    )
    for name, r in readouts.items():
        _echo_one(r, prefix=f"[{name}] " if name else "")
