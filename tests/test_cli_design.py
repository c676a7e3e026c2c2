"""``liftlab design`` from the command line: files, summary, and bad input (exit 2, one line)."""

from __future__ import annotations

import json

import pytest

ARGS = ("--durations", "14", "--effect-sizes", "0,0.1,0.3", "--windows", "6", "--method", "matched")


@pytest.fixture(scope="module")
def panel_csv(small_world, tmp_path_factory):
    path = tmp_path_factory.mktemp("design") / "panel.csv"
    small_world[1].to_csv(path, index=False)
    return path


def test_design_writes_json_and_report(run_cli, panel_csv, tmp_path):
    out, rep = tmp_path / "design.json", tmp_path / "design.html"
    code, stdout, stderr = run_cli(
        "design",
        "--data",
        str(panel_csv),
        "--out",
        str(out),
        "--report",
        str(rep),
        "--treated",
        "2..3",
        "--include",
        "NA01",
        "--cost-per-incremental",
        "5",
        *ARGS,
    )
    assert code == 0, stderr
    d = json.loads(out.read_text())
    assert "NA01" in d["treated"] and d["duration_days"] == 14
    assert d["investment"] == pytest.approx(5 * d["mde_incremental"])
    html = rep.read_text()
    assert (
        "Candidate ranking" in html
        and "Pre-period fit" in html
        and "could not be drawn" not in html
    )
    # No --currency: amounts are plain numbers under headers that name the unit.
    assert (
        "investment (currency units)" in html and f"{d['investment']:,.0f} currency units" in html
    )
    assert "recommended: treat" in stdout
    assert stderr == ""  # no progress bar when stderr is not a terminal


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ("--treated", "2", "--include", "NA01", "--exclude", "NA01"),
            "NA01' is both included and excluded",
        ),
        (("--treated", "12..13"), "the panel has 12"),
        (("--treated-min", "13"), "the panel has 12"),
        (("--treated", "2", "--durations", "190"), "days of history"),
        (
            ("--treated", "2", "--cost-per-incremental", "5", "--budget", "1"),
            "below the cheapest design",
        ),
        (("--treated", "2", "--exclude", "ZZ01"), "ZZ01"),
        (("--treated", "2", "--treated-max", "3"), "not both"),
    ],
)
def test_bad_input_exits_2_with_one_line(run_cli, panel_csv, tmp_path, extra, message):
    out = tmp_path / "design.json"
    code, _, stderr = run_cli("design", "--data", str(panel_csv), "--out", str(out), *ARGS, *extra)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.exists()
