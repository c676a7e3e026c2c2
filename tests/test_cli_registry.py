"""``liftlab registry``: every subcommand, and each bad input as exit 2 with one ``error:`` line."""

from __future__ import annotations

import json

import pytest

from causal.world import Experiment, World
from experiments.registry import calibration_lifts

TEST = ("2024-06-01", "2024-06-28")


@pytest.fixture(scope="module")
def world_files(tmp_path_factory):
    """A 12-geo, 200-day world with a CTV go-dark in NA01 and EM01, as panel.csv and truth."""
    folder = tmp_path_factory.mktemp("registry_world")
    panel, truth = World(12, 200, seed=5).simulate(
        [Experiment("ctv", ("NA01", "EM01"), *TEST, 0.0)]
    )
    panel.to_csv(folder / "panel.csv", index=False)
    design = {
        "outcome": "signups",
        "estimator": "sc",
        "alpha": 0.1,
        "power_target": 0.8,
        "treated": ["NA01", "EM01"],
        "control": None,
        "duration_days": 28,
        "mde": 0.05,
    }
    (folder / "design.json").write_text(json.dumps(design))
    return folder, truth


@pytest.fixture
def db(tmp_path):
    yield str(tmp_path / "reg.db")


def one_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_lifecycle_through_the_command_line(run_cli, world_files, db, tmp_path):
    folder, truth = world_files
    panel = str(folder / "panel.csv")
    code, out, err = run_cli(
        "registry",
        "add",
        "ctv_june",
        "--db",
        db,
        "--design",
        str(folder / "design.json"),
        "--channel",
        "ctv",
        "--start",
        TEST[0],
        "--data",
        panel,
    )
    assert code == 0, err
    assert (
        "registered ctv_june (designed): 2024-06-01 to 2024-06-28" in out
    )  # end from duration_days
    code, out, err = run_cli("registry", "list", "--db", db)
    assert code == 0 and "ctv_june" in out and "designed" in out
    code, out, err = run_cli("registry", "start", "ctv_june", "--db", db)
    assert code == 0 and "ctv_june is running" in out, err
    code, out, err = run_cli(
        "registry",
        "readout",
        "ctv_june",
        "--db",
        db,
        "--data",
        panel,
        "--out",
        str(tmp_path / "readout.json"),
    )
    assert code == 0, err
    assert "[pre-registered]" in out and "ctv_june is read_out" in out
    written = json.loads((tmp_path / "readout.json").read_text())
    assert written["treated"] == ["NA01", "EM01"] and written["test_period"] == list(TEST)
    assert written["estimator"] == "sc" and written["confidence"] == pytest.approx(0.9)
    assert written["spend_delta"] < 0  # a go-dark test lowers spend
    # An exploratory re-read with another estimator is stored and shown as such.
    code, out, err = run_cli(
        "registry", "readout", "ctv_june", "--db", db, "--data", panel, "--estimator", "tbr"
    )
    assert code == 0, err
    assert "[EXPLORATORY]" in out and "deviation: estimator tbr instead of sc" in out
    code, out, err = run_cli(
        "registry", "show", "ctv_june", "--db", db, "--out", str(tmp_path / "exp.json")
    )
    assert code == 0, err
    assert "pre-registered" in out and "EXPLORATORY" in out and "history:" in out
    shown = json.loads((tmp_path / "exp.json").read_text())
    assert shown["status"] == "read_out" and [r["exploratory"] for r in shown["readouts"]] == [
        False,
        True,
    ]
    # The lift flows to calibration: the pre-registered readout only, as written.
    lifts = calibration_lifts(db)
    assert len(lifts) == 1
    assert lifts[0]["incremental"] == pytest.approx(written["incremental"])
    assert lifts[0]["incremental_ci"] == pytest.approx(written["incremental_ci"])
    assert (
        lifts[0]["spend_delta"] == pytest.approx(written["spend_delta"])
        and lifts[0]["channel"] == "ctv"
    )
    code, out, err = run_cli(
        "registry",
        "calendar",
        "--db",
        db,
        "--out",
        str(tmp_path / "cal.png"),
        "--report",
        str(tmp_path / "cal.html"),
    )
    assert code == 0, err
    assert (tmp_path / "cal.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "cal.html").read_text()
    assert "Experiment calendar" in html and "data:image/png;base64," in html and "ctv_june" in html
    assert "Figure could not be drawn" not in html


def test_conflict_is_refused_naming_the_other_test_and_allowed_explicitly(run_cli, db):
    code, _, err = run_cli(
        "registry",
        "add",
        "a",
        "--db",
        db,
        "--treated",
        "NA01,NA02",
        "--start",
        "2024-06-01",
        "--end",
        "2024-06-28",
    )
    assert code == 0, err
    code, out, err = run_cli(
        "registry",
        "add",
        "b",
        "--db",
        db,
        "--treated",
        "NA02",
        "--start",
        "2024-07-05",
        "--end",
        "2024-07-20",
    )
    one_error(code, err, "cannot register 'b'", "test 'a'", "NA02", "--allow-overlap")
    code, out, err = run_cli(
        "registry",
        "add",
        "b",
        "--db",
        db,
        "--treated",
        "NA02",
        "--start",
        "2024-07-05",
        "--end",
        "2024-07-20",
        "--allow-overlap",
        "--reason",
        "tiny",
    )
    assert code == 0 and "overlap with a allowed in NA02" in out, err
    code, out, err = run_cli("registry", "start", "a", "--db", db)
    one_error(code, err, "cannot start 'a'", "test 'b'")
    code, out, err = run_cli("registry", "start", "a", "--db", db, "--allow-overlap")
    assert code == 0, err
    code, out, err = run_cli("registry", "cancel", "b", "--db", db, "--reason", "moved")
    assert code == 0 and "b is cancelled" in out
    code, out, err = run_cli("registry", "list", "--db", db, "--status", "cancelled")
    assert code == 0 and "b " in out and "\na " not in out


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["show", "nope"], ["unknown experiment 'nope'"]),
        (["start", "nope"], ["unknown experiment 'nope'"]),
        (
            ["add", "x", "--treated", "NA01,NA01", "--start", "2024-06-01", "--end", "2024-06-02"],
            ["treated geo 'NA01' is given twice"],
        ),
        (
            ["add", "x", "--treated", "", "--start", "2024-06-01", "--end", "2024-06-02"],
            ["not a geo id"],
        ),
        (
            ["add", "x", "--cell", "A:NA01", "--start", "2024-06-01", "--end", "2024-06-02"],
            ["must read NAME=G1,G2"],
        ),
        (
            [
                "add",
                "x",
                "--cell",
                "A=NA01",
                "--cell",
                "B=NA01",
                "--start",
                "2024-06-01",
                "--end",
                "2024-06-02",
            ],
            ["given in cells A and B"],
        ),
        (
            [
                "add",
                "x",
                "--cell",
                "A=NA01",
                "--treated",
                "NA02",
                "--start",
                "2024-06-01",
                "--end",
                "2024-06-02",
            ],
            ["either --treated or --cell"],
        ),
        (
            [
                "add",
                "x",
                "--treated",
                "NA01",
                "--control",
                "NA01",
                "--start",
                "2024-06-01",
                "--end",
                "2024-06-02",
            ],
            ["both treated"],
        ),
        (
            ["add", "x", "--treated", "NA01", "--start", "2024-06-31", "--end", "2024-07-02"],
            ["start '2024-06-31' is not a date"],
        ),
        (["add", "x", "--treated", "NA01", "--start", "2024-06-01"], ["give an end date"]),
        (
            [
                "add",
                "x",
                "--treated",
                "NA01",
                "--start",
                "2024-06-01",
                "--end",
                "2024-06-02",
                "--estimator",
                "zz",
            ],
            ["estimator 'zz' is unknown"],
        ),
        (
            ["add", "x", "--design", "missing.json", "--start", "2024-06-01"],
            ["missing.json: design file not found"],
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(run_cli, db, args, fragments):
    run_cli(
        "registry",
        "add",
        "seed_test",
        "--db",
        db,
        "--treated",
        "AP01",
        "--start",
        "2020-01-01",
        "--end",
        "2020-01-02",
    )
    code, out, err = run_cli("registry", *args, "--db", db)
    one_error(code, err, *fragments)


def test_bad_transitions_exit_2(run_cli, db):
    run_cli(
        "registry",
        "add",
        "t",
        "--db",
        db,
        "--treated",
        "NA01",
        "--start",
        "2024-06-01",
        "--end",
        "2024-06-20",
    )
    code, _, err = run_cli("registry", "readout", "t", "--db", db, "--data", "whatever.csv")
    one_error(code, err, "cannot read out experiment 't': it is designed", "registry start t")
    run_cli("registry", "cancel", "t", "--db", db)
    code, _, err = run_cli("registry", "start", "t", "--db", db)
    one_error(code, err, "cannot start experiment 't': it is cancelled")
    code, _, err = run_cli("registry", "cancel", "t", "--db", db)
    one_error(code, err, "it is cancelled")


def test_geos_not_in_the_panel_and_multi_cell_out(run_cli, world_files, db, tmp_path):
    folder, _ = world_files
    panel = str(folder / "panel.csv")
    code, _, err = run_cli(
        "registry",
        "add",
        "x",
        "--db",
        db,
        "--treated",
        "NA01,ZZ99",
        "--start",
        TEST[0],
        "--end",
        TEST[1],
        "--data",
        panel,
    )
    one_error(code, err, "geo 'ZZ99' is not in the panel")
    code, _, err = run_cli(
        "registry",
        "add",
        "cells",
        "--db",
        db,
        "--cell",
        "lo=NA01",
        "--cell",
        "hi=EM01,EM02",
        "--start",
        TEST[0],
        "--end",
        TEST[1],
        "--channel",
        "ctv",
    )
    assert code == 0, err
    run_cli("registry", "start", "cells", "--db", db)
    code, _, err = run_cli(
        "registry",
        "readout",
        "cells",
        "--db",
        db,
        "--data",
        panel,
        "--out",
        str(tmp_path / "r.json"),
    )
    one_error(code, err, "has cells lo, hi: pass --cell")
    assert not (tmp_path / "r.json").exists()


def test_reading_commands_on_a_missing_database_exit_2(run_cli, tmp_path):
    missing = str(tmp_path / "none.db")
    for args in (["list"], ["calendar"], ["show", "x"]):
        code, _, err = run_cli("registry", *args, "--db", missing)
        one_error(code, err, "no registry database at")
    assert not (tmp_path / "none.db").exists()


def test_empty_calendar_exits_2_and_writes_nothing(run_cli, db, tmp_path):
    run_cli(
        "registry",
        "add",
        "t",
        "--db",
        db,
        "--treated",
        "NA01",
        "--start",
        "2024-06-01",
        "--end",
        "2024-06-20",
    )
    code, _, err = run_cli(
        "registry", "calendar", "--db", db, "--from", "2030-01-01", "--out", str(tmp_path / "c.png")
    )
    one_error(code, err, "calendar is empty")
    assert not (tmp_path / "c.png").exists()


def test_db_from_environment(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LIFTLAB_DB", str(tmp_path / "env.db"))
    code, _, err = run_cli(
        "registry", "add", "t", "--treated", "NA01", "--start", "2024-06-01", "--end", "2024-06-20"
    )
    assert code == 0, err
    assert (tmp_path / "env.db").exists()


def test_busy_geos_for_design_exclude(run_cli, db):
    run_cli(
        "registry",
        "add",
        "t",
        "--db",
        db,
        "--treated",
        "NA01,EM02",
        "--start",
        "2024-06-01",
        "--end",
        "2024-06-20",
    )
    code, out, err = run_cli(
        "registry", "busy", "--db", db, "--start", "2024-07-01", "--end", "2024-07-10", "--plain"
    )
    assert code == 0 and out.strip() == "EM02,NA01", err
    code, out, err = run_cli(
        "registry", "busy", "--db", db, "--start", "2024-07-10", "--end", "2024-07-20"
    )
    assert code == 0 and "0 busy geos" in out and out.strip().endswith("none")
    code, _, err = run_cli(
        "registry", "busy", "--db", db, "--start", "2024-07-10", "--end", "2024-07-01"
    )
    one_error(code, err, "end 2024-07-01 is before start 2024-07-10")


def test_calibrate_from_the_registry(run_cli, world_files, db, tmp_path):
    pytest.importorskip("allocation.calibration")
    folder, _ = world_files
    panel = str(folder / "panel.csv")
    for args in (
        [
            "add",
            "ctv_june",
            "--treated",
            "NA01,EM01",
            "--channel",
            "ctv",
            "--start",
            TEST[0],
            "--end",
            TEST[1],
        ],
        ["start", "ctv_june"],
        ["readout", "ctv_june", "--data", panel],
        ["readout", "ctv_june", "--data", panel, "--confidence", "0.8"],
    ):  # exploratory: not a lift
        code, _, err = run_cli("registry", *args, "--db", db)
        assert code == 0, err
    code, out, err = run_cli(
        "calibrate",
        "--data",
        panel,
        "--registry",
        db,
        "--out",
        str(tmp_path / "curves.json"),
        "--holdout",
        "0",
    )
    assert code == 0, err
    assert "on 1 lifts" in out and "lift ctv 2024-06-01..2024-06-28" in out
    assert json.loads((tmp_path / "curves.json").read_text())["channels"]
