"""Hostile inputs and faults against every command (issue 17): nothing lost, nothing leaked, no traceback.

Each test runs ``liftlab`` as a user would (click's runner in-process, and a few
real subprocesses) on one failure class and checks the contract of
INTERFACE.md: exit status 2, exactly one line ``error: ...`` naming what is at
fault, no traceback, no password in the output or in any file written, every
input file byte-for-byte unchanged, and no temporary ``.part`` file left.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SECRET = "S3cretPassw0rd"
CURVES = {
    "outcome": "signups",
    "channels": [
        {
            "name": "social",
            "response": {"form": "hill", "beta": 120.0, "half_saturation": 5000.0, "shape": 1.0},
            "current_spend": 4000.0,
        },
        {
            "name": "ctv",
            "response": {"form": "log", "beta": 80.0, "scale": 3000.0},
            "current_spend": 3000.0,
        },
    ],
}


# -- helpers -------------------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (the inputs' state before a command)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_refused(result: tuple[int, str, str], *fragments: str) -> str:
    """Exit 2, one ``error:`` line naming every fragment, no traceback, no password; returns the line."""
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    assert SECRET not in out + err
    return errors[0]


def no_part_files(*folders: Path) -> None:
    for folder in folders:
        left = [p for p in folder.rglob("*.part")] if folder.is_dir() else []
        assert not left, left


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder with a small panel, a readout-like lift, curves and a plan; the current folder."""
    from causal.world import World

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIFTLAB_DB", raising=False)
    panel = World(6, 60, seed=3).panel()
    panel.to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "curves.json").write_text(json.dumps(CURVES))
    (tmp_path / "lift.json").write_text(json.dumps({"channel": "ctv", "incremental": 10.0}))
    (tmp_path / "plan.json").write_text(json.dumps({"lines": []}))
    return tmp_path


# -- data loss: --out naming an input or the report -------------------------------------------------
@pytest.mark.parametrize(
    "args, flag",
    [
        (
            [
                "readout",
                "--data",
                "panel.csv",
                "--treated",
                "x",
                "--start",
                "2024-02-01",
                "--end",
                "2024-02-10",
                "--out",
                "panel.csv",
            ],
            "--data",
        ),
        (
            ["calibrate", "--data", "panel.csv", "--lift", "lift.json", "--out", "lift.json"],
            "--lift",
        ),
        (
            [
                "calibrate",
                "--data",
                "panel.csv",
                "--lift",
                "lift.json",
                "--out",
                "./sub/../panel.csv",
            ],
            "--data",
        ),
        (["design", "--data", "panel.csv", "--out", "panel.csv"], "--data"),
        (
            ["allocate", "--curves", "curves.json", "--budget", "100", "--out", "curves.json"],
            "--curves",
        ),
        (
            ["replan", "--plan", "plan.json", "--curves", "curves.json", "--out", "plan.json"],
            "--plan",
        ),
        (
            [
                "allocate",
                "--curves",
                "curves.json",
                "--budget",
                "100",
                "--out",
                "audit.db",
                "--audit-db",
                "audit.db",
            ],
            "--audit-db",
        ),
        (["registry", "readout", "t", "--data", "panel.csv", "--out", "panel.csv"], "--data"),
        # The default database (./liftlab.db when no --audit-db or --db is given) is an input too.
        (
            ["allocate", "--curves", "curves.json", "--budget", "100", "--out", "liftlab.db"],
            "--audit-db",
        ),
        (["registry", "show", "t", "--out", "liftlab.db"], "--db"),
    ],
)
def test_out_equal_to_an_input_is_refused_before_anything_runs(work, run_cli, args, flag):
    (work / "sub").mkdir()
    (work / "audit.db").write_bytes(b"")
    before = snapshot(work)
    line = assert_refused(run_cli(*args), "--out", flag, "is the")
    assert "destroy the input" in line
    assert snapshot(work) == before
    no_part_files(work)


