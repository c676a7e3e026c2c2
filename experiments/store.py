"""The embedded database under the experiment registry: an SQLAlchemy engine and its transactions.

One code path for every backend: SQLite by default (a file, ``liftlab.db`` in
the current folder or the file or URL in the ``LIFTLAB_DB`` environment
variable, the same default as the allocation audit trail), PostgreSQL or any
other SQLAlchemy URL when one is given.

Writers are serialised so that a read-check-write sequence (look for
conflicting tests, then insert) is atomic across processes:

- on SQLite, pysqlite's own transaction handling is switched off (it delays
  ``BEGIN`` until the first write, which lets two processes both pass the
  check) and a writer opens its transaction with ``BEGIN IMMEDIATE``, which
  takes the database's write lock up front; a second writer waits on the busy
  timeout instead of failing at once. This is the recipe of SQLAlchemy's
  SQLite dialect documentation ("Serializable isolation / Savepoints /
  Transactional DDL").
- on every backend, a writer then locks one row of ``liftlab_locks`` with
  ``SELECT ... FOR UPDATE`` (a no-op on SQLite, which has already locked the
  whole file; a row lock on PostgreSQL, whose READ COMMITTED statements after
  the lock see everything the previous writer committed).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError

from causal.errors import ConfigError, DataError

DEFAULT_DB = "liftlab.db"
ENV_VAR = "LIFTLAB_DB"
SQLITE_BUSY_TIMEOUT_S = 30.0

metadata = sa.MetaData()

# One row per named writer lock; writers of the registry take the "registry" row.
locks = sa.Table(
    "liftlab_locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
)

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_ready: set[tuple[str, int]] = set()


def resolve_url(db: str | os.PathLike | None = None) -> str:
    """The SQLAlchemy URL for ``db``: a URL as given, a path as an SQLite file.

    ``None`` means the ``LIFTLAB_DB`` environment variable, else ``liftlab.db``
    in the current folder.
    """
    if db is None or str(db) == "":
        db = os.environ.get(ENV_VAR) or DEFAULT_DB
    text = str(db)
    if "://" in text:
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
        # Let SQLAlchemy, not pysqlite, emit BEGIN (pysqlite defers it to the first write).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = "BEGIN IMMEDIATE" if conn.get_execution_options().get("liftlab_write") else "BEGIN"
        conn.exec_driver_sql(mode)

    return engine


def get_engine(db: str | os.PathLike | None = None) -> Engine:
    """The (cached) engine of a database URL or SQLite path; see :func:`resolve_url`.

    Raises
    ------
    ConfigError
        If the URL cannot be parsed or its driver is not installed.
    """
    url = resolve_url(db)
    with _engines_lock:
        if url in _engines:
            return _engines[url]
        try:
            parsed = sa.engine.make_url(url)
            if parsed.get_backend_name() == "sqlite":
                if parsed.database and parsed.database != ":memory:":
                    folder = Path(parsed.database).parent
                    if not folder.is_dir():
                        raise DataError(f"database {url}: folder {folder} does not exist")
                engine = _sqlite_engine(url)
            else:
                engine = sa.create_engine(url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(f"database URL '{url}' is not usable: {exc}") from exc
        except ModuleNotFoundError as exc:
            raise ConfigError(f"database URL '{url}' needs the Python driver '{exc.name}' (pip install it)") from exc
        _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine's connections (tests; after a fork)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _ready.clear()


def ensure_schema(engine: Engine, meta: sa.MetaData = metadata, *, lock_names: tuple[str, ...] = ()) -> None:
    """Create the tables of ``meta`` (and the lock table and rows) if they are missing.

    Safe when several processes do it at once: creation runs in a writer
    transaction on SQLite, and a lost race on another backend ("already
    exists") is retried once, finding the tables there.
    """
    key = (str(engine.url), id(meta))
    if key in _ready:
        return
    for attempt in range(3):
        try:
            with transaction(engine, write=True, lock=None) as conn:
                metadata.create_all(conn, checkfirst=True)
                if meta is not metadata:
                    meta.create_all(conn, checkfirst=True)
            for name in lock_names:
                with transaction(engine, write=True, lock=None) as conn:
                    have = conn.execute(sa.select(locks.c.name).where(locks.c.name == name)).first()
                    if have is None:
                        conn.execute(locks.insert().values(name=name))
            break
        except DBAPIError as exc:
            # Another process created the same table or lock row a moment ago: try again.
            msg = str(exc).lower()
            race = isinstance(exc, IntegrityError) or "already exists" in msg or "duplicate" in msg
            if not race or attempt == 2:
                raise _connection_error(engine, exc) from exc
    _ready.add(key)


def _connection_error(engine: Engine, exc: Exception) -> Exception:
    if isinstance(exc, sa.exc.OperationalError):
        detail = " ".join(str(exc.orig).split()) if getattr(exc, "orig", None) else str(exc)
        return DataError(f"database {engine.url.render_as_string(hide_password=True)}: {detail}")
    return exc


@contextmanager
def transaction(engine: Engine, *, write: bool = False, lock: str | None = "registry") -> Iterator[Connection]:
    """A connection inside one transaction, committed on success and rolled back on error.

    Parameters
    ----------
    engine : Engine
    write : bool, default=False
        A writer transaction: ``BEGIN IMMEDIATE`` on SQLite, and the ``lock``
        row of ``liftlab_locks`` held ``FOR UPDATE`` until commit, so that
        writers of the same lock run one after the other on every backend.
    lock : str or None, default="registry"
        The lock row a writer takes (it must exist; see :func:`ensure_schema`).
    """
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as exc:
        raise _connection_error(engine, exc) from exc
    try:
        if write:
            conn = conn.execution_options(liftlab_write=True)
        try:
            trans = conn.begin()
        except sa.exc.OperationalError as exc:
            raise _connection_error(engine, exc) from exc
        try:
            if write and lock is not None:
                conn.execute(sa.select(locks.c.name).where(locks.c.name == lock).with_for_update()).first()
            yield conn
        except BaseException:
            trans.rollback()
            raise
        else:
            trans.commit()
    finally:
        conn.close()
