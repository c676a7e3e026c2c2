"""``liftlab validate``: check a panel against the file contract and describe it."""

from __future__ import annotations

import click

from allocation.cli.options import panel_options, read_panel, split_list


@click.command("validate")
@panel_options
@click.option(
    "--columns",
    default="",
    help="Covariate columns that must be present, numeric and finite (comma-separated).",
)
def command(columns: str, **kwargs) -> None:
    """Validate a long geo panel (missing or duplicate rows, NaN, negative spend, frequency)."""
    panel = read_panel(kwargs, columns=tuple(split_list(columns)))
    click.echo(
        f"{panel.source}: ok — {len(panel.geos)} geos x {len(panel.dates)} {panel.period_name}s "
        f"({panel.dates[0].date()} to {panel.dates[-1].date()}), outcome '{panel.y}'"
    )
    click.echo(f"  channels: {', '.join(panel.channels) or 'none'}")
    click.echo(f"  covariates: {', '.join(panel.covariates) or 'none'}")
    if panel.text_columns:
        # Said out loud: a column of text is a label, never a covariate the model adjusts for.
        click.echo(f"  text columns, not used as covariates: {', '.join(panel.text_columns)}")
    if panel.n_filled:
        click.echo(f"  filled {panel.n_filled} absent rows with zeros (--fill-missing zero)")