def test_out_equal_to_report_and_an_input_through_a_symlink(work, run_cli):
    before = snapshot(work)
    assert_refused(
        run_cli(
            "allocate",
            "--curves",
            "curves.json",
            "--budget",
            "7000",
            "--out",
            "x.json",
            "--report",
            "x.json",
        ),
        "--out and --report are the same file",
    )
    os.symlink(work / "curves.json", work / "link.json")
    assert_refused(
        run_cli("allocate", "--curves", "curves.json", "--budget", "7000", "--out", "link.json"),
        "--curves",
    )
    assert snapshot(work) == before | {"link.json": before["curves.json"]}
    assert not (work / "x.json").exists() and not (work / "liftlab.db").exists()


@pytest.mark.parametrize(
    "args, flag",
    [
        (
            [
                "allocate",
                "--curves",
                "curves.json",
                "--objective",
                "min_spend",
                "--target",
                "nan",
                "--out",
                "p.json",
            ],
            "--target",
        ),
        (
            [
                "allocate",
                "--curves",
                "curves.json",
                "--objective",
                "max_profit",
                "--value-per-signup",
                "nan",
                "--out",
                "p.json",
            ],
            "--value-per-signup",
        ),
        (["allocate", "--curves", "curves.json", "--budget", "inf", "--out", "p.json"], "--budget"),
        (
            [
                "allocate",
                "--curves",
                "curves.json",
                "--budget",
                "100",
                "--max-change",
                "-inf",
                "--out",
                "p.json",
            ],
            "--max-change",
        ),
        (
            [
                "replan",
                "--plan",
                "plan.json",
                "--curves",
                "curves.json",
                "--budget",
                "nan",
                "--out",
                "p.json",
            ],
            "--budget",
        ),
    ],
)
def test_non_finite_numbers_are_refused_for_every_option(work, run_cli, args, flag):
    before = snapshot(work)
    assert_refused(run_cli(*args), flag, "finite number")
    assert snapshot(work) == before


# -- outputs that cannot be written ----------------------------------------------------------------
@pytest.mark.parametrize(
    "out, fragment",
    [
        ("", "--out is empty"),
        ("regular.txt/plan.json", "is a file, not a folder"),
        ("/proc/liftlab_no_such/plan.json", "cannot create folder"),
        ("/proc/plan.json", "cannot write"),
        ("x" * 300 + ".json", "cannot write"),
        (".", "is a directory"),
    ],
)
def test_unwritable_out_is_one_error_and_leaves_nothing(work, run_cli, out, fragment):
    (work / "regular.txt").write_text("keep me\n")
    before = snapshot(work)
    assert_refused(
        run_cli(
            "allocate",
            "--curves",
            "curves.json",
            "--budget",
            "7000",
            "--out",
            out,
            "--audit-db",
            str(work / "a.db"),
        ),
        fragment,
    )
    assert snapshot(work) == {
        **before,
        **({"a.db": snapshot(work)["a.db"]} if (work / "a.db").exists() else {}),
    }
    no_part_files(work)


def test_an_audit_record_commits_only_with_its_files(tmp_path):
    """``AuditLog.recording`` + ``outputs``: a failed write leaves neither the plan nor its record."""
    from allocation.audit import AuditLog
    from allocation.cli.outputs import outputs
    from causal.errors import DataError

    log = AuditLog(str(tmp_path / "a.db"))
    with pytest.raises(DataError, match="is a file, not a folder"):
        with (
            outputs() as files,
            log.recording(
                command="allocate", curves=CURVES, constraints={}, solution={"status": "optimal"}
            ) as audit_id,
        ):
            files.write_json(tmp_path / "plan.json", {"audit_id": audit_id})
            files.write_json(tmp_path / "a.db" / "plan.html", {})
            files.commit()
    assert log.count() == 0 and not (tmp_path / "plan.json").exists()
    with (
        outputs() as files,
        log.recording(
            command="allocate", curves=CURVES, constraints={}, solution={"status": "optimal"}
        ) as audit_id,
    ):
        files.write_json(tmp_path / "plan.json", {"audit_id": audit_id})
        files.commit()
    assert (
        log.count() == 1
        and json.loads((tmp_path / "plan.json").read_text())["audit_id"] == audit_id
    )
    log.close()
    no_part_files(tmp_path)


