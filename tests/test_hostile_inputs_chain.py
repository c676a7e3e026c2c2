"""Hostile inputs on a real chain (simulate -> readout -> calibrate -> propose-tests), session 8's sweep.

Each case was accepted, crashed or leaked before: exit 2 and one ``error:`` line naming the option,
key or geo now (``assert_refused`` of ``test_hostile_inputs``).
"""

from __future__ import annotations

import json
import shutil

import pytest
from test_hostile_inputs import SECRET, assert_refused

TREATED = "NA02,EM03,LA02"
WINDOW = ("2024-06-01", "2024-06-28")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A 12-market world with a CTV go-dark, its readout and calibrated curves."""
    from click.testing import CliRunner

    from allocation.cli.main import cli

    d = tmp_path_factory.mktemp("chain")
    experiment = f"ctv:go_dark:{TREATED}:{WINDOW[0]}:{WINDOW[1]}"
    runner = CliRunner()
    for args in (
        ["simulate", "--out", str(d / "w"), "--geos", "12", "--days", "200", "--seed", "3"]
        + ["--experiment", experiment],
        ["readout", "--data", str(d / "w" / "panel.csv"), "--treated", TREATED, "--start"]
        + [WINDOW[0], "--end", WINDOW[1], "--channel", "ctv", "--out", str(d / "readout.json")],
        ["calibrate", "--data", str(d / "w" / "panel.csv"), "--clusters"]
        + [str(d / "w" / "clusters.csv"), "--out", str(d / "curves.json")],
    ):
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, res.output
    return d


def _propose(chain, *extra: str) -> list[str]:
    return [
        "propose-tests",
        "--curves",
        str(chain / "curves.json"),
        "--data",
        str(chain / "w" / "panel.csv"),
        "--out",
        str(chain / "p.json"),
        "--durations",
        "14",
        *extra,
    ]


@pytest.mark.parametrize("start", ["2024-02-30", "notadate"])
def test_propose_tests_names_a_bad_start(chain, run_cli, start):
    reg = str(chain / "reg.db")
    assert_refused(run_cli(*_propose(chain, "--registry", reg, "--start", start)), "--start", start)


@pytest.mark.parametrize(
    "extra, named",
    [
        (("--channels", ""), "--channels"),
        (("--intensities", ""), "--intensities"),
        (("--register", ""), "--register"),
        (("--start", "2024-08-01"), "--registry"),
        (("--seed", "-1"), "--seed"),
    ],
)
def test_propose_tests_options_that_would_be_ignored(chain, run_cli, extra, named):
    assert_refused(run_cli(*_propose(chain, *extra)), named)


@pytest.mark.parametrize("args", [["simulate", "--out", "w", "--seed", "-1"]])
def test_a_negative_seed_is_an_option_error(run_cli, args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_refused(run_cli(*args), "--seed")


def test_curves_of_another_outcome_or_period_are_refused(chain, run_cli, tmp_path):
    curves = json.loads((chain / "curves.json").read_text())
    weekly = tmp_path / "weekly.json"
    weekly.write_text(json.dumps({**curves, "period": "week"}))
    cmd = _propose(chain)
    cmd[2] = str(weekly)
    assert_refused(run_cli(*cmd), "weekly.json", "'period'", "week")
    assert_refused(run_cli(*_propose(chain, "--y", "brand_queries")), "'outcome'", "brand_queries")


def _calibrate(chain, *extra: str) -> list[str]:
    return [
        "calibrate",
        "--data",
        str(chain / "w" / "panel.csv"),
        "--out",
        str(chain / "c2.json"),
        "--model",
        "regression",
        *extra,
    ]


def test_the_same_lift_twice_is_refused(chain, run_cli, tmp_path):
    copy = tmp_path / "copy.json"
    shutil.copy(chain / "readout.json", copy)
    readout = str(chain / "readout.json")
    assert_refused(
        run_cli(*_calibrate(chain, "--lift", readout, "--lift", readout)), "already given"
    )
    line = assert_refused(run_cli(*_calibrate(chain, "--lift", readout, "--lift", str(copy))))
    assert "copy.json" in line and "readout.json" in line


def test_a_lift_of_another_outcome_is_refused(chain, run_cli, tmp_path):
    lift = json.loads((chain / "readout.json").read_text())
    assert lift["outcome"] == "signups"
    other = tmp_path / "revenue.json"
    other.write_text(json.dumps({**lift, "outcome": "revenue"}))
    assert_refused(run_cli(*_calibrate(chain, "--lift", str(other))), "revenue.json", "'outcome'")


def test_a_geo_listed_twice_in_the_cluster_file_is_refused(chain, run_cli, tmp_path):
    mapping = tmp_path / "clusters.csv"
    text = (chain / "w" / "clusters.csv").read_text()
    first = text.splitlines()[1].split(",")[0]
    mapping.write_text(text.rstrip("\n") + f"\n{first},ELSEWHERE\n")
    line = assert_refused(run_cli(*_calibrate(chain, "--clusters", str(mapping))), "clusters.csv")
    assert f"'{first}'" in line


def test_a_registered_channel_needs_spend_in_the_given_panel(chain, run_cli, tmp_path):
    args = ["registry", "add", "--db", str(tmp_path / "r.db"), "--channel", "tv", "--treated"]
    args += ["NA01", "--start", "2024-03-10", "--end", "2024-03-20"]
    args += ["--data", str(chain / "w" / "panel.csv"), "t1"]
    assert_refused(run_cli(*args), "spend_tv")


def test_a_raw_at_in_a_password_is_refused_and_masked(run_cli):
    url = f"postgresql://alice:{SECRET}@ss@127.0.0.1:1/liftlab"
    line = assert_refused(run_cli("registry", "list", "--db", url), "%40")
    assert "ss@" not in line


def test_the_registered_message_masks_the_password(chain, run_cli, pg_server):
    plain = pg_server.create_database("propose_register")
    url = plain.replace(f"://{pg_server.user}@", f"://{pg_server.user}:{SECRET}@", 1)
    assert SECRET in url
    code, out, err = run_cli(
        *_propose(chain, "--registry", url, "--start", "2024-08-01", "--register", "next")
    )
    assert code == 0, err
    assert "registered 'next'" in out
    assert SECRET not in out + err
