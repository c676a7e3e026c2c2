"""Closed-loop backtest (issue 9): plans applied to the world, policies scored on the truth."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from allocation.backtest import (
    PLANNED_BIAS,
    QuarterlyModel,
    Setting,
    StatusQuo,
    backtest,
    best_allocation,
    confounding_prior,
    make_setting,
    overlapping_tests,
)
from allocation.backtest_policies import _fit
from allocation.backtest_setting import _curve_fn
from allocation.calibration import calibrate
from allocation.constraints import guardrail_violation
from causal.errors import ConfigError
from causal.world import MEDIATED_CONVERSION, World


@pytest.fixture(scope="module")
def world():
    return World(16, 180, seed=1)


@pytest.fixture(scope="module")
def result(world):
    return backtest(world, days=42, seed=0)


def test_best_allocation_known_answers():
    log = lambda x: 100 * np.log1p(np.asarray(x) / 1000)  # noqa: E731
    x = best_allocation([log, log], 2000.0)
    assert np.allclose(x, [1000, 1000])
    # Linear curves: the whole budget goes to the better line.
    x = best_allocation([lambda v: 2 * np.asarray(v), lambda v: 3 * np.asarray(v)], 500.0)
    assert np.allclose(x, [0, 500])
    # Bounds hold and the budget is met exactly.
    x = best_allocation(
        [lambda v: 2 * np.asarray(v), lambda v: 3 * np.asarray(v)], 500.0, [100, 0], [400, 300]
    )
    assert np.allclose(x, [200, 300]) and np.isclose(x.sum(), 500)
    with pytest.raises(ConfigError):
        best_allocation([log, log], 1000.0, upper=[100, 100])


def test_plan_application_is_exact(world):
    """A plan's true incremental signups equal a direct rerun of the world with that spend."""
    setting = make_setting(world, 42, seed=0)
    plan = np.tile(setting.status_quo, (42, 1))
    spend = setting.to_geos(plan)
    # Spreading by size keeps each line's daily total.
    for i, (ch, cl) in enumerate(setting.lines):
        members = [
            g
            for g, c in zip(world.geos, world.cluster_of)
            if ["NA", "LATAM", "EMEA", "APAC"][c] == cl
        ]
        cols = [world.geos.index(g) for g in members]
        assert np.allclose(spend[ch][setting.start :, cols].sum(axis=1), setting.status_quo[i])
    run = world.run(spend=spend)
    rows = slice(setting.start, None)
    expected = sum(d[rows].sum() for d in run.direct.values()) + MEDIATED_CONVERSION * sum(
        m[rows].sum() for m in run.mediated_queries.values()
    )
    assert np.isclose(setting.incremental(setting.run(plan)).sum(), expected)
    # Same draws: the same plan gives the same outcome, another plan a different one.
    assert np.isclose(setting.incremental(setting.run(plan)).sum(), expected)
    assert not np.isclose(setting.incremental(setting.run(plan * 0.5)).sum(), expected)


def test_guardrail_never_broken(result):
    plan = result.plans["daily loop"].to_numpy().T  # lines x days
    sq = np.asarray(result.settings["status_quo"])
    history = np.tile(sq[:, None], (1, 6))
    assert guardrail_violation(plan, history, sq, 0.15) <= 1 + 1e-9
    assert result.guardrail <= 1 + 1e-9
    # And the loop did move: it is not the status quo in disguise.
    assert np.abs(plan - sq[:, None]).max() > 0.01 * sq.max()


def test_no_two_tests_overlap(result, tmp_path):
    tests = result.tests
    assert len(tests) >= 3
    assert result.overlaps == []
    spans = [(pd.Timestamp(t["start"]), pd.Timestamp(t["end"]), set(t["geos"])) for t in tests]
    for i, (s1, e1, g1) in enumerate(spans):
        for s2, e2, g2 in spans[i + 1 :]:
            assert not (s1 <= e2 and s2 <= e1 and g1 & g2)
    # The project's registry agrees: registering every test (no washout) raises no conflict.
    from experiments.registry import Registry

    reg = Registry(str(tmp_path / "reg.db"))
    for i, t in enumerate(tests):
        reg.add(
            f"t{i}",
            cells=t["geos"],
            start=t["start"],
            end=t["end"],
            channel=t["channel"],
            washout_days=0,
        )
    # The checker itself flags an overlap.
    a = {"geos": ["NA01"], "first": 0, "last": 10}
    assert overlapping_tests([a, {"geos": ["NA01", "NA02"], "first": 5, "last": 8}]) == [(0, 1)]
    assert overlapping_tests([a, {"geos": ["NA01"], "first": 11, "last": 20}]) == []