def test_error_lines_mask_passwords_whatever_raised_them():
    from allocation.cli.main import _one_line

    line = _one_line(
        f"postgresql+psycopg://ana:{SECRET}@db/reg#1: treated geo 'X'\n is not in panel.csv"
    )
    assert (
        SECRET not in line
        and line == "postgresql+psycopg://ana:***@db/reg#1: treated geo 'X' is not in panel.csv"
    )


def test_writer_unit_cleans_up_and_masks_passwords(tmp_path):
    from allocation.cli.outputs import dumps, outputs
    from causal.errors import DataError

    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), outputs() as files:
        files.write_json(target, {"a": 1})
        raise RuntimeError("the command failed after staging")
    assert not target.exists() and not list(tmp_path.iterdir())
    with pytest.raises(DataError, match="output file name is empty"), outputs() as files:
        files.path("")
    text = dumps({"source": f"postgresql+psycopg://ana:{SECRET}@db:5432/reg#1", "x": float("nan")})
    assert SECRET not in text and "ana:***@db" in text and '"x": null' in text


# -- databases: corrupt, truncated, read-only, locked, not a database, bad URL, no implicit file ------------
def _real_db(path: Path) -> Path:
    from allocation.audit import AuditLog

    log = AuditLog(str(path))
    log.record(command="t", curves={}, constraints={}, solution={"status": "optimal"})
    log.close()
    return path


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty_header_text", "folder"])
def test_damaged_database_files_are_one_error_naming_the_path(work, run_cli, kind):
    db = work / "bad.db"
    if kind == "garbage":
        db.write_bytes(b"this is not a database\n" * 50)
    elif kind == "truncated":
        data = _real_db(work / "good.db").read_bytes()
        db.write_bytes(data[:150])  # the header survives, the pages do not
    elif kind == "empty_header_text":
        db.write_text("date,geo\n")
    else:
        db.mkdir()
    before = snapshot(work)
    for args in (
        ["registry", "list", "--db", str(db)],
        ["audit", "list", "--audit-db", str(db)],
        [
            "allocate",
            "--curves",
            "curves.json",
            "--budget",
            "7000",
            "--out",
            "p.json",
            "--audit-db",
            str(db),
        ],
        [
            "registry",
            "add",
            "t",
            "--db",
            str(db),
            "--treated",
            "NA01",
            "--start",
            "2024-02-01",
            "--end",
            "2024-02-10",
        ],
    ):
        assert_refused(run_cli(*args), str(db))
    assert snapshot(work) == before
    assert not (work / "p.json").exists()


