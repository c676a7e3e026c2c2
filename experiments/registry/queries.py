"""The registry's statements, each run inside a transaction the service opens.

Reading a test (with its geos, overlaps, readouts and history), finding the
live tests that conflict with a window, and writing events, statuses and
accepted overlaps. The caller holds the transaction (and, for writes, the
registry's writer lock: see :func:`experiments.store.transaction`).
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from causal.errors import DataError
from experiments.registry.records import (
    Conflict,
    ConflictError,
    ControlContaminationWarning,
    ReadoutRecord,
    RegisteredExperiment,
    iso,
)
from experiments.registry.schema import (
    OCCUPYING,
    events_table,
    experiments_table,
    geos_table,
    overlaps_table,
    readouts_table,
)

#: How a caller accepts an overlap, as the conflict message names it (the CLI names its flag).
ALLOW_OVERLAP = "allow_overlap=True"


def now() -> datetime:
    """The time stamps of the registry: UTC."""
    return datetime.now(UTC)


def find_row(conn: Connection, name: str | None) -> Any:
    row = conn.execute(
        sa.select(experiments_table).where(experiments_table.c.name == str(name).strip())
    ).first()
    if row is None:
        known = [
            r.name
            for r in conn.execute(
                sa.select(experiments_table.c.name).order_by(experiments_table.c.id.desc()).limit(6)
            )
        ]
        hint = (
            f" (registered: {', '.join(known)}{', ...' if len(known) == 6 else ''})"
            if known
            else " (the registry is empty)"
        )
        raise DataError(f"unknown experiment '{name}'{hint}")
    return row


def geos_of(conn: Connection, exp_id: int) -> list[tuple[str, str]]:
    q = (
        sa.select(geos_table.c.geo, geos_table.c.cell)
        .where(geos_table.c.experiment_id == exp_id)
        .order_by(geos_table.c.position)
    )
    return [(r.geo, r.cell) for r in conn.execute(q)]


def set_status(conn: Connection, exp_id: int, status: str, action: str, detail: str) -> None:
    conn.execute(
        experiments_table.update()
        .where(experiments_table.c.id == exp_id)
        .values(status=status, updated_at=now())
    )
    add_event(conn, exp_id, action, detail)


def add_event(conn: Connection, exp_id: int, action: str, detail: str) -> None:
    conn.execute(
        events_table.insert().values(
            experiment_id=exp_id, action=action, detail=detail, created_at=now()
        )
    )


def find_conflicts(
    conn: Connection,
    geos: set[str] | None,
    start: date,
    end: date,
    washout_days: int,
    *,
    exclude_id: int | None = None,
) -> list[Conflict]:
    """Occupying tests whose window-plus-washout overlaps ours and that treat one of ``geos`` (None: any)."""
    q = sa.select(experiments_table).where(experiments_table.c.status.in_(OCCUPYING))
    if exclude_id is not None:
        q = q.where(experiments_table.c.id != exclude_id)
    # Dates compared in Python: date arithmetic in SQL differs between dialects.
    mine_until = end + timedelta(days=washout_days)
    candidates = [
        r
        for r in conn.execute(q)
        if r.start_date <= mine_until and start <= r.end_date + timedelta(days=r.washout_days)
    ]
    if not candidates:
        return []
    by_id = {r.id: r for r in candidates}
    gq = (
        sa.select(geos_table.c.experiment_id, geos_table.c.geo)
        .where(geos_table.c.experiment_id.in_(list(by_id)))
        .order_by(geos_table.c.experiment_id, geos_table.c.position)
    )
    shared: dict[int, list[str]] = {}
    for r in conn.execute(gq):
        if geos is None or r.geo in geos:
            shared.setdefault(r.experiment_id, []).append(r.geo)
    out = []
    for exp_id, gs in shared.items():
        r = by_id[exp_id]
        out.append(
            Conflict(r.name, r.status, tuple(gs), r.start_date, r.end_date, int(r.washout_days))
        )
    return sorted(out, key=lambda c: (c.start, c.other))


def conflict_error(prefix: str, conflicts: list[Conflict]) -> ConflictError:
    first = conflicts[0]
    more = (
        f" (and {len(conflicts) - 1} more test{'s' if len(conflicts) > 2 else ''})"
        if len(conflicts) > 1
        else ""
    )
    return ConflictError(
        f"{prefix}: its geos overlap live {first.describe()}{more}; choose other geos or dates, "
        f"cancel '{first.other}', or allow the overlap explicitly ({ALLOW_OVERLAP})",
        conflicts,
    )


def record_overlaps(
    conn: Connection, exp_id: int, conflicts: list[Conflict], at: str, reason: str
) -> None:
    for c in conflicts:
        conn.execute(
            overlaps_table.insert().values(
                experiment_id=exp_id,
                other=c.other,
                geos=json.dumps(list(c.geos)),
                at=at,
                reason=reason,
                created_at=now(),
            )
        )
        add_event(
            conn,
            exp_id,
            "allow_overlap",
            f"overlap with {c.other} in {', '.join(c.geos)} allowed"
            + (f": {reason}" if reason else ""),
        )


def warn_contaminated_controls(
    conn: Connection, name: str, exp_id: int, control: set[str], start: date, end: date
) -> None:
    found = find_conflicts(conn, control, start, end, 0, exclude_id=exp_id)
    if found:
        which = "; ".join(f"{', '.join(c.geos)} by test '{c.other}'" for c in found)
        warnings.warn(
            f"experiment '{name}': control geos are treated by other tests during this test ({which}); "
            f"its readout may be biased (choose other control geos)",
            ControlContaminationWarning,
            stacklevel=3,
        )


def load_experiment(conn: Connection, row: Any) -> RegisteredExperiment:
    """The test of one ``registry_experiments`` row, with its geos, overlaps, readouts and events."""
    cells: dict[str, list[str]] = {}
    for g, cell in geos_of(conn, row.id):
        cells.setdefault(cell, []).append(g)
    overlaps = [
        {
            "other": o.other,
            "geos": json.loads(o.geos),
            "at": o.at,
            "reason": o.reason,
            "created_at": iso(o.created_at),
        }
        for o in conn.execute(
            sa.select(overlaps_table)
            .where(overlaps_table.c.experiment_id == row.id)
            .order_by(overlaps_table.c.id)
        )
    ]
    readouts = [
        ReadoutRecord(
            r.id,
            row.name,
            r.cell,
            bool(r.exploratory),
            tuple(json.loads(r.deviations)),
            json.loads(r.settings),
            json.loads(r.result),
            r.created_at,
        )
        for r in conn.execute(
            sa.select(readouts_table)
            .where(readouts_table.c.experiment_id == row.id)
            .order_by(readouts_table.c.id)
        )
    ]
    events = [
        {"action": e.action, "detail": e.detail, "at": iso(e.created_at)}
        for e in conn.execute(
            sa.select(events_table)
            .where(events_table.c.experiment_id == row.id)
            .order_by(events_table.c.id)
        )
    ]
    return RegisteredExperiment(
        name=row.name,
        channel=row.channel,
        cells={k: tuple(v) for k, v in cells.items()},
        control=tuple(json.loads(row.control)) if row.control else None,
        start=row.start_date,
        end=row.end_date,
        pre_start=row.pre_start,
        pre_end=row.pre_end,
        outcome=row.outcome,
        estimator=row.estimator,
        confidence=float(row.confidence),
        seed=int(row.seed),
        washout_days=int(row.washout_days),
        status=row.status,
        design=json.loads(row.design) if row.design else None,
        note=row.note or "",
        overlaps=overlaps,
        readouts=readouts,
        events=events,
        created_at=row.created_at,
    )
