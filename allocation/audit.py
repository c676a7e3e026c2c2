"""Audit trail of allocation decisions: one append-only table through SQLAlchemy.

Every ``allocate`` and ``replan`` appends one record: the time, a SHA-256 hash
of the inputs, the curves, the constraints, the solution, the solver status and
the gap. The same code path writes to an embedded SQLite file (the default:
``liftlab.db`` in the current folder, or the ``LIFTLAB_DB`` environment
variable) or to PostgreSQL given a URL (``postgresql+psycopg://...``).

Each record is written in one transaction, so a crash mid-write loses at most
the record being written, never one already committed; SQLite runs in WAL
mode with ``synchronous=FULL`` so a committed record survives a killed process.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from causal.errors import ConfigError, DataError

DEFAULT_DB = "liftlab.db"
ENV_VAR = "LIFTLAB_DB"

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


def resolve_url(url: str | None = None) -> str:
    """A SQLAlchemy URL: given, else ``$LIFTLAB_DB``, else ``liftlab.db``; a bare path means SQLite."""
    url = url or os.environ.get(ENV_VAR) or DEFAULT_DB
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser()}"
    return url


def inputs_hash(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of the inputs (sorted keys), to spot identical decisions."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class AuditLog:
    """The audit trail at a database URL.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL or a SQLite file path; default ``$LIFTLAB_DB`` or ``liftlab.db``.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        try:
            self.engine = sa.create_engine(self.url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise ConfigError(f"audit database URL {self._safe_url()} is not usable ({exc})") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            _metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"audit database {self._safe_url()}: cannot open ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0]})") from None

    def _safe_url(self) -> str:
        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "<unparseable URL>"

    def record(self, *, command: str, curves: dict, constraints: dict, solution: dict,
               options: dict | None = None) -> int:
        """Append one decision in one transaction; returns its id."""
        row = {
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "command": command,
            "inputs_hash": inputs_hash(curves, constraints, options or {}),
            "status": str(solution.get("status", "unknown")),
            "gap": solution.get("gap"),
            "objective": solution.get("objective"),
            "total_spend": solution.get("total_spend"),
            "total_incremental": solution.get("total_incremental"),
            "curves": json.dumps(curves, default=str),
            "constraints": json.dumps({"rules": constraints, "options": options or {}}, default=str),
            "solution": json.dumps(solution, default=str),
        }
        with self.engine.begin() as conn:  # one transaction: all of the record or none of it
            result = conn.execute(decisions.insert().values(**row))
            return int(result.inserted_primary_key[0])

    def list(self, limit: int | None = None) -> list[dict]:
        """Records newest first, without their JSON bodies."""
        cols = [c for c in decisions.c if c.name not in ("curves", "constraints", "solution")]
        q = sa.select(*cols).order_by(decisions.c.id.desc())
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def show(self, record_id: int) -> dict:
        """One full record, its JSON bodies parsed."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(decisions).where(decisions.c.id == record_id)).first()
        if r is None:
            raise DataError(f"audit database {self._safe_url()}: no record with id {record_id}")
        out = dict(r._mapping)
        for key in ("curves", "constraints", "solution"):
            out[key] = json.loads(out[key])
        return out

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL + synchronous=FULL: a committed transaction is on disk before commit returns.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