def test_read_only_and_locked_databases(work, run_cli, monkeypatch):
    from experiments import store

    db = _real_db(work / "ro.db")
    before = snapshot(work)
    ro = f"sqlite:///file:{db}?mode=ro&uri=true"
    # Reading a read-only database works; writing it is one error naming the file.
    code, out, err = run_cli("audit", "list", "--audit-db", ro)
    assert code == 0, err
    assert_refused(
        run_cli(
            "allocate",
            "--curves",
            "curves.json",
            "--budget",
            "7000",
            "--out",
            "p.json",
            "--audit-db",
            ro,
        ),
        str(db),
        "readonly",
    )
    assert not (work / "p.json").exists()
    # Another process holds the write lock longer than the busy timeout.
    monkeypatch.setattr(store, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert_refused(
            run_cli(
                "allocate",
                "--curves",
                "curves.json",
                "--budget",
                "7000",
                "--out",
                "p.json",
                "--audit-db",
                str(db),
            ),
            str(db),
            "locked",
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not (work / "p.json").exists()
    assert snapshot(work)["ro.db"] == before["ro.db"]


@pytest.mark.parametrize(
    "url, fragment",
    [
        (f"postgresql+psycopg://ana:{SECRET}@localhost:abc/db", "not usable"),
        (f"postgresql+psycopg://ana:{SECRET}@127.0.0.1:1/db", "127.0.0.1:1"),
        (f"nosuchdialect://ana:{SECRET}@host/db", "not usable"),
    ],
)
def test_database_urls_are_masked_and_bad_ones_refused(work, run_cli, url, fragment):
    pytest.importorskip("psycopg")
    for args in (
        ["registry", "list", "--db", url],
        ["audit", "list", "--audit-db", url],
        ["registry", "busy", "--db", url, "--start", "2024-01-01", "--end", "2024-01-02"],
        ["calibrate", "--data", "panel.csv", "--registry", url, "--out", "c.json"],
    ):
        line = assert_refused(run_cli(*args), fragment)
        assert "***" in line or "abc" in line or "nosuchdialect" in line
    assert not (work / "c.json").exists()


def test_reads_create_no_database_file(work, run_cli):
    code, out, err = run_cli("audit", "list")
    assert code == 0 and "no records" in out, err
    assert_refused(run_cli("registry", "list"), "no registry database at")
    assert_refused(
        run_cli("audit", "show", "1"),
        str(work / "liftlab.db"),
        "no record with id 1",
        "does not exist",
    )
    assert not (work / "liftlab.db").exists()
    # A database of the registry only holds no audit records, and listing it creates no table.
    from experiments.registry import Registry

    with Registry(work / "reg.db") as reg:
        reg.add("t", cells=["NA01"], start="2024-02-01", end="2024-02-10")
    before = snapshot(work)
    code, out, err = run_cli("audit", "list", "--audit-db", str(work / "reg.db"))
    assert code == 0 and "no records" in out, err
    assert snapshot(work) == before


# -- one date rule -----------------------------------------------------------------------------------
def _panel_with_dates(work: Path, dates: list[str]) -> Path:
    frame = pd.read_csv(work / "panel.csv", dtype={"date": str})
    first = sorted(frame["date"].unique())[: len(dates)]
    frame = frame[frame["date"].isin(first)].copy()
    frame["date"] = frame["date"].map(dict(zip(first, dates)))
    path = work / "dated.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "dates, fragment",
    [
        (
            ["2024-01-01T00:00:00-05:00", "2024-01-02T00:00:00+01:00", "2024-01-03T00:00:00Z"],
            "UTC offset",
        ),
        (
            ["2024-01-01T00:00:00-05:00", "2024-01-02T00:00:00-05:00", "2024-01-03T00:00:00-05:00"],
            "UTC offset",
        ),
        (["2024-01-01", "2024-01-02T00:00:00+02:00", "2024-01-03"], "UTC offset"),
        (["2024-01-01 12:00", "2024-01-02 12:00", "2024-01-03 12:00"], "time of day"),
    ],
)
def test_validate_and_readout_share_one_date_rule(work, run_cli, dates, fragment):
    path = _panel_with_dates(work, dates)
    before = snapshot(work)
    v = assert_refused(run_cli("validate", "--data", str(path)), fragment, "row ", "'date'")
    r = assert_refused(
        run_cli(
            "readout",
            "--data",
            str(path),
            "--treated",
            "NA01",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-03",
            "--out",
            "r.json",
        ),
        fragment,
    )
    assert v == r
    assert snapshot(work) == before


def test_midnight_times_are_dates_everywhere_and_times_of_day_nowhere(work, run_cli):
    path = _panel_with_dates(work, [f"2024-01-{d:02d}T00:00:00" for d in range(1, 31)])
    code, out, err = run_cli("validate", "--data", str(path))
    assert code == 0 and "2024-01-01 to 2024-01-30" in out, err
    for value, fragment in (
        ("2024-01-20T12:00", "time of day"),
        ("2024-01-20T00:00:00+01:00", "UTC offset"),
    ):
        assert_refused(
            run_cli(
                "readout",
                "--data",
                str(path),
                "--treated",
                "NA01",
                "--start",
                value,
                "--end",
                "2024-01-25",
                "--out",
                "r.json",
            ),
            "start",
            fragment,
        )
        assert_refused(
            run_cli(
                "registry",
                "add",
                "t",
                "--db",
                "r.db",
                "--treated",
                "NA01",
                "--start",
                value,
                "--end",
                "2024-01-25",
            ),
            fragment,
        )
    assert not (work / "r.json").exists()


# -- the panel loader ---------------------------------------------------------------------------------
def test_duplicate_columns_and_a_broken_covariate_are_refused(work, run_cli):
    frame = pd.read_csv(work / "panel.csv")
    text = frame.to_csv(index=False).splitlines()
    header = text[0].split(",")
    spend = next(c for c in header if c.startswith("spend_"))
    dup = [",".join(header + [spend])] + [row + ",1" for row in text[1:]]
    (work / "dup.csv").write_text("\n".join(dup) + "\n")
    frame["competitor_price"] = ["ten" if i == 17 else "10.5" for i in range(len(frame))]
    frame.to_csv(work / "cov.csv", index=False)
    before = snapshot(work)
    assert_refused(run_cli("validate", "--data", "dup.csv"), f"column '{spend}' appears twice")
    assert_refused(run_cli("validate", "--data", "cov.csv"), "'competitor_price'", "'ten'")
    # A column of text is a label: kept, said, never a covariate.
    frame["competitor_price"] = 10.5
    frame["region"] = "north"
    frame.to_csv(work / "label.csv", index=False)
    code, out, err = run_cli("validate", "--data", "label.csv")
    assert code == 0 and "text columns, not used as covariates: region" in out, err
    assert snapshot(work) == {**before, "label.csv": snapshot(work)["label.csv"]}


def test_parquet_booleans_are_not_spend(work, run_cli):
    pytest.importorskip("pyarrow")
    frame = pd.read_csv(work / "panel.csv")
    spend = next(c for c in frame.columns if c.startswith("spend_"))
    frame[spend] = frame[spend] > frame[spend].median()
    frame["holiday"] = frame["date"].str.endswith("-01")
    frame.to_parquet(work / "bool.parquet", index=False)
    assert_refused(run_cli("validate", "--data", "bool.parquet"), f"'{spend}'", "true/false")
    # An indicator covariate is a 0/1 number by meaning.
    frame[spend] = 1.0
    frame.to_parquet(work / "flag.parquet", index=False)
    code, out, err = run_cli("validate", "--data", "flag.parquet")
    assert code == 0 and "holiday" in out, err


# -- JSON inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            '{"channels": [{"name": "a", "response": {"form": "log", "beta": NaN, "scale": 1}}]}',
            "NaN",
        ),
        (
            '{"channels": [{"name": "a", "response": {"form": "log", "beta": Infinity, "scale": 1}}]}',
            "Infinity",
        ),
        (
            '{"channels": [], "channels": [{"name": "a", "response": {"form": "log", "beta": 1, "scale": 1}}]}',
            "key 'channels' appears twice",
        ),
        (
            '{"channels": [{"name": "a", "response": {"form": "log", "beta": 1, "scale": 1}}]',
            "line 1",
        ),
        ("", "line 1, column 1"),
    ],
)
def test_curves_json_is_parsed_strictly(work, run_cli, text, fragment):
    (work / "c.json").write_text(text)
    before = snapshot(work)
    assert_refused(
        run_cli("allocate", "--curves", "c.json", "--budget", "10", "--out", "p.json"),
        "c.json",
        fragment,
    )
    assert (
        snapshot(work) == before
        and not (work / "p.json").exists()
        and not (work / "liftlab.db").exists()
    )


