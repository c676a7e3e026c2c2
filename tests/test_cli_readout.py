"""``liftlab readout``: outputs, multi-cell, channel, and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest
from conftest import reference_file

from causal.world import Experiment, World

GEOLIFT = ["--y", "Y", "--geo-col", "location", "--start", "2021-04-01", "--end", "2021-04-15"]


@pytest.fixture(scope="module")
def geolift_csv():
    return str(reference_file("geolift", "GeoLift_Test.csv"))


@pytest.fixture(scope="module")
def world_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "panel.csv"
    frame, _ = World(12, 200, seed=7).simulate(
        [Experiment("social", ("NA01", "EM01"), "2024-06-01", "2024-06-21", 0.0)]
    )
    frame.to_csv(path, index=False)
    return str(path)


def test_readout_writes_json_and_report(run_cli, geolift_csv, tmp_path):
    out, html = tmp_path / "readout.json", tmp_path / "readout.html"
    code, stdout, stderr = run_cli(
        "readout",
        "--data",
        geolift_csv,
        *GEOLIFT,
        "--treated",
        "chicago,portland",
        "--out",
        str(out),
        "--report",
        str(html),
        "--inference",
        "geolift",
    )
    assert code == 0, stderr
    d = json.loads(out.read_text())
    assert d["incremental"] == pytest.approx(4667, rel=0.01) and 0.005 <= d["p_value"] <= 0.03
    assert d["estimator"] == "sc" and d["treated"] == ["chicago", "portland"]
    assert "incremental 4,667" in stdout and "total Y 90,717" in stdout
    text = html.read_text()
    assert (
        "Total vs incremental" in text
        and "data:image/png;base64" in text
        and "Figure could not" not in text
    )
    assert "scaled L2 imbalance" in text and "cincinnati" in text


def test_readout_channel_and_pre_start(run_cli, world_csv, tmp_path):
    out, html = tmp_path / "r.json", tmp_path / "r.html"
    code, stdout, stderr = run_cli(
        "readout",
        "--data",
        world_csv,
        "--treated",
        "NA01,EM01",
        "--start",
        "2024-06-01",
        "--end",
        "2024-06-21",
        "--pre-start",
        "2024-02-01",
        "--channel",
        "social",
        "--estimator",
        "asc",
        "--out",
        str(out),
        "--report",
        str(html),
    )
    assert code == 0, stderr
    d = json.loads(out.read_text())
    assert d["pre_period"] == ["2024-02-01", "2024-05-31"] and d["channel"] == "social"
    assert d["spend_delta"] < 0 and d["cost_per_incremental"] == pytest.approx(
        d["spend_delta"] / d["incremental"]
    )
    assert "cost per incremental" in stdout and "Cost of the test (social)" in html.read_text()


def test_readout_cells(run_cli, tmp_path):
    out, html = tmp_path / "mc.json", tmp_path / "mc.html"
    data = str(reference_file("geolift", "GeoLift_Test_MultiCell.csv"))
    code, stdout, stderr = run_cli(
        "readout",
        "--data",
        data,
        *GEOLIFT,
        "--cell",
        "c1=chicago,cincinnati",
        "--cell",
        "c2=honolulu,indianapolis",
        "--estimator",
        "asc",
        "--out",
        str(out),
        "--report",
        str(html),
        "--no-placebos",
    )
    assert code == 0, stderr
    d = json.loads(out.read_text())
    assert d["cells"]["c1"]["lift"] == pytest.approx(0.228, rel=0.02)
    assert d["cells"]["c2"]["lift"] == pytest.approx(0.071, rel=0.02)
    assert "[c1]" in stdout and "[c2]" in stdout and html.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--treated", "gotham"], "treated geo 'gotham' is not in the panel"),
        (["--treated", "chicago", "--control", "chicago,miami"], "both as treated and as control"),
        (["--treated", "chicago", "--end", "2021-05-30"], "outside the data"),
        (["--treated", "chicago", "--pre-start", "2021-03-30"], "needs at least"),
        (["--treated", "chicago", "--channel", "tv"], "no spend column 'spend_tv'"),
        (["--cells", "a=chicago;b=chicago,miami"], "in two cells"),
        (["--cell", "a=chicago", "--cell", "b=chicago,miami"], "in two cells"),
        (["--cell", "a=chicago", "--cell", "a=miami"], "--cell a is given twice"),
        (["--cell", "chicago"], "must read NAME=G1,G2"),
        (["--cell", "a=chicago", "--cells", "b=miami"], "not both --cell and --cells"),
        ([], "exactly one of --treated, --cell (repeated) or --pairs"),
        (["--treated", "chicago", "--estimator", "magic"], "magic"),
    ],
)
def test_bad_input_exits_2_with_one_line(run_cli, geolift_csv, tmp_path, args, message):
    out = tmp_path / "readout.json"
    code, stdout, stderr = run_cli(
        "readout", "--data", geolift_csv, *GEOLIFT, *args, "--out", str(out)
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], stderr
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("value, message", [(0, "all zero"), (7, "constant 'Y'")])
def test_constant_treated_series(run_cli, geolift_csv, tmp_path, value, message):
    import pandas as pd

    frame = pd.read_csv(geolift_csv)
    frame.loc[frame["location"] == "chicago", "Y"] = value
    path = tmp_path / "flat.csv"
    frame.to_csv(path, index=False)
    code, _, stderr = run_cli(
        "readout",
        "--data",
        str(path),
        *GEOLIFT,
        "--treated",
        "chicago",
        "--out",
        str(tmp_path / "r.json"),
    )
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