def test_honest_comparison(result, world):
    t = result.summary_table
    assert list(t.index) == [
        "status quo",
        "quarterly observational",
        "quarterly calibrated",
        "daily loop",
        "oracle",
    ]
    budget = result.settings["budget"]
    # Every policy spends the same daily budget; the daily loop less only by what its go-dark tests saved.
    for name in ("status quo", "quarterly observational", "quarterly calibrated", "oracle"):
        assert np.isclose(t.loc[name, "spend"], 42 * budget, rtol=1e-6)
    assert np.isclose(
        t.loc["daily loop", "spend"] + result.given_up["spend"], 42 * budget, rtol=1e-6
    )
    # Tests cut spend, so they cost signups (netted into the daily loop's figure).
    assert result.given_up["signups"] > 0 and result.given_up["spend"] > 0
    assert np.allclose(t["cost_per_incremental"], t["spend"] / t["incremental"])
    assert np.isclose(t.loc["oracle", "share_of_oracle"], 1.0)
    # At equal spend: every plan, run without the tests' cuts, spends exactly the budget each day.
    assert np.allclose(t["equal_spend"], 42 * budget, rtol=1e-6)
    assert np.allclose(t["equal_cost_per_incremental"], t["equal_spend"] / t["equal_incremental"])
    sq, orc = t.loc["status quo", "equal_incremental"], t.loc["oracle", "equal_incremental"]
    share = (t.loc["daily loop", "equal_incremental"] - sq) / (orc - sq)
    assert np.isclose(t.loc["daily loop", "share_of_oracle_gain"], share)
    assert np.isclose(
        t.loc["daily loop", "equal_incremental"],
        t.loc["daily loop", "incremental"] + result.given_up["signups"],
        rtol=1e-9,
    )
    # On the true steady-state curves the oracle's plan is at least as good as the status quo's.
    setting = make_setting(world, 42, seed=0)
    truth = {(c["name"], c["market"]): c for c in world.true_curves()}

    def value(x):
        tot = 0.0
        for xi, line in zip(x, setting.lines):
            c = truth[line]
            tot += _curve_fn(c["response"])(xi) + (
                _curve_fn(c["mediated"])(xi) if "mediated" in c else 0.0
            )
        return float(tot)

    assert value(result.plans["oracle"].iloc[0].to_numpy()) >= value(setting.status_quo) - 1e-6
    # The result serialises.
    json.dumps(result.to_dict(), default=float)
    # The report's headline compares the policies at equal spend (issue 14), not the daily loop's cost
    # per incremental at its own spend, which its tests lower.
    from allocation.cli.backtest_report import backtest_report

    html = backtest_report(result)
    assert "daily loop, equal spend: share of the oracle" in html
    assert "daily loop: cost per incremental vs status quo" not in html
    # A held readout and its replication show in the tests' table, the replication naming its test.
    tests = [dict(t) for t in result.tests[:2]]
    tests[0]["held"] = "its interval lies wholly above zero"
    tests[1]["replicates"] = 0
    html = backtest_report(dataclasses.replace(result, tests=tests))
    assert "its interval lies wholly above zero" in html
    assert f"the test from {tests[0]['start']}" in html
    assert ">nan<" not in html


def test_custom_policy_and_bad_horizon(world):
    res = backtest(world, days=14, policies=[StatusQuo()])
    assert list(res.summary_table.index) == ["status quo"]
    with pytest.raises(ConfigError, match="--days"):
        backtest(world, days=170)
    assert isinstance(make_setting(world, 14), Setting)


