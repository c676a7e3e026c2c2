"""Calibration of response curves on lifts: likelihood terms, combination, conflicts, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from allocation.calibration import Lift, calibrate, lift_design
from allocation.response_model import ResponseModel
from causal.errors import DataError
from causal.panel import load_panel
from causal.world import CLUSTERS, Experiment, World


def lift_from_truth(
    t: dict, rel_sd: float = 0.15, scale: float = 1.0, confidence: float = 0.9
) -> dict:
    """A readout.json-like dict from the world's truth, with a realistic interval."""
    inc = t["true_incremental"] * scale
    half = 1.6448536269514722 * abs(inc) * rel_sd
    return {
        "channel": t["channel"],
        "treated": t["geos"],
        "test_period": [t["start"], t["end"]],
        "incremental": inc,
        "incremental_ci": [inc - half, inc + half],
        "confidence": confidence,
        "spend_delta": t["spend_delta"],
    }


@pytest.fixture(scope="module")
def world_fit():
    world = World(16, 300, seed=3)
    exps = [
        Experiment("ctv", tuple(world.geos[::2]), "2024-08-01", "2024-09-11", 0.0),
        Experiment("brand_search", tuple(world.geos[1::2]), "2024-08-01", "2024-09-25", 0.0),
    ]
    panel, truth = world.simulate(exps)
    clusters = {g: CLUSTERS[c] for g, c in zip(world.geos, world.cluster_of)}
    model = ResponseModel(
        controls=["launch", "competitor_price"], holdout=0, n_sweeps=1, clusters=clusters
    ).fit(load_panel(panel))
    return world, model, truth


def test_calibration_moves_credit_to_the_experiments(world_fit):
    _, model, truth = world_fit
    lifts = [Lift.from_dict(lift_from_truth(t), t["channel"]) for t in truth["experiments"]]
    res = calibrate(model, lifts)
    true = truth["contributions"]
    for ch in ("ctv", "brand_search"):
        before = abs(res.channels.loc[ch, "contribution_before"] / true[ch] - 1)
        after = abs(res.channels.loc[ch, "contribution_after"] / true[ch] - 1)
        assert after < 0.3 and after <= before + 0.05, (ch, before, after)
    # Brand search is confounded with organic demand: the panel over-credits it.
    assert res.channels.loc["brand_search", "contribution_before"] > 3 * true["brand_search"]
    # Each lift's prediction after calibration sits within its interval.
    for _, r in res.lifts.iterrows():
        assert r["ci_lo"] <= r["predicted_after"] <= r["ci_hi"]
    # Channels without a lift keep their credit (no bias term is added for them).
    for ch in ("nonbrand_search", "social", "programmatic"):
        assert res.channels.loc[ch, "contribution_after"] == pytest.approx(
            res.channels.loc[ch, "contribution_before"], rel=0.05
        )


def test_lift_scales_the_channel_and_intervals_bracket(world_fit):
    _, model, truth = world_fit
    t = next(t for t in truth["experiments"] if t["channel"] == "ctv")
    d = lift_design(model, Lift.from_dict(lift_from_truth(t)))
    predicted = float(d.row @ model.theta_)
    target = 2.0 * predicted
    lift = Lift.from_dict(
        {
            **lift_from_truth(t),
            "incremental": target,
            "incremental_ci": [target * 1.02, target * 0.98],
        }
    )
    res = calibrate(model, [lift])
    ratio = (
        res.channels.loc["ctv", "contribution_after"]
        / res.channels.loc["ctv", "contribution_before"]
    )
    assert ratio == pytest.approx(2.0, rel=0.1)
    row = res.channels.loc["ctv"]
    assert row["contribution_after_lo"] < row["contribution_after"] < row["contribution_after_hi"]
    assert row["roas_after_lo"] < row["roas_after"] < row["roas_after_hi"]
    # The calibrated curve knows the lift's own spend change as well as the lift does, no better.
    d = res.designs[0]
    sd_pred = float(np.sqrt(d.row @ res.cov_after @ d.row))
    assert 0.3 * lift.sd < sd_pred <= lift.sd * 1.01


def test_carryover_counts_in_the_window(world_fit):
    _, model, truth = world_fit
    t = next(t for t in truth["experiments"] if t["channel"] == "ctv")
    decay = model.curves_["ctv"].adstock["decay"]
    # A one-day go-dark: with carryover the adstock falls by only (1 - decay) of the spend on that day.
    one_day = {**lift_from_truth(t), "test_period": [t["start"], t["start"]]}
    full = lift_design(model, Lift.from_dict(lift_from_truth(t)))
    day = lift_design(model, Lift.from_dict({**one_day, "spend_delta": t["spend_delta"] / 42}))
    per_day_full = full.row @ model.theta_ / 42
    assert abs(day.row @ model.theta_) < abs(per_day_full) * (1 - decay) * 1.5 + 1e-9


