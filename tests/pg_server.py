"""A throwaway PostgreSQL server for tests, when the machine has one installed.

``start_server()`` runs ``initdb`` in a temporary folder and starts
``postgres`` on a free localhost port (trust authentication, nothing kept).
When PostgreSQL or the psycopg driver is missing it returns the reason to skip.
As root, the server runs as the ``postgres`` system user (initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PgServer:
    """A running server; ``url(dbname)`` gives a SQLAlchemy URL."""

    bindir: Path
    datadir: Path
    port: int
    user: str
    run_as: list[str]

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        """Create an empty database; returns its URL."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{dbname}"')
        finally:
            engine.dispose()
        return self.url(dbname)

    def stop(self) -> None:
        subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def find_bindir() -> Path | None:
    hits = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(hits[-1]).parent if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> PgServer | str:
    """Start a server, or return why one cannot be started (a skip reason)."""
    bindir = find_bindir()
    if bindir is None:
        return "no PostgreSQL server installed (/usr/lib/postgresql/*/bin/initdb not found)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install 'psycopg[binary]')"
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="liftlab-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: cannot start PostgreSQL as another user"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' system user to run the server"
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    datadir, sockdir = root / "data", root / "sock"
    user = "liftlab"
    try:
        subprocess.run(
            [*run_as, "mkdir", str(datadir), str(sockdir)], check=True, capture_output=True
        )
        subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-A",
                "trust",
                "-U",
                user,
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = _free_port()
        opts = f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *run_as,
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "-l",
                str(root / "log"),
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        return f"PostgreSQL could not be started: {exc} {detail.decode(errors='replace')[-300:]}"
    server = PgServer(bindir, datadir, port, user, run_as)
    # pg_ctl -w waits for readiness; a short retry covers a slow first connection.
    import sqlalchemy as sa

    for _ in range(50):
        try:
            engine = sa.create_engine(server.url())
            with engine.connect():
                pass
            engine.dispose()
            break
        except Exception:  # noqa: BLE001 - any connection failure means "not ready yet"
            time.sleep(0.2)
    return server
