"""The one database layer of liftlab: the registry and the audit trail share it.

One code path for every backend: an SQLite file, PostgreSQL or any other
SQLAlchemy URL. The library has no default database: every caller names one.
The command line's default (the ``LIFTLAB_DB`` environment variable, else
``liftlab.db`` in the current folder: :func:`command_line_default`) is applied
by its ``--db``/``--audit-db`` options. The
experiment registry (:mod:`experiments.registry`) and the allocation audit
trail (:mod:`allocation.audit`) both open their database with
:func:`open_engine` and run every statement inside :func:`transaction`, so both
resolve a URL the same way, mask its password the same way and turn a broken
database into the same one-line :class:`~causal.errors.DataError`.

There is no module-level engine cache: each registry or audit log owns its
engine and disposes of it in ``close()``.

Writers are serialised so that a read-check-write sequence (look for
conflicting tests, then insert) is atomic across processes:

- on SQLite, pysqlite's own transaction handling is switched off (it delays
  ``BEGIN`` until the first write, which lets two processes both pass the
  check) and a writer opens its transaction with ``BEGIN IMMEDIATE``, which
  takes the database's write lock up front; a second writer waits on the busy
  timeout instead of failing at once. This is the recipe of SQLAlchemy's
  SQLite dialect documentation ("Serializable isolation / Savepoints /
  Transactional DDL"). With ``synchronous=FULL`` and the rollback journal a
  committed transaction survives a killed process, and a killed writer's
  half-written transaction is rolled back by the next connection.
- on every backend, a writer then locks one row of ``liftlab_locks`` with
  ``SELECT ... FOR UPDATE`` (a no-op on SQLite, which has already locked the
  whole file; a row lock on PostgreSQL, whose READ COMMITTED statements after
  the lock see everything the previous writer committed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError

from causal.errors import ConfigError, DataError, mask_url, raw_at_in_userinfo

__all__ = [
    "DEFAULT_DB",
    "ENV_VAR",
    "command_line_default",
    "database_error",
    "describe",
    "ensure_schema",
    "has_tables",
    "mask_url",
    "open_engine",
    "parse_url",
    "resolve_url",
    "sqlite_path",
    "transaction",
]

#: The command line's database when ``--db``/``--audit-db`` and ``$LIFTLAB_DB`` are not given.
DEFAULT_DB = "liftlab.db"
#: The environment variable naming the command line's database.
ENV_VAR = "LIFTLAB_DB"
SQLITE_BUSY_TIMEOUT_S = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"

metadata = sa.MetaData()

# One row per named writer lock; writers of the registry take the "registry" row.
locks = sa.Table(
    "liftlab_locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
)


def command_line_default() -> str:
    """The database the command line uses when none is given: ``$LIFTLAB_DB``, else ``liftlab.db``.

    Only the command line's options call this; library code is given its database.
    """
    return os.environ.get(ENV_VAR) or DEFAULT_DB


def resolve_url(db: str | os.PathLike) -> str:
    """The SQLAlchemy URL for ``db``: a URL as given, a path as an absolute SQLite file.

    .. versionchanged:: issue 19
       ``None`` is refused; it meant ``$LIFTLAB_DB``, else ``./liftlab.db``
       (now :func:`command_line_default`, applied by the command line).

    >>> resolve_url("postgresql+psycopg://u@h/db")
    'postgresql+psycopg://u@h/db'
    >>> resolve_url("x.db").startswith("sqlite:///") and resolve_url("x.db").endswith("/x.db")
    True
    """
    if db is None or str(db).strip() == "":
        raise ConfigError(
            "no database given: pass an SQLAlchemy URL or an SQLite file "
            f"(the command line's default is ${ENV_VAR}, else {DEFAULT_DB})"
        )
    text = str(db)
    if "://" in text:
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def parse_url(url: str) -> sa.engine.URL:
    """Parse a resolved URL; a malformed one (bad port, no dialect, a raw ``@`` in the password) is a
    :class:`ConfigError`."""
    if raw_at_in_userinfo(url):
        raise ConfigError(
            f"database URL '{mask_url(url)}' has an unencoded '@' in its user or password: "
            "write it as %40"
        )
    try:
        return sa.engine.make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"database URL '{mask_url(url)}' is not usable: {mask_url(str(exc))}"
        ) from None


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL, or None (another backend, or an in-memory database)."""
    parsed = parse_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    database = parsed.database
    if database.startswith("file:"):  # sqlite:///file:path?mode=ro&uri=true
        database = database[len("file:") :]
    return Path(database)


