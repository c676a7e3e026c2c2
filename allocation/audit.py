"""Audit trail of allocation decisions: one append-only table on the shared store.

Every ``allocate`` and ``replan`` appends one record: the time, a SHA-256 hash
of the inputs, the curves, the constraints, the solution, the solver status and
the gap. The table lives in the same database as the experiment registry and
goes through the same layer, :mod:`experiments.store`: an embedded SQLite file
or PostgreSQL given a URL (``postgresql+psycopg://...``), the URL resolved
(:func:`experiments.store.resolve_url`, the one resolver), masked and its errors
reported the same way.

Each record is written in one transaction, so a crash mid-write loses at most
the record being written, never one already committed; SQLite runs with
``synchronous=FULL`` so a committed record survives a killed process.
Reading the trail (``list``, ``show``) never creates a database file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from causal.errors import DataError
from experiments import store
from experiments.store import DEFAULT_DB, ENV_VAR, mask_url, resolve_url

__all__ = ["DEFAULT_DB", "ENV_VAR", "AuditLog", "inputs_hash", "mask_url", "resolve_url"]

WHAT = "audit database"

_metadata = sa.MetaData()
decisions = sa.Table(
    "liftlab_decisions",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("command", sa.String(40), nullable=False),
    sa.Column("inputs_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("gap", sa.Float, nullable=True),
    sa.Column("objective", sa.String(40), nullable=True),
    sa.Column("total_spend", sa.Float, nullable=True),
    sa.Column("total_incremental", sa.Float, nullable=True),
    sa.Column("curves", sa.Text, nullable=False),
    sa.Column("constraints", sa.Text, nullable=False),
    sa.Column("solution", sa.Text, nullable=False),
)


def inputs_hash(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of the inputs (sorted keys), to spot identical decisions."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class AuditLog:
    """The audit trail at a database URL.

    Parameters
    ----------
    url : str
        SQLAlchemy URL or a SQLite file path. There is no default database in the library:
        the command line applies its own (:func:`experiments.store.command_line_default`).
    create : bool, default=True
        Create the database file and table if missing. With False (reading),
        a missing SQLite file or a database without the table holds no
        records; nothing is created.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = resolve_url(url)
        path = store.sqlite_path(self.url)
        # Reading a trail that was never written: no records, and no file created for them.
        self._absent = not create and path is not None and not path.exists()
        self.engine = (
            None if self._absent else store.open_engine(self.url, create=create, what=WHAT)
        )
        if create:
            store.ensure_schema(self.engine, _metadata, what=WHAT)

    def safe_url(self) -> str:
        """The database URL with its password masked, for messages and output files."""
        return mask_url(self.url)

    def _has_table(self) -> bool:
        return not self._absent and store.has_tables(self.engine, _metadata, what=WHAT)

    def record(
        self,
        *,
        command: str,
        curves: dict,
        constraints: dict,
        solution: dict,
        options: dict | None = None,
    ) -> int:
        """Append one decision in one transaction; returns its id."""
        with self.recording(
            command=command,
            curves=curves,
            constraints=constraints,
            solution=solution,
            options=options,
        ) as record_id:
            return record_id

    @contextmanager
    def recording(
        self,
        *,
        command: str,
        curves: dict,
        constraints: dict,
        solution: dict,
        options: dict | None = None,
    ) -> Iterator[int]:
        """Insert one decision and commit it only when the ``with`` block succeeds.

        The block writes the files the decision produced; if it fails (or the
        process dies in it), the record is rolled back, so no record exists
        for a plan that was never written::

            with outputs() as files, log.recording(...) as audit_id:
                result["audit_id"] = audit_id
                files.write_json(out_path, result)
                files.commit()          # the plan is in place; the record commits next
        """
        row = {
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "command": command,
            "inputs_hash": inputs_hash(curves, constraints, options or {}),
            "status": str(solution.get("status", "unknown")),
            "gap": solution.get("gap"),
            "objective": solution.get("objective"),
            "total_spend": solution.get("total_spend"),
            "total_incremental": solution.get("total_incremental"),
            # A database URL inside the inputs (a lift's source) is stored with its password masked.
            "curves": mask_url(json.dumps(curves, default=str)),
            "constraints": mask_url(
                json.dumps({"rules": constraints, "options": options or {}}, default=str)
            ),
            "solution": mask_url(json.dumps(solution, default=str)),
        }
        if not self._has_table():
            store.ensure_schema(self.engine, _metadata, what=WHAT)
        # One transaction: all of the record or none of it.
        with store.transaction(self.engine, write=True, lock=None, what=WHAT) as conn:
            result = conn.execute(decisions.insert().values(**row))
            yield int(result.inserted_primary_key[0])

    def list(self, limit: int | None = None) -> list[dict]:
        """Records newest first, without their JSON bodies."""
        if not self._has_table():
            return []
        cols = [c for c in decisions.c if c.name not in ("curves", "constraints", "solution")]
        q = sa.select(*cols).order_by(decisions.c.id.desc())
        if limit:
            q = q.limit(limit)
        with store.transaction(self.engine, what=WHAT) as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def show(self, record_id: int) -> dict:
        """One full record, its JSON bodies parsed."""
        r = None
        if self._has_table():
            with store.transaction(self.engine, what=WHAT) as conn:
                r = conn.execute(sa.select(decisions).where(decisions.c.id == record_id)).first()
        if r is None:
            where = store.sqlite_path(self.url) if self._absent else store.describe(self.engine)
            missing = " (the file does not exist)" if self._absent else ""
            raise DataError(f"{WHAT} {where}: no record with id {record_id}{missing}")
        out = dict(r._mapping)
        for key in ("curves", "constraints", "solution"):
            out[key] = json.loads(out[key])
        return out

    def count(self) -> int:
        """How many decisions are recorded."""
        if not self._has_table():
            return 0
        with store.transaction(self.engine, what=WHAT) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())

    def close(self) -> None:
        """Close the database connections."""
        if self.engine is not None:
            self.engine.dispose()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