def test_design_file_of_the_registry_is_parsed_strictly(work, run_cli):
    add = ["registry", "add", "t", "--db", "r.db", "--design", "d.json", "--start", "2024-01-10"]
    for text, fragments in (
        (
            '{"treated": ["NA01"], "alpha": 0.1, "alpha": 0.2}',
            ("key 'alpha' appears twice", "line 1"),
        ),
        ('["NA01"]', ("must be a JSON object",)),
        ('{"treated": "NA01,NA02"}', ("design key 'treated' must be a non-empty list",)),
    ):
        (work / "d.json").write_text(text)
        assert_refused(run_cli(*add, "--end", "2024-01-20"), "d.json", *fragments)
    assert not (work / "r.db").exists()


def test_a_lift_of_infinity_is_refused(work, run_cli):
    lift = {
        "channel": "ctv",
        "treated": ["NA01"],
        "test_period": ["2024-02-01", "2024-02-10"],
        "incremental_ci": [-10.0, 10.0],
        "spend_delta": -100.0,
        "confidence": 0.9,
    }
    (work / "inf.json").write_text(json.dumps(lift)[:-1] + ', "incremental": Infinity}')
    assert_refused(
        run_cli("calibrate", "--data", "panel.csv", "--lift", "inf.json", "--out", "c.json"),
        "inf.json",
        "Infinity",
    )
    assert not (work / "c.json").exists()