def _check_sqlite_file(path: Path, url: str, *, create: bool, what: str) -> None:
    """Refuse before connecting what SQLite would only refuse at the first statement (or not at all)."""
    if not path.exists():
        if not create:
            raise DataError(f"no {what} at {path}")
        if not path.parent.is_dir():
            raise DataError(f"{what} {mask_url(url)}: folder {path.parent} does not exist")
        return
    if path.is_dir():
        raise DataError(f"{what} {path}: is a folder, not a database file")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise DataError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    if head and head != _SQLITE_MAGIC:
        raise DataError(
            f"{what} {path}: not an SQLite database (give a new file name or an SQLAlchemy URL)"
        )


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    timeout_ms = int(SQLITE_BUSY_TIMEOUT_S * 1000)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
        # Let SQLAlchemy, not pysqlite, emit BEGIN (pysqlite defers it to the first write).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        cur.execute("PRAGMA foreign_keys = ON")
        # synchronous=FULL: a committed transaction is on disk before commit returns. The
        # journal stays SQLite's default rollback journal: WAL mode would be a lasting change
        # to the file made by a mere read, and would leave -wal/-shm files beside it.
        cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = "BEGIN IMMEDIATE" if conn.get_execution_options().get("liftlab_write") else "BEGIN"
        conn.exec_driver_sql(mode)

    return engine


def open_engine(db: str | os.PathLike, *, create: bool = True, what: str = "database") -> Engine:
    """A new engine for a database URL or SQLite path (see :func:`resolve_url`); the caller disposes of it.

    Parameters
    ----------
    db : str or path
        SQLAlchemy URL or SQLite file.
    create : bool, default=True
        With False a missing SQLite file is an error instead of a new empty
        database: a read never creates a file.
    what : str, default="database"
        What the database is, for messages ("registry database", "audit database").

    Raises
    ------
    ConfigError
        If the URL cannot be parsed or its driver is not installed.
    DataError
        If an SQLite file is missing (with ``create=False``), is not a database,
        or its folder does not exist.
    """
    url = resolve_url(db)
    parsed = parse_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and (path := sqlite_path(url)) is not None:
        _check_sqlite_file(path, url, create=create, what=what)
    try:
        if sqlite:
            return _sqlite_engine(url)
        return sa.create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(
            f"database URL '{mask_url(url)}' is not usable: {mask_url(str(exc))}"
        ) from None
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"database URL '{mask_url(url)}' needs the Python driver '{exc.name}' (pip install it)"
        ) from None


