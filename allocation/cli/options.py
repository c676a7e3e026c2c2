"""Options shared by several subcommands, with INTERFACE.md's names and defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from causal.errors import ConfigError, mask_url
from causal.panel import Panel, load_panel
from causal.panel_sql import is_database_url, read_sql_panel
from experiments.store import command_line_default


def panel_options(f: Callable) -> Callable:
    """``--data``, ``--y``, ``--date-col``, ``--geo-col``, ``--fill-missing``."""
    for decorator in reversed(
        [
            click.option(
                "--data",
                "data_path",
                required=True,
                type=click.Path(dir_okay=False),
                help="Long geo panel, CSV or Parquet: one row per (date, geo); or a database "
                "URL (duckdb:///w.duckdb, postgresql+psycopg://...) with --query.",
            ),
            click.option(
                "--query",
                default=None,
                help="With a database URL as --data: the SELECT returning the panel's rows.",
            ),
            click.option("--y", "y", default="signups", show_default=True, help="Outcome column."),
            click.option("--date-col", default="date", show_default=True, help="Date column."),
            click.option("--geo-col", default="geo", show_default=True, help="Market-id column."),
            click.option(
                "--fill-missing",
                type=click.Choice(["zero"]),
                default=None,
                help="Fill absent (date, geo) rows with zeros (sparse data); refused by default.",
            ),
        ]
    ):
        f = decorator(f)
    return f


def read_panel(kwargs: dict[str, Any], columns: tuple[str, ...] = ()) -> Panel:
    """Load the panel named by :func:`panel_options`' values (popped from ``kwargs``).

    A database URL with ``--query`` is read by :func:`causal.panel_sql.read_sql_panel` and
    validated exactly like a file.
    """
    source, query, name = kwargs.pop("data_path"), kwargs.pop("query"), None
    if is_database_url(source):
        name = mask_url(source)
        source = read_sql_panel(source, query)
    elif query:
        raise ConfigError(f"--query needs a database URL as --data, got the file {source}")
    return load_panel(
        source,
        name=name,
        y=kwargs.pop("y"),
        date_col=kwargs.pop("date_col"),
        geo_col=kwargs.pop("geo_col"),
        fill_missing=kwargs.pop("fill_missing"),
        columns=columns,
    )


confidence_option = click.option(
    "--confidence",
    default=0.9,
    show_default=True,
    type=click.FloatRange(0.5, 0.999),
    help="Confidence level of intervals.",
)


def _currency(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # The same check the reports apply (allocation.cli.report.check_currency): one rule.
    from allocation.cli.report import check_currency

    try:
        return check_currency(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


currency_option = click.option(
    "--currency",
    default=None,
    metavar="CODE",
    callback=_currency,
    help="Currency of spend and costs in the reports: a 3-letter code (EUR, USD) or a symbol (€, $); "
    "default: plain 'currency units'.",
)
# numpy's generators take seeds in [0, 2**32) from every command the same way.
SEED = click.IntRange(0, 2**32 - 1)

seed_option = click.option(
    "--seed", default=0, show_default=True, type=SEED, help="Seed of every random draw."
)


def out_option(help: str, *, file: bool = True) -> Callable:
    """``--out`` (parameter ``out_path``; ``out_dir`` for a folder), required: the file the command writes.

    Its name is one of :data:`allocation.cli.main.OUTPUT_PARAMS`, so the guard refuses an
    ``--out`` that names an input.
    """
    if file:
        return click.option(
            "--out", "out_path", required=True, type=click.Path(dir_okay=False), help=help
        )
    return click.option(
        "--out", "out_dir", required=True, type=click.Path(file_okay=False), help=help
    )


report_option = click.option(
    "--report",
    "report_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="HTML report to write.",
)


def split_list(value: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``."""
    if not value:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def int_range(value: str | None, name: str) -> tuple[int, int] | None:
    """``"2..5"``, ``"2-5"`` or ``"3"`` -> (low, high)."""
    if value is None:
        return None
    text = value.replace("..", "-").strip()
    try:
        parts = [int(p) for p in text.split("-")]
    except ValueError as exc:
        raise ConfigError(f"{name} '{value}' is not N or N..M") from exc
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) != 2:
        raise ConfigError(f"{name} '{value}' is not N or N..M")
    return parts[0], parts[1]


def numbers(value: str | None, name: str, cast=float) -> list | None:
    """``"0.1, 0.2"`` -> ``[0.1, 0.2]`` (``cast`` each), or a one-line error naming the option."""
    if value is None:
        return None
    try:
        return [cast(v) for v in split_list(value)]
    except ValueError as exc:
        raise ConfigError(f"{name} '{value}' is not a comma-separated list of numbers") from exc


# The command line's default database is applied here, at the edge: the library has none.
audit_db_option = click.option(
    "--audit-db",
    default=command_line_default,
    help="Audit database: SQLite path or SQLAlchemy URL; "
    "default: $LIFTLAB_DB, else liftlab.db in the current folder.",
)


#: The one syntax of a test's treatment cells on the command line: ``--cell NAME=G1,G2``, repeated.
cell_option = click.option(
    "--cell",
    "cell_specs",
    multiple=True,
    metavar="NAME=G1,G2",
    help="A treatment cell (its name and geos); repeat for a multi-cell test.",
)


def parse_cells(values: tuple[str, ...] | list[str], flag: str = "--cell") -> dict[str, list[str]]:
    """``("north=G1,G2", "south=G3")`` -> ``{"north": ["G1", "G2"], "south": ["G3"]}``.

    A value without a name or without geos, or a name given twice, is a one-line error
    naming ``flag``.
    """
    cells: dict[str, list[str]] = {}
    for v in values:
        name, sep, geos = v.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"{flag} '{v}' must read NAME=G1,G2")
        if name in cells:
            raise ConfigError(f"{flag} {name} is given twice")
        cells[name] = split_list(geos)
        if not cells[name]:
            raise ConfigError(f"{flag} {name} has no geos (NAME=G1,G2)")
    return cells