# -- demo ----------------------------------------------------------------------------------------------
def test_demo_into_an_existing_demo_folder_is_refused_at_once(work, run_cli):
    out = work / "demo"
    out.mkdir()
    (out / "liftlab.db").write_bytes(b"")
    (out / "design_ctv.json").write_text("{}")
    before = snapshot(work)
    assert_refused(run_cli("demo", "--out", str(out)), "already holds a demo")
    assert snapshot(work) == before


# -- real processes ------------------------------------------------------------------------------------
def _liftlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LIFTLAB_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "allocation.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_real_processes_exit_2_with_one_line(work):
    before = snapshot(work)
    (work / "bad.db").write_text("not a database")
    for args, fragment in (
        (
            [
                "readout",
                "--data",
                "panel.csv",
                "--treated",
                "NA01",
                "--start",
                "2024-02-01",
                "--end",
                "2024-02-10",
                "--out",
                "panel.csv",
            ],
            "--data",
        ),
        (["registry", "list", "--db", f"postgresql+psycopg://u:{SECRET}@h:port/db"], "not usable"),
    ):
        proc = _liftlab(*args, cwd=work)
        assert_refused((proc.returncode, proc.stdout, proc.stderr), fragment)
    assert {k: v for k, v in snapshot(work).items() if k != "bad.db"} == before
    assert not (work / "liftlab.db").exists()


def test_an_interrupted_write_leaves_no_file_and_no_part(work, run_cli, monkeypatch):
    """Ctrl-C (or a SIGTERM, turned into SystemExit) half-way through writing the panel."""
    original = pd.DataFrame.to_csv

    def half_then_interrupt(self, path, *args, **kwargs):
        original(self.iloc[: len(self) // 2], path, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_interrupt)
    code, out, err = run_cli("simulate", "--out", "sim", "--geos", "4", "--days", "40")
    assert code != 0 and "Traceback" not in err
    assert not (work / "sim" / "panel.csv").exists() and not (work / "sim" / "truth.json").exists()
    no_part_files(work)


def test_sigterm_while_writing_leaves_no_file_and_no_part(work):
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "allocation.cli.main",
            "simulate",
            "--out",
            "sim",
            "--geos",
            "100",
            "--days",
            "2000",
        ],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    # Wait until the writer has staged the panel: the signal then lands in the middle of the write.
    while not list(work.glob("sim/*.part")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the write finished before the signal arrived")
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "error: terminated"
    assert not (work / "sim" / "panel.csv").exists()
    no_part_files(work)
