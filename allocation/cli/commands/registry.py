"""``liftlab registry``: register geo tests, start, read out, cancel, list, show, and draw the calendar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import click

from allocation.cli.options import SEED, panel_options, read_panel, split_list
from allocation.cli.outputs import outputs
from causal.errors import DataError
from causal.jsonfile import read_json
from experiments.store import command_line_default

# The command line's default database is applied here, at the edge: the library has none.
db_option = click.option(
    "--db",
    default=command_line_default,
    metavar="URL",
    help="Registry database: an SQLAlchemy URL (sqlite:///path, postgresql+psycopg://...) or an "
    "SQLite file; default: $LIFTLAB_DB, else liftlab.db in the current folder.",
)


@contextmanager
def _flag_for_overlaps() -> Iterator[None]:
    """A conflict's message names the command's flag, not the library's keyword."""
    from experiments.registry import ConflictError
    from experiments.registry.queries import ALLOW_OVERLAP

    try:
        yield
    except ConflictError as exc:
        raise ConflictError(
            str(exc).replace(ALLOW_OVERLAP, "--allow-overlap"), exc.conflicts
        ) from None


def _registry(db: str, *, create: bool = True):
    from experiments.registry import Registry

    return Registry(db, create=create)


def _read_json(path: str) -> dict:
    from experiments.registry import design_defaults

    obj = read_json(path, "design file")
    if not isinstance(obj, dict):
        raise DataError(f"{path}: a design file must be a JSON object, got {type(obj).__name__}")
    try:
        design_defaults(obj)  # checked here too, so that the message names the file
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return obj


def _parse_cells(values: tuple[str, ...]) -> dict[str, list[str]]:
    cells: dict[str, list[str]] = {}
    for v in values:
        name, sep, geos = v.partition("=")
        if not sep or not name.strip():
            raise DataError(f"--cell '{v}' must read NAME=G1,G2")
        if name.strip() in cells:
            raise DataError(f"--cell {name.strip()} is given twice")
        cells[name.strip()] = split_list(geos) or [""]
    return cells


@click.group("registry")
def command() -> None:
    """The experiment registry: a calendar of geo tests with conflict checks and pre-registered readouts."""


@command.command("add")
@click.argument("name")
@db_option
@click.option(
    "--design",
    "design_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="design.json that produced the test: its treated/control geos, estimator, duration, alpha.",
)
@click.option(
    "--treated", default=None, help="Treated geos G1,G2 (one cell, 'A'); overrides the design's."
)
@click.option(
    "--cell", "cells", multiple=True, metavar="NAME=G1,G2", help="A treatment cell; repeatable."
)
@click.option(
    "--control", default=None, help="Pre-registered control geos G1,G2 (default: every other geo)."
)
@click.option(
    "--channel", default=None, help="Channel whose spend the test moves (spend_<channel>)."
)
@click.option("--start", required=True, help="First day of the test, YYYY-MM-DD.")
@click.option(
    "--end",
    default=None,
    help="Last day (inclusive); default start + the design's duration_days - 1.",
)
@click.option(
    "--pre-start", default=None, help="Pre-registered pre-period start (default: the readout's)."
)
@click.option(
    "--pre-end",
    default=None,
    help="Pre-registered pre-period end (default: the day before --start).",
)
@click.option(
    "--estimator", default=None, help="Pre-registered estimator (default: the design's, else sc)."
)
@click.option(
    "--confidence",
    default=None,
    type=click.FloatRange(0.5, 0.999),
    help="Pre-registered confidence (default: 1 - the design's alpha, else 0.9).",
)
@click.option(
    "--seed", default=0, show_default=True, type=SEED, help="Pre-registered seed of the readout."
)
@click.option(
    "--y",
    "outcome",
    default=None,
    help="Pre-registered outcome column (default: the design's, else signups).",
)
@click.option(
    "--washout-days",
    default=14,
    show_default=True,
    type=click.IntRange(0, 3650),
    help="Days after the end during which the geos stay occupied (carryover).",
)
@click.option(
    "--allow-overlap",
    is_flag=True,
    help="Register even if the geos overlap another live test (recorded).",
)
@click.option(
    "--reason", default="", help="Why an overlap is acceptable (recorded with --allow-overlap)."
)
@click.option("--note", default="", help="Free text kept with the test.")
@click.option(
    "--data",
    "data_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="A panel to check the geos against (optional).",
)
def add(
    name: str,
    db: str,
    design_path: str | None,
    treated: str | None,
    cells: tuple[str, ...],
    control: str | None,
    channel: str | None,
    start: str,
    end: str | None,
    pre_start: str | None,
    pre_end: str | None,
    estimator: str | None,
    confidence: float | None,
    seed: int,
    outcome: str | None,
    washout_days: int,
    allow_overlap: bool,
    reason: str,
    note: str,
    data_path: str | None,
) -> None:
    """Register test NAME as designed; refused if its geos are busy with another live test."""
    from causal.panel import load_panel

    design = _read_json(design_path) if design_path else None
    if treated is not None and cells:
        raise DataError("give either --treated or --cell, not both")
    cell_map: Any = (
        _parse_cells(cells)
        if cells
        else (split_list(treated) or [""] if treated is not None else None)
    )
    known = None
    if data_path:
        panel = load_panel(data_path, y=outcome or (design or {}).get("outcome") or "signups")
        if channel:
            panel.spend_column(channel)  # a test of a channel the panel has no spend of: refused
        known = panel.geos
    pre = (pre_start, pre_end) if (pre_start or pre_end) else None
    with _flag_for_overlaps():
        exp = _registry(db).add(
            name,
            cells=cell_map,
            start=start,
            end=end,
            channel=channel,
            control=split_list(control) if control is not None else None,
            pre_period=pre,
            estimator=estimator,
            confidence=confidence,
            seed=seed,
            outcome=outcome,
            washout_days=washout_days,
            design=design,
            allow_overlap=allow_overlap,
            reason=reason,
            note=note,
            known_geos=known,
        )
    click.echo(
        f"registered {exp.name} (designed): {exp.start} to {exp.end}, "
        f"{len(exp.treated)} treated geos in {len(exp.cells)} cell(s), geos busy until {exp.occupied_until}"
    )
    for o in exp.overlaps:
        click.echo(f"  overlap with {o['other']} allowed in {', '.join(o['geos'])}")


