"""``liftlab calibrate``: happy paths, the registry hook, and every bad-input case (exit 2, one line)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from causal.world import CLUSTERS, Experiment, World


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("calibrate")
    world = World(8, 160, seed=5)
    exp = Experiment("ctv", tuple(world.geos[::2]), "2024-04-01", "2024-04-28", 0.0)
    panel, truth = world.simulate([exp])
    panel.to_csv(d / "panel.csv", index=False)
    t = truth["experiments"][0]
    inc = t["true_incremental"]
    lift = {
        "channel": "ctv",
        "treated": t["geos"],
        "control": [],
        "test_period": [t["start"], t["end"]],
        "pre_period": ["2024-01-01", "2024-03-31"],
        "incremental": inc,
        "incremental_ci": [inc * 1.3, inc * 0.7],
        "confidence": 0.9,
        "spend_delta": t["spend_delta"],
    }
    (d / "lift.json").write_text(json.dumps(lift))
    (d / "geos.json").write_text(json.dumps(world.geos))
    (d / "clusters.csv").write_text(
        "geo,cluster\n"
        + "".join(f"{g},{CLUSTERS[c]}\n" for g, c in zip(world.geos, world.cluster_of))
    )
    panel.assign(launch=0.5).to_csv(d / "flat.csv", index=False)
    return d, lift


def _write(d, name, obj):
    path = d / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _bad(run_cli, d, *args):
    out = d / "bad_curves.json"
    args = ("--data", str(d / "panel.csv"), *args) if "--data" not in args else args
    code, stdout, stderr = run_cli("calibrate", "--out", str(out), "--draws", "20", *args)
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert code == 2, (stdout, stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert not out.exists()
    return lines[0]


def test_calibrate_writes_curves(run_cli, files):
    d, _ = files
    out = d / "curves.json"
    code, stdout, stderr = run_cli(
        "calibrate",
        "--data",
        str(d / "panel.csv"),
        "--lift",
        str(d / "lift.json"),
        "--out",
        str(out),
        "--clusters",
        str(d / "clusters.csv"),
        "--draws",
        "50",
    )
    assert code == 0, stderr
    curves = json.loads(out.read_text())
    assert (
        curves["outcome"] == "signups"
        and curves["period"] == "day"
        and curves["model"] == "structural"
    )
    names = {c["name"] for c in curves["channels"]}
    assert names == {"brand_search", "nonbrand_search", "social", "programmatic", "ctv"}
    assert {c["market"] for c in curves["channels"]} == set(
        json.loads((d / "geos.json").read_text())
    )
    line = next(c for c in curves["channels"] if c["name"] == "ctv")
    assert line["calibrated"] is True and line["response"]["form"] == "hill"
    assert set(line["effect"]) == {"direct", "mediated", "total"} and line["effect"]["mediated"] > 0
    assert len(line["response_draws"]["beta"]) == 50 and curves["draws"] == {"n": 50, "seed": 0}
    assert {a["market"] for a in curves["aggregates"]} == {"NA", "LATAM", "EMEA", "APAC"}
    assert curves["identification"]["ctv"]["lift_checked"] is True
    assert (
        curves["fit"]["controls"] == ["launch", "competitor_price"]
        and curves["fit"]["mediator"] == "brand_queries"
    )
    assert "brand_queries" in curves["fit"]["covariates_not_adjusted"]
    assert "ctv" in stdout and "mediated" in stdout


def test_regression_model_still_available(run_cli, files):
    d, _ = files
    out = d / "reg.json"
    code, stdout, stderr = run_cli(
        "calibrate",
        "--data",
        str(d / "panel.csv"),
        "--lift",
        str(d / "lift.json"),
        "--out",
        str(out),
        "--model",
        "regression",
        "--holdout",
        "40",
        "--forms",
        "hill,exp",
    )
    assert code == 0, stderr
    curves = json.loads(out.read_text())
    assert curves["model"] == "regression" and curves["backtest"]["n_periods"] == 40
    assert "backtest" in stdout


def test_report_and_user_graph(run_cli, files):
    d, _ = files
    # A user graph where branded queries are not a mediator of any channel: they are the demand proxy only.
    dot = _write(
        d,
        "g.dot",
        "digraph { organic_demand -> {brand_queries signups}; brand_queries -> spend_brand_search;\n"
        '"launch" -> signups; competitor_price -> signups; brand_queries -> signups;\n'
        "brand_search -> signups; nonbrand_search -> signups; social -> signups;\n"
        "programmatic -> signups; ctv -> signups }",
    )
    out, rep = d / "c2.json", d / "c2.html"
    code, stdout, stderr = run_cli(
        "calibrate",
        "--data",
        str(d / "panel.csv"),
        "--lift",
        str(d / "lift.json"),
        "--out",
        str(out),
        "--report",
        str(rep),
        "--graph",
        dot,
        "--draws",
        "30",
    )
    assert code == 0, stderr
    fit = json.loads(out.read_text())["fit"]
    assert fit["mediator"] == "brand_queries" and fit["mediated_channels"] == []
    html = rep.read_text()
    for text in (
        "Credit per channel",
        "Identification",
        "Lifts",
        "Curves per cluster",
        "The causal graph",
    ):
        assert text in html
    assert "Figure could not be drawn" not in html


def test_without_mediator_warns(run_cli, files):
    d, _ = files
    import pandas as pd

    pd.read_csv(d / "panel.csv").drop(columns="brand_queries").to_csv(d / "bare.csv", index=False)
    out = d / "bare.json"
    code, stdout, stderr = run_cli(
        "calibrate", "--data", str(d / "bare.csv"), "--out", str(out), "--draws", "30"
    )
    assert code == 0, stderr
    assert "warning: mediator column 'brand_queries' is not in the panel" in stderr
    curves = json.loads(out.read_text())
    assert any("could not be made" in n for n in curves["notes"])
    assert curves["identification"]["brand_search"]["demand_adjusted"] is False


def test_a_lift_its_spend_change_rules_out_warns(run_cli, files):
    # A cut whose interval lies wholly above zero is used as read, with a warning naming the file.
    d, lift = files
    up = abs(lift["incremental"])
    path = _write(d, "up.json", {**lift, "incremental": up, "incremental_ci": [0.5 * up, 1.5 * up]})
    out = d / "up_curves.json"
    argv = ["--data", str(d / "panel.csv"), "--lift", path, "--out", str(out), "--draws", "20"]
    code, _, stderr = run_cli("calibrate", *argv)
    assert code == 0, stderr
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("warning:")]
    assert f"{path}: ctv's spend fell by" in line and "wholly above zero" in line
    assert len(json.loads(out.read_text())["lifts"]) == 1


def test_sign_contradiction():
    from allocation.calibration_lifts import Lift, sign_contradiction

    def lift(delta, ci):
        return Lift("ctv", ("g1",), "2024-01-01", "2024-01-21", sum(ci) / 2, ci, 0.9, delta)

    assert sign_contradiction(lift(-100.0, (-9.0, -1.0))) is None
    assert sign_contradiction(lift(-100.0, (-9.0, 1.0))) is None
    assert "fell by 100" in sign_contradiction(lift(-100.0, (1.0, 9.0)))
    assert "rose by 50" in sign_contradiction(lift(50.0, (-9.0, -1.0)))
    assert sign_contradiction(lift(50.0, (1.0, 9.0))) is None


def test_registry_lifts(run_cli, files, monkeypatch):
    d, lift = files
    fake = types.ModuleType("experiments.registry")
    fake.calibration_lifts = lambda url: [lift]
    monkeypatch.setitem(sys.modules, "experiments.registry", fake)
    out = d / "c3.json"
    code, stdout, stderr = run_cli(
        "calibrate",
        "--data",
        str(d / "panel.csv"),
        "--registry",
        "postgresql://liftlab:s3cret@db.example:5432/lifts",
        "--out",
        str(out),
        "--draws",
        "20",
    )
    assert code == 0, stderr
    text = out.read_text()
    assert (
        json.loads(text)["lifts"][0]["source"] == "postgresql://liftlab:***@db.example:5432/lifts#1"
    )
    assert "s3cret" not in text and "s3cret" not in stdout + stderr
    monkeypatch.setitem(
        sys.modules, "experiments.registry", types.ModuleType("experiments.registry")
    )
    assert "calibration_lifts" in _bad(run_cli, d, "--registry", "sqlite:///x.db")
    monkeypatch.setitem(sys.modules, "experiments.registry", None)
    assert "--registry" in _bad(run_cli, d, "--registry", "sqlite:///x.db")


@pytest.mark.parametrize(
    "value, words",
    [
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ('"12"', "must be a number"),
        ("99999999", "outside its own interval"),
    ],
)
def test_bad_lift_values(run_cli, files, value, words):
    d, lift = files
    text = json.dumps({**lift, "incremental": 0}).replace(
        '"incremental": 0', f'"incremental": {value}'
    )
    msg = _bad(run_cli, d, "--lift", _write(d, "v.json", text))
    assert words in msg and "v.json" in msg


def test_bad_clusters_mediator_and_graph(run_cli, files):
    d, _ = files
    geos = json.loads((d / "geos.json").read_text())
    short = _write(d, "short.csv", "geo,cluster\n" + "".join(f"{g},X\n" for g in geos[1:]))
    msg = _bad(run_cli, d, "--clusters", short)
    assert f"geo '{geos[0]}'" in msg and "short.csv" in msg
    assert "no cluster column 'region'" in _bad(run_cli, d, "--cluster-col", "region")
    assert "no mediator column 'queries'" in _bad(run_cli, d, "--mediator", "queries")
    assert "'launch' is constant" in _bad(
        run_cli, d, "--mediator", "launch", "--data", str(d / "flat.csv")
    )
    dot = _write(
        d,
        "u.dot",
        "digraph { organic_demand -> {spend_social signups}; social -> signups; ctv -> signups;"
        " brand_search -> signups; nonbrand_search -> signups; programmatic -> signups }",
    )
    msg = _bad(run_cli, d, "--graph", dot)
    assert "channel 'social' is not identifiable" in msg and "organic_demand" in msg


def test_bad_lift_channel_without_spend(run_cli, files):
    d, lift = files
    msg = _bad(run_cli, d, "--lift", _write(d, "radio.json", {**lift, "channel": "radio"}))
    assert "spend_radio" in msg and "radio.json" in msg


def test_bad_lift_window_outside_panel(run_cli, files):
    d, lift = files
    msg = _bad(
        run_cli,
        d,
        "--lift",
        _write(d, "late.json", {**lift, "test_period": ["2030-01-01", "2030-02-01"]}),
    )
    assert "2030-01-01" in msg and "outside" in msg


@pytest.mark.parametrize("delta", [0.0, None])
def test_bad_lift_zero_or_missing_spend_change(run_cli, files, delta):
    d, lift = files
    msg = _bad(run_cli, d, "--lift", _write(d, "zero.json", {**lift, "spend_delta": delta}))
    assert "spend_delta" in msg and "zero.json" in msg


def test_bad_lift_file_unreadable(run_cli, files):
    d, _ = files
    assert "not valid JSON" in _bad(run_cli, d, "--lift", _write(d, "broken.json", "{not json"))
    assert "lift file not found" in _bad(run_cli, d, "--lift", str(d / "absent.json"))
    assert "treated geo 'XX99'" in _bad(
        run_cli,
        d,
        "--lift",
        _write(d, "geo.json", {**json.loads((d / "lift.json").read_text()), "treated": ["XX99"]}),
    )


def test_bad_graph_and_forms(run_cli, files):
    d, _ = files
    assert "cycle" in _bad(
        run_cli, d, "--graph", _write(d, "cyc.dot", "digraph { a -> b; b -> a; a -> signups }")
    )
    assert "--forms" in _bad(run_cli, d, "--forms", "cubic")
