"""``liftlab calibrate``: happy paths, the registry hook, and every bad-input case (exit 2, one line)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from causal.world import Experiment, World


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("calibrate")
    world = World(8, 160, seed=5)
    exp = Experiment("ctv", tuple(world.geos[::2]), "2024-04-01", "2024-04-28", 0.0)
    panel, truth = world.simulate([exp])
    panel.to_csv(d / "panel.csv", index=False)
    t = truth["experiments"][0]
    inc = t["true_incremental"]
    lift = {"channel": "ctv", "treated": t["geos"], "control": [], "test_period": [t["start"], t["end"]],
            "pre_period": ["2024-01-01", "2024-03-31"], "incremental": inc,
            "incremental_ci": [inc * 1.3, inc * 0.7], "confidence": 0.9, "spend_delta": t["spend_delta"]}
    (d / "lift.json").write_text(json.dumps(lift))
    return d, lift


def _write(d, name, obj):
    path = d / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _bad(run_cli, d, *args):
    out = d / "bad_curves.json"
    code, stdout, stderr = run_cli("calibrate", "--data", str(d / "panel.csv"), "--out", str(out), "--holdout", "0", *args)
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert code == 2, (stdout, stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert not out.exists()
    return lines[0]


def test_calibrate_writes_curves(run_cli, files):
    d, _ = files
    out = d / "curves.json"
    code, stdout, stderr = run_cli("calibrate", "--data", str(d / "panel.csv"), "--lift", str(d / "lift.json"),
                                   "--out", str(out), "--holdout", "40", "--forms", "hill,exp")
    assert code == 0, stderr
    curves = json.loads(out.read_text())
    assert curves["outcome"] == "signups" and curves["period"] == "day"
    names = {c["name"] for c in curves["channels"]}
    assert names == {"brand_search", "nonbrand_search", "social", "programmatic", "ctv"}
    line = next(c for c in curves["channels"] if c["name"] == "ctv")
    assert line["calibrated"] is True and line["response"]["form"] in ("hill", "exp")
    assert curves["backtest"]["n_periods"] == 40 and curves["backtest"]["wape_total"] >= 0
    assert curves["fit"]["controls"] == ["launch", "competitor_price"]
    assert "brand_queries" in curves["fit"]["covariates_not_adjusted"]
    assert "backtest" in stdout and "ctv" in stdout


def test_report_and_user_graph(run_cli, files):
    d, _ = files
    # A user graph where branded queries are not a mediator of any channel: a joint control.
    dot = _write(d, "g.dot", 'digraph { organic_demand -> {brand_queries signups}; brand_queries -> spend_brand_search;\n'
                            '"launch" -> signups; competitor_price -> signups; brand_queries -> signups;\n'
                            'brand_search -> signups; nonbrand_search -> signups; social -> signups;\n'
                            'programmatic -> signups; ctv -> signups }')
    out, rep = d / "c2.json", d / "c2.html"
    code, stdout, stderr = run_cli("calibrate", "--data", str(d / "panel.csv"), "--lift", str(d / "lift.json"),
                                   "--out", str(out), "--report", str(rep), "--graph", dot, "--holdout", "0",
                                   "--forms", "exp")
    assert code == 0, stderr
    assert "brand_queries" in json.loads(out.read_text())["fit"]["controls"]
    html = rep.read_text()
    for text in ("Credit per channel", "Response curves with the experiments", "The causal graph", "Refutations",
                 "placebo treatment", "graph-adjusted"):
        assert text in html
    assert "Figure could not be drawn" not in html


def test_registry_lifts(run_cli, files, monkeypatch):
    d, lift = files
    fake = types.ModuleType("experiments.registry")
    fake.calibration_lifts = lambda url: [lift]
    monkeypatch.setitem(sys.modules, "experiments.registry", fake)
    out = d / "c3.json"
    code, stdout, stderr = run_cli("calibrate", "--data", str(d / "panel.csv"), "--registry", "sqlite:///x.db",
                                   "--out", str(out), "--holdout", "0", "--forms", "exp")
    assert code == 0, stderr
    assert json.loads(out.read_text())["lifts"][0]["source"] == "sqlite:///x.db#1"
    monkeypatch.setitem(sys.modules, "experiments.registry", types.ModuleType("experiments.registry"))
    assert "calibration_lifts" in _bad(run_cli, d, "--registry", "sqlite:///x.db")
    monkeypatch.setitem(sys.modules, "experiments.registry", None)
    assert "--registry" in _bad(run_cli, d, "--registry", "sqlite:///x.db")


def test_bad_lift_channel_without_spend(run_cli, files):
    d, lift = files
    msg = _bad(run_cli, d, "--lift", _write(d, "radio.json", {**lift, "channel": "radio"}))
    assert "spend_radio" in msg and "radio.json" in msg


def test_bad_lift_window_outside_panel(run_cli, files):
    d, lift = files
    msg = _bad(run_cli, d, "--lift", _write(d, "late.json", {**lift, "test_period": ["2030-01-01", "2030-02-01"]}))
    assert "2030-01-01" in msg and "outside" in msg


@pytest.mark.parametrize("delta", [0.0, None])
def test_bad_lift_zero_or_missing_spend_change(run_cli, files, delta):
    d, lift = files
    msg = _bad(run_cli, d, "--lift", _write(d, "zero.json", {**lift, "spend_delta": delta}))
    assert "spend_delta" in msg and "zero.json" in msg


def test_bad_lift_file_unreadable(run_cli, files):
    d, _ = files
    assert "not valid JSON" in _bad(run_cli, d, "--lift", _write(d, "broken.json", "{not json"))
    assert "cannot read lift file" in _bad(run_cli, d, "--lift", str(d / "absent.json"))
    assert "treated geo 'XX99'" in _bad(run_cli, d, "--lift", _write(d, "geo.json", {**json.loads((d / "lift.json").read_text()), "treated": ["XX99"]}))


def test_bad_graph_and_forms(run_cli, files):
    d, _ = files
    assert "cycle" in _bad(run_cli, d, "--graph", _write(d, "cyc.dot", "digraph { a -> b; b -> a; a -> signups }"))
    assert "--forms" in _bad(run_cli, d, "--forms", "cubic")