@command.command("start")
@click.argument("name")
@db_option
@click.option(
    "--allow-overlap", is_flag=True, help="Start even if another live test overlaps it (recorded)."
)
@click.option("--reason", default="", help="Why an overlap is acceptable.")
def start(name: str, db: str, allow_overlap: bool, reason: str) -> None:
    """Mark test NAME as running (designed -> running)."""
    with _flag_for_overlaps():
        exp = _registry(db, create=False).start(name, allow_overlap=allow_overlap, reason=reason)
    click.echo(f"{exp.name} is running: {exp.start} to {exp.end}")


@command.command("cancel")
@click.argument("name")
@db_option
@click.option("--reason", default="", help="Why the test is cancelled.")
def cancel(name: str, db: str, reason: str) -> None:
    """Cancel test NAME (designed or running); its geos are free again."""
    exp = _registry(db, create=False).cancel(name, reason=reason)
    click.echo(f"{exp.name} is cancelled; geos {', '.join(exp.treated)} are free")


@command.command("readout")
@click.argument("name")
@db_option
@panel_options
@click.option("--cell", default=None, help="Read out one cell only (default: every cell).")
@click.option(
    "--estimator", default=None, help="Override the pre-registered estimator (exploratory)."
)
@click.option(
    "--confidence",
    default=None,
    type=click.FloatRange(0.5, 0.999),
    help="Override the pre-registered confidence (exploratory).",
)
@click.option("--pre-start", default=None, help="Override the pre-period start (exploratory).")
@click.option(
    "--seed", default=None, type=SEED, help="Override the pre-registered seed (exploratory)."
)
@click.option(
    "--out",
    "out_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the readout.json (one cell: pass --cell for a multi-cell test).",
)
def readout(
    name: str,
    db: str,
    cell: str | None,
    estimator: str | None,
    confidence: float | None,
    pre_start: str | None,
    seed: int | None,
    out_path: str | None,
    **kwargs: Any,
) -> None:
    """Run test NAME's pre-registered readout on --data and store it (other settings: exploratory)."""
    reg = _registry(db, create=False)
    exp = reg.get(name)
    exp.require_status("read out", ("running", "read_out"))  # before reading a large panel
    if out_path and cell is None and len(exp.cells) > 1:
        raise DataError(
            f"--out writes one readout.json but '{name}' has cells {', '.join(exp.cells)}: pass --cell"
        )
    panel = read_panel(kwargs, columns=(f"spend_{exp.channel}",) if exp.channel else ())
    pre = None
    if pre_start is not None:
        pre = (pre_start, (exp.start - timedelta(days=1)).isoformat())
    with outputs() as files:
        records = reg.run_readout(
            name,
            panel,
            cell=cell,
            estimator=estimator,
            confidence=confidence,
            pre_period=pre,
            seed=seed,
        )
        if out_path:
            files.write_json(out_path, records[0].result)
    for r in records:
        res = r.result
        ci = res["incremental_ci"]
        click.echo(
            f"{name} cell {r.cell or '-'} readout #{r.id} [{r.label}]: incremental {res['incremental']:,.0f} "
            f"[{ci[0]:,.0f}, {ci[1]:,.0f}] at {res['confidence']:g}, lift {100 * (res.get('lift') or 0):.1f}%"
        )
        for d in r.deviations:
            click.echo(f"  deviation: {d}")
    click.echo(
        f"{name} is {reg.get(name).status}"
        + (f"; readout written to {out_path}" if out_path else "")
    )


