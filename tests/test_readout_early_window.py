"""A readout's first week given its total: its law, its calibration on a simulated world, and its use."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from allocation.calibration_lifts import Lift
from allocation.structural import StructuralModel
from causal.errors import DataError
from causal.panel import load_panel
from causal.world import Experiment, World
from experiments.readout import read_out
from experiments.readout_windows import early_window


def _series(pre: np.ndarray, test: np.ndarray) -> pd.DataFrame:
    dates = pd.date_range("2024-01-01", periods=len(pre) + len(test), freq="D")
    return pd.DataFrame(
        {
            "period": ["pre"] * len(pre) + ["test"] * len(test),
            "incremental": np.concatenate([pre, test]),
        },
        index=dates,
    )


def test_independent_periods_give_the_textbook_conditional_law():
    # Independent residuals: the first r of n periods given the total has slope r/n and variance
    # r (1 - r/n) sigma^2, i.e. a share (r/n)(1 - r/n) of the total's variance.
    rng = np.random.default_rng(0)
    pre, test = rng.normal(size=20000), np.full(28, -2.0)
    total = float(test.sum())
    sd_total = np.sqrt(28.0)
    ci = (total - 1.645 * sd_total, total + 1.645 * sd_total)
    e = early_window(_series(pre, test), total, ci, 0.9, "day")
    assert e["periods"] == 7 and e["incremental"] == pytest.approx(-14.0)
    assert e["slope_on_total"] == pytest.approx(0.25, abs=0.02)
    assert e["sd_given_total"] == pytest.approx(np.sqrt(7 * 0.75), rel=0.05)
    assert e["start"] == str(_series(pre, test).index[20000].date())


def _ar1(rng, n, rho=0.9):
    u = np.zeros(n)
    u[0] = rng.normal() / np.sqrt(1 - rho**2)
    for t in range(1, n):
        u[t] = rho * u[t - 1] + rng.normal()
    return u


def test_persistent_residuals_give_the_law_a_direct_simulation_gives():
    # AR(1) residuals (rho 0.9), as real geo data: the first week's law given the total, estimated
    # from one long pre-period, against 4,000 independent test windows of the same process.
    rng = np.random.default_rng(1)
    windows = np.array([_ar1(rng, 28) for _ in range(4000)])
    E, T = windows[:, :7].sum(axis=1), windows.sum(axis=1)
    cov = np.cov(E, T)
    slope = cov[0, 1] / cov[1, 1]
    sd_cond = np.sqrt(cov[0, 0] - slope * cov[0, 1])
    sd_total = np.sqrt(cov[1, 1])
    e = early_window(
        _series(_ar1(rng, 20000), np.zeros(28)),
        0.0,
        (-1.645 * sd_total, 1.645 * sd_total),
        0.9,
        "day",
    )
    assert e["slope_on_total"] == pytest.approx(slope, abs=0.03)
    assert e["sd_given_total"] == pytest.approx(sd_cond, rel=0.1)
    # Not the independent-periods law: the first week is an edge of a persistent series.
    assert abs(e["slope_on_total"] - 0.25) > 0.02


def test_no_early_window_when_the_test_or_history_is_too_short_or_the_sums_disagree():
    rng = np.random.default_rng(2)
    pre = rng.normal(size=400)
    assert early_window(_series(pre, np.ones(14)), 14.0, (0.0, 28.0), 0.9, "day") is None
    assert early_window(_series(pre[:40], np.ones(28)), 28.0, (0.0, 56.0), 0.9, "day") is None
    assert early_window(_series(pre, np.ones(28)), 99.0, (0.0, 199.0), 0.9, "day") is None
    assert early_window(_series(pre, np.ones(6)), 6.0, (0.0, 12.0), 0.9, "month") is None


def _readout_dict():
    return {
        "channel": "ctv",
        "treated": ["NA01"],
        "test_period": ["2025-02-03", "2025-03-16"],
        "incremental": -100.0,
        "incremental_ci": [-150.0, -50.0],
        "spend_delta": -1000.0,
        "confidence": 0.9,
        "early": {
            "start": "2025-02-03",
            "end": "2025-02-09",
            "incremental": -10.0,
            "slope_on_total": 0.2,
            "sd_given_total": 8.0,
        },
    }


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"sd_given_total": 0.0}, "early.sd_given_total"),
        ({"incremental": float("nan")}, "early.incremental"),
        ({"slope_on_total": "x"}, "early.slope_on_total"),
        ({"start": None}, "'start'"),
        ({"start": "2025-01-01"}, "is not the start of its test_period"),
    ],
)
def test_a_malformed_early_block_is_refused_naming_its_key(change, named):
    d = _readout_dict()
    d["early"] = {**d["early"], **change}
    with pytest.raises(DataError, match=named.replace(".", r"\.").replace("'", "'")):
        Lift.from_dict(d, "r.json")


def test_readout_writes_a_calibrated_early_window_that_the_structural_model_uses(tmp_path, run_cli):
    w = World(24, 420, seed=3)
    geos = list(w.geos[2::4])
    control = [g for g in w.geos if g not in geos]
    start, end = w.dates[300].date().isoformat(), w.dates[341].date().isoformat()
    e = Experiment("ctv", tuple(geos), start, end, 0.0)
    observed, truth = w.simulate([e])
    r = read_out(load_panel(observed), geos, (start, end), control=control, channel="ctv", seed=0)
    d = r.to_dict()
    early = d["early"]
    assert early["start"] == start and early["periods"] == 7
    # The world's true daily incremental of the test: the early term's standardised error is small.
    base, run = w.run(), w.run({"ctv": w._multipliers([e])["ctv"]})
    rows, cols = w._window(e), w._geo_positions(geos)
    true = (run.signups[np.ix_(rows, cols)] - base.signups[np.ix_(rows, cols)]).sum(axis=1)
    z = (
        (early["incremental"] - early["slope_on_total"] * d["incremental"])
        - (true[:7].sum() - early["slope_on_total"] * true.sum())
    ) / early["sd_given_total"]
    assert abs(z) < 2.6
    lift = Lift.from_dict(d, "ctv readout")
    clusters = dict(zip(w.clusters()["geo"], w.clusters()["cluster"]))
    model = StructuralModel(clusters=clusters, n_draws=40, seed=0, early_windows=True)
    table = model.fit(load_panel(observed), [lift]).to_curves()["lifts"]
    assert table[0]["early_window"] == [early["start"], early["end"]]
    # Off by default, and without the block the model fits the total alone.
    default = StructuralModel(clusters=clusters, n_draws=40, seed=0).fit(
        load_panel(observed), [lift]
    )
    assert default.to_curves()["lifts"][0]["early_window"] is None
    bare = StructuralModel(clusters=clusters, n_draws=40, seed=0, early_windows=True).fit(
        load_panel(observed), [dataclasses.replace(lift, early=None)]
    )
    assert bare.to_curves()["lifts"][0]["early_window"] is None
    # The command line: --early-window turns it on; with the regression model it is refused.
    (tmp_path / "panel.csv").write_text(observed.to_csv(index=False))
    (tmp_path / "readout.json").write_text(json.dumps(d))
    base = ["--data", str(tmp_path / "panel.csv"), "--lift", str(tmp_path / "readout.json")]
    out = tmp_path / "c.json"
    code, _, err = run_cli("calibrate", *base, "--early-window", "--draws", "40", "--out", str(out))
    assert code == 0, err
    assert json.loads(out.read_text())["lifts"][0]["early_window"] is not None
    code, _, err = run_cli(
        "calibrate",
        *base,
        "--early-window",
        "--model",
        "regression",
        "--out",
        str(tmp_path / "r.json"),
    )
    assert code == 2 and "--early-window" in err


def test_calibrate_refuses_a_malformed_early_block_in_one_line(tmp_path, run_cli):
    w = World(8, 200, seed=2)
    geos = list(w.geos[::2])
    e = Experiment(
        "ctv", tuple(geos), w.dates[150].date().isoformat(), w.dates[177].date().isoformat(), 0.0
    )
    observed, truth = w.simulate([e])
    (tmp_path / "panel.csv").write_text(observed.to_csv(index=False))
    t = truth["experiments"][0]
    d = _readout_dict()
    d.update(
        treated=geos,
        test_period=[t["start"], t["end"]],
        spend_delta=t["spend_delta"],
        early={**d["early"], "start": t["start"], "end": t["start"], "sd_given_total": -1.0},
    )
    (tmp_path / "readout.json").write_text(json.dumps(d))
    inputs = ["--data", str(tmp_path / "panel.csv"), "--lift", str(tmp_path / "readout.json")]
    code, _, err = run_cli("calibrate", *inputs, "--out", str(tmp_path / "c.json"))
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "early.sd_given_total" in lines[0], err
    assert "readout.json" in lines[0] and not (tmp_path / "c.json").exists()