def test_cli_backtest(run_cli, tmp_path):
    out = tmp_path / "bt"
    code, stdout, stderr = run_cli(
        "backtest",
        "--out",
        str(out),
        "--report",
        str(out / "bt.html"),
        "--days",
        "21",
        "--history",
        "130",
        "--geos",
        "8",
        "--seed",
        "3",
    )
    assert code == 0, stderr
    data = json.loads((out / "backtest.json").read_text())
    assert {p["policy"] for p in data["policies"]} >= {"status quo", "daily loop", "oracle"}
    assert "share of oracle" in (out / "bt.html").read_text()
    assert len(pd.read_csv(out / "decisions.csv")) == 21
    assert "daily loop" in stdout


def test_cli_bad_input(run_cli, tmp_path):
    code, _, stderr = run_cli("backtest", "--out", str(tmp_path / "x"), "--geos", "6")
    assert code == 2 and stderr.strip().startswith("error:") and "--geos 6" in stderr
    assert len(stderr.strip().splitlines()) == 1
    code, _, stderr = run_cli("backtest", "--out", str(tmp_path / "y"), "--history", "50")
    assert code == 2
    assert not (tmp_path / "y" / "backtest.json").exists()


def test_quarterly_trust_region(result):
    """The calibrated quarterly policy moves each line at most to double or half its spend in a quarter."""
    plan = result.plans["quarterly calibrated"].to_numpy()
    sq = np.asarray(result.settings["status_quo"])
    assert np.allclose(plan, plan[0])  # one decision in a 42-day horizon, held
    assert np.all(plan[0] >= sq / 2 - 1e-6) and np.all(plan[0] <= 2 * sq + 1e-6)
    assert np.isclose(plan[0].sum(), sq.sum())
    assert np.abs(plan[0] - sq).max() > 0.05 * sq.max()  # it did move
    # The observational policy jumps without a trust region.
    obs = result.plans["quarterly observational"].to_numpy()[0]
    assert np.any(obs > 2 * sq) or np.any(obs < sq / 2)
    with pytest.raises(ConfigError, match="max_step"):
        QuarterlyModel(calibrated=True, max_step=1.0)


def test_calibrated_policies_beat_status_quo_and_observational(result):
    """The issue's must-show on the quick world (fixed seeds, so deterministic; margins of 1 to 2% here).

    The full-size figures, and an ablation showing how much of the quarterly margin the trust region
    itself carries, are in docs/backtest.md.
    """
    cpi = result.summary_table["cost_per_incremental"]
    for name in ("quarterly calibrated", "daily loop"):
        assert cpi[name] < cpi["status quo"] < cpi["quarterly observational"]
    assert cpi["oracle"] < cpi["quarterly calibrated"]


def test_confounding_prior_and_mapping_bias_scale(world):
    prior = confounding_prior(world)
    assert prior["brand_search"] == 1.0
    assert all(prior[ch] == PLANNED_BIAS for ch in world.channels if ch != "brand_search")
    setting = make_setting(world, 42, seed=0)
    frame = world.panel(setting.run(np.tile(setting.status_quo, (42, 1))))
    model = _fit(setting, frame, 0)
    # A mapping with the same scale for every channel is the scalar case (backwards compatible).
    same = calibrate(
        model, setting.lifts, bias_scale={ch: 1.0 for ch in world.channels}, n_draws=50
    )
    scalar = calibrate(model, setting.lifts, bias_scale=1.0, n_draws=50)
    assert np.allclose(same.theta_after, scalar.theta_after)
    # A narrower prior on the planned channels keeps them closer to the observational fit.
    narrow = calibrate(model, setting.lifts, bias_scale=prior, n_draws=50)
    sl = model.column_index("social")
    gap = lambda r: np.abs(r.theta_after[sl] - r.theta_before[sl]).sum()  # noqa: E731
    assert gap(narrow) < gap(scalar)


def test_design_module_proposes_the_tests(result, world):
    # Each week's markets are experiments.design's recommendation among the cluster's markets.
    assert all(t["proposer"] == "design" for t in result.tests)
    for t in result.tests:
        cluster = {
            g
            for g, c in zip(world.geos, world.cluster_of)
            if ["NA", "LATAM", "EMEA", "APAC"][c] == t["cluster"]
        }
        assert set(t["geos"]) <= cluster
        # The claim is the registry readout's, widened past the simulated grid (0.2) on short histories.
        assert 0 < t["design_mde"] < 1 and 0 < t["design_power_at_mde"] <= 1