@command.command("list")
@db_option
@click.option(
    "--status", type=click.Choice(["designed", "running", "read_out", "cancelled"]), default=None
)
@click.option("--channel", default=None)
def list_(db: str, status: str | None, channel: str | None) -> None:
    """List registered tests by start date."""
    exps = _registry(db, create=False).list(status=status, channel=channel)
    if not exps:
        click.echo("no experiments registered" + (f" with status {status}" if status else ""))
        return
    click.echo(
        f"{'name':<24} {'status':<10} {'channel':<14} {'start':<10} {'end':<10} {'geos':>4}  readouts"
    )
    for e in exps:
        n_expl = sum(r.exploratory for r in e.readouts)
        click.echo(
            f"{e.name:<24} {e.status:<10} {e.channel or '-':<14} {e.start!s:<10} {e.end!s:<10} "
            f"{len(e.treated):>4}  {len(e.readouts) - n_expl} pre-registered, {n_expl} exploratory"
        )


@command.command("show")
@click.argument("name")
@db_option
@click.option(
    "--out",
    "out_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the experiment, its readouts and history as JSON.",
)
def show(name: str, db: str, out_path: str | None) -> None:
    """Show test NAME: window, cells, pre-registered settings, readouts (exploratory marked), history."""
    exp = _registry(db, create=False).get(name)
    if out_path:
        with outputs() as files:
            files.write_json(out_path, exp.to_dict())
    click.echo(exp.summary())
    click.echo("  history:")
    for e in exp.events:
        click.echo(f"    {e['at'][:19]}  {e['action']:<13} {e['detail']}")


@command.command("calendar")
@db_option
@click.option(
    "--out", "out_path", default=None, type=click.Path(dir_okay=False), help="Calendar chart (PNG)."
)
@click.option(
    "--report", "report_path", default=None, type=click.Path(dir_okay=False), help="HTML report."
)
@click.option("--from", "date_from", default=None, help="First date shown.")
@click.option("--to", "date_to", default=None, help="Last date shown.")
@click.option("--all", "include_cancelled", is_flag=True, help="Include cancelled tests.")
def calendar(
    db: str,
    out_path: str | None,
    report_path: str | None,
    date_from: str | None,
    date_to: str | None,
    include_cancelled: bool,
) -> None:
    """Tests by market over time: a Gantt-like chart (--out PNG, --report HTML) and a text listing."""
    from allocation.cli.registry_report import calendar_report
    from experiments.registry import plot_calendar

    reg = _registry(db, create=False)
    frame = reg.calendar(start=date_from, end=date_to, include_cancelled=include_cancelled)
    if frame.empty:
        raise DataError("the calendar is empty: no tests in the registry for that period")
    with outputs() as files:
        if out_path:
            import matplotlib.pyplot as plt

            fig, _ = plot_calendar(frame)
            fig.savefig(files.path(out_path), format="png", dpi=110, bbox_inches="tight")
            plt.close(fig)
        if report_path:
            files.write_text(report_path, calendar_report(reg.list(), frame))
    tests = frame.drop_duplicates("experiment")
    click.echo(f"{len(tests)} tests in {frame['geo'].nunique()} markets")
    for t in tests.itertuples(index=False):
        geos = frame.loc[frame["experiment"] == t.experiment, "geo"]
        click.echo(
            f"  {t.start} .. {t.end} (busy to {t.occupied_until})  {t.experiment:<24} {t.status:<10} "
            f"{', '.join(geos)}"
        )
    for p, what in ((out_path, "chart"), (report_path, "report")):
        if p:
            click.echo(f"{what} written to {p}")


@command.command("busy")
@db_option
@click.option("--start", required=True, help="First day of the planned test, YYYY-MM-DD.")
@click.option("--end", required=True, help="Last day of the planned test.")
@click.option(
    "--washout-days",
    default=14,
    show_default=True,
    type=click.IntRange(0, 3650),
    help="The planned test's own washout.",
)
@click.option(
    "--plain",
    is_flag=True,
    help="Print only the comma-separated geos (for `liftlab design --exclude`).",
)
def busy(db: str, start: str, end: str, washout_days: int, plain: bool) -> None:
    """Geos a test from --start to --end cannot treat: occupied by live tests (window plus washout)."""
    geos = sorted(_registry(db, create=False).busy_geos(start, end, washout_days=washout_days))
    if plain:
        click.echo(",".join(geos))
    else:
        click.echo(
            f"{len(geos)} busy geos from {start} to {end} (+{washout_days}-day washout): "
            f"{','.join(geos) or 'none'}"
        )