def test_several_lifts_combine_and_conflicts_are_reported(world_fit):
    world, model, truth = world_fit
    t = next(t for t in truth["experiments"] if t["channel"] == "ctv")
    good = Lift.from_dict({**lift_from_truth(t, rel_sd=0.1), "name": "ctv A"})
    again = Lift.from_dict({**lift_from_truth(t, rel_sd=0.1), "name": "ctv B"})
    res = calibrate(model, [good, again])
    assert res.conflicts == [] and not res.lifts["conflict"].any()
    one = calibrate(model, [good])

    def sd(r):
        return (
            r.channels.loc["ctv", "contribution_after_hi"]
            - r.channels.loc["ctv", "contribution_after_lo"]
        )

    assert sd(res) < sd(one)
    wild = Lift.from_dict({**lift_from_truth(t, rel_sd=0.1, scale=4.0), "name": "ctv wild"})
    res = calibrate(model, [good, wild])
    assert res.lifts["conflict"].all()
    assert any("ctv wild" in c for c in res.conflicts)


def test_curves_json_contract(world_fit):
    _, model, truth = world_fit
    res = calibrate(model, [Lift.from_dict(lift_from_truth(t)) for t in truth["experiments"]])
    out = res.to_dict()
    assert out["outcome"] == "signups" and out["period"] == "day"
    markets = {line["market"] for line in out["channels"]}
    assert markets == {"NA", "LATAM", "EMEA", "APAC"}
    from causal.transforms import response

    for line in out["channels"]:
        for key in (
            "name",
            "market",
            "response",
            "adstock",
            "current_spend",
            "min_spend",
            "max_spend",
            "contribution",
        ):
            assert key in line
        assert set(line["contribution"]) == {"uncalibrated", "calibrated"}
        r = line["response"]
        assert r["form"] in ("hill", "exp", "log")
        y = response(r["form"], np.array([line["current_spend"]]), r)
        assert np.isfinite(y).all() and y[0] >= 0
    total = sum(
        line["contribution"]["calibrated"] for line in out["channels"] if line["name"] == "ctv"
    )
    assert total == pytest.approx(res.channels.loc["ctv", "contribution_after"])


def test_bad_lifts(world_fit):
    _, model, truth = world_fit
    t = truth["experiments"][0]
    with pytest.raises(DataError, match="spend_delta"):
        Lift.from_dict({**lift_from_truth(t), "spend_delta": 0.0})
    with pytest.raises(DataError, match="no 'spend_delta'"):
        Lift.from_dict({**lift_from_truth(t), "spend_delta": None})
    with pytest.raises(DataError, match="outside the panel"):
        lift_design(
            model,
            Lift.from_dict({**lift_from_truth(t), "test_period": ["2023-01-01", "2023-02-01"]}),
        )
    with pytest.raises(DataError, match="spend_radio"):
        lift_design(model, Lift.from_dict({**lift_from_truth(t), "channel": "radio"}))
    with pytest.raises(DataError, match="exceeds the observed spend"):
        lift_design(model, Lift.from_dict({**lift_from_truth(t), "spend_delta": 1e12}))


def test_must_show_default_world_with_readouts():
    """Default world, go-dark tests on branded search and CTV read out by the readout module."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_calibrate import readout_lifts, scenario

    panel, truth, exps, control = scenario()
    lifts = readout_lifts(panel, exps, control)
    model = ResponseModel(controls=["launch", "competitor_price"]).fit(panel)
    res = calibrate(model, lifts)
    true = truth["contributions"]
    before, after = res.channels["contribution_before"], res.channels["contribution_after"]
    assert before["brand_search"] >= 3 * true["brand_search"]
    assert after["brand_search"] == pytest.approx(true["brand_search"], rel=0.3)
    assert after["ctv"] == pytest.approx(true["ctv"], rel=0.3)
    for ch in ("nonbrand_search", "social", "programmatic"):
        assert abs(after[ch] / true[ch] - 1) <= abs(before[ch] / true[ch] - 1) + 0.02
    bt = model.backtest_
    assert bt is not None and bt.n_periods == 91 and bt.wape_total < 0.05
