"""The audit trail: SQLite by default, PostgreSQL by URL, one code path; a killed writer loses nothing committed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from allocation.audit import AuditLog, resolve_url
from allocation.curves import CurveSet
from allocation.optimize import allocate
from causal.errors import ConfigError, DataError
from experiments.registry import Registry
from experiments.store import command_line_default

CURVES = {
    "channels": [
        {
            "name": "a",
            "market": "US",
            "response": {"form": "log", "beta": 50, "scale": 500},
            "current_spend": 300.0,
        },
        {
            "name": "b",
            "market": "US",
            "response": {"form": "exp", "beta": 80, "scale": 900},
            "current_spend": 500.0,
        },
    ]
}


def _record_plan(log: AuditLog, budget: float) -> int:
    curves = CurveSet.from_dict(CURVES)
    plan = allocate(curves, budget=budget)
    return log.record(
        command="allocate",
        curves=curves.to_dict(),
        constraints=plan.rules,
        solution=plan.to_dict(),
        options={"budget": budget},
    )


def _exercise(log: AuditLog) -> None:
    first = _record_plan(log, 1000.0)
    second = _record_plan(log, 2000.0)
    assert second > first
    rows = log.list()
    assert [r["id"] for r in rows[:2]] == [second, first]
    shown = log.show(first)
    assert shown["status"] == "optimal" and shown["gap"] == 0.0
    assert shown["solution"]["total_spend"] == pytest.approx(1000.0, rel=1e-7)
    assert shown["curves"]["channels"][1]["name"] == "b"
    assert shown["constraints"]["options"]["budget"] == 1000.0
    assert shown["inputs_hash"] != log.show(second)["inputs_hash"]
    with pytest.raises(DataError, match="no record with id 999999"):
        log.show(999999)


def test_sqlite_round_trip_and_default_location(tmp_path, monkeypatch):
    log = AuditLog(str(tmp_path / "audit.db"))
    _exercise(log)
    # The library has no default database; the command line's default is explicit.
    with pytest.raises(ConfigError, match="no database given"):
        resolve_url(None)
    monkeypatch.setenv("LIFTLAB_DB", str(tmp_path / "env.db"))
    assert command_line_default() == str(tmp_path / "env.db")
    monkeypatch.delenv("LIFTLAB_DB")
    monkeypatch.chdir(tmp_path)
    assert command_line_default() == "liftlab.db"
    # One resolve_url for the registry and the audit trail: a path becomes an absolute SQLite file.
    assert resolve_url("liftlab.db") == f"sqlite:///{tmp_path / 'liftlab.db'}"
    assert AuditLog("liftlab.db").url == Registry("liftlab.db").url
    with pytest.raises(ConfigError, match="not usable"):
        AuditLog("nosuchdialect://x/y")


WRITER = r"""
import sys
from allocation.audit import AuditLog
log = AuditLog(sys.argv[1])
big = {"channels": [{"name": f"ch{i}", "blob": "x" * 2000} for i in range(200)]}  # ~400 kB per record
i = 0
while True:
    rid = log.record(command="allocate", curves=big, constraints={"i": i}, solution={"status": "optimal", "i": i})
    print(rid, flush=True)
    i += 1
"""


def test_killed_writer_loses_nothing_committed(tmp_path):
    db = tmp_path / "audit.db"
    AuditLog(str(db)).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    committed = []
    try:
        while len(committed) < 15:
            line = proc.stdout.readline()
            assert line, "writer died early"
            committed.append(int(line))
        time.sleep(0.05)  # let it get into the middle of the next write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    committed += [int(x) for x in proc.stdout.read().split()]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    log = AuditLog(str(db))
    ids = {r["id"] for r in log.list()}
    assert set(committed) <= ids  # every record the writer saw committed is there
    for rid in committed:
        rec = log.show(rid)
        assert rec["solution"]["status"] == "optimal" and len(rec["curves"]["channels"]) == 200
    assert (
        max(ids) <= max(committed) + 1
    )  # at most the one record in flight, and only if it committed whole


@pytest.fixture(scope="module")
def postgres_url(pg_server):
    # Its own database on the session's server, so the registry tests' tables never meet these.
    return pg_server.create_database("liftlab_audit")


@pytest.mark.postgres
def test_postgresql_same_code_path(postgres_url):
    log = AuditLog(postgres_url)
    assert log.engine.dialect.name == "postgresql"
    _exercise(log)
    log.close()


@pytest.mark.postgres
def test_cli_writes_to_postgresql(postgres_url, tmp_path, run_cli):
    import json

    curves = tmp_path / "curves.json"
    curves.write_text(json.dumps(CURVES))
    code, _, err = run_cli(
        "allocate",
        "--curves",
        str(curves),
        "--budget",
        "900",
        "--out",
        str(tmp_path / "p.json"),
        "--audit-db",
        postgres_url,
    )
    assert code == 0, err
    rid = json.loads((tmp_path / "p.json").read_text())["audit_id"]
    code, out, _ = run_cli("audit", "show", str(rid), "--audit-db", postgres_url)
    assert code == 0 and json.loads(out)["solution"]["total_spend"] == pytest.approx(900, rel=1e-7)