def describe(engine: Engine) -> str:
    """The database an engine points at, password masked: the file of an SQLite database, else its URL."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return str(engine.url.database)
    return engine.url.render_as_string(hide_password=True)


def database_error(engine: Engine, exc: BaseException, what: str = "database") -> Exception:
    """A one-line :class:`DataError` naming the database for an error of the driver, or ``exc`` itself.

    Corrupt, truncated, read-only, locked or unreachable databases all raise
    the DBAPI's ``OperationalError`` or ``DatabaseError``; an integrity
    violation or a programming error is ours and keeps its traceback.
    """
    if (
        isinstance(exc, DBAPIError)
        and isinstance(exc, (sa.exc.OperationalError, sa.exc.DatabaseError))
        and not isinstance(exc, (IntegrityError, sa.exc.ProgrammingError))
    ):
        detail = (
            " ".join(str(exc.orig).split())
            if getattr(exc, "orig", None)
            else str(exc).splitlines()[0]
        )
        hint = ""
        low = detail.lower()
        if "locked" in low:
            hint = (
                f" (another process held it for more than {SQLITE_BUSY_TIMEOUT_S:g} s; try again)"
            )
        elif "readonly" in low or "read-only" in low:
            hint = " (the file or its folder is not writable)"
        elif "malformed" in low or "not a database" in low:
            hint = " (the file is damaged: restore it from a copy)"
        return DataError(f"{what} {describe(engine)}: {mask_url(detail)}{hint}")
    return exc


def has_tables(engine: Engine, meta: sa.MetaData, *, what: str = "database") -> bool:
    """Whether every table of ``meta`` exists (a read: takes no write lock)."""
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            return all(inspector.has_table(t.name) for t in meta.sorted_tables)
    except DBAPIError as exc:
        raise database_error(engine, exc, what) from None


def _schema_ready(
    engine: Engine, meta: sa.MetaData, lock_names: tuple[str, ...], what: str
) -> bool:
    if not (has_tables(engine, metadata, what=what) and has_tables(engine, meta, what=what)):
        return False
    if not lock_names:
        return True
    with transaction(engine, what=what) as conn:
        have = {r[0] for r in conn.execute(sa.select(locks.c.name))}
    return set(lock_names) <= have


def ensure_schema(
    engine: Engine,
    meta: sa.MetaData = metadata,
    *,
    lock_names: tuple[str, ...] = (),
    what: str = "database",
) -> None:
    """Create the tables of ``meta`` (and the lock table and rows) if they are missing.

    A database that already has them is only read, so a read-only file can
    still be listed. Safe when several processes create at once: creation runs
    in a writer transaction on SQLite, and a lost race on another backend
    ("already exists") is retried, finding the tables there.
    """
    if _schema_ready(engine, meta, lock_names, what):
        return
    for attempt in range(3):
        try:
            with transaction(engine, write=True, lock=None, what=what) as conn:
                metadata.create_all(conn, checkfirst=True)
                if meta is not metadata:
                    meta.create_all(conn, checkfirst=True)
                have = {r[0] for r in conn.execute(sa.select(locks.c.name))}
            missing = [name for name in lock_names if name not in have]
            for name in missing:
                with transaction(engine, write=True, lock=None, what=what) as conn:
                    if (
                        conn.execute(sa.select(locks.c.name).where(locks.c.name == name)).first()
                        is None
                    ):
                        conn.execute(locks.insert().values(name=name))
            return
        except DBAPIError as exc:
            # Another process created the same table or lock row a moment ago: try again.
            msg = str(exc).lower()
            race = isinstance(exc, IntegrityError) or "already exists" in msg or "duplicate" in msg
            if not race or attempt == 2:
                raise database_error(engine, exc, what) from None


@contextmanager
def transaction(
    engine: Engine, *, write: bool = False, lock: str | None = "registry", what: str = "database"
) -> Iterator[Connection]:
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
    what : str, default="database"
        What the database is, for messages.

    Raises
    ------
    DataError
        If the database cannot be opened, read or written (corrupt, truncated,
        read-only, locked beyond the busy timeout, unreachable), naming it.
    """
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise database_error(engine, exc, what) from None
    try:
        if write:
            conn = conn.execution_options(liftlab_write=True)
        trans = conn.begin()
        try:
            if write and lock is not None:
                conn.execute(
                    sa.select(locks.c.name).where(locks.c.name == lock).with_for_update()
                ).first()
            yield conn
        except BaseException:
            if trans.is_active:
                trans.rollback()
            raise
        else:
            trans.commit()
    except DBAPIError as exc:
        raise database_error(engine, exc, what) from None
    finally:
        conn.close()
