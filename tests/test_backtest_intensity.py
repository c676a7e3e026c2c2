"""Closed-loop tests of any intensity: go-dark, half cut and heavy-up, run, read out and costed."""

import numpy as np
import pytest

from allocation.backtest import DailyLoop, Oracle, StatusQuo, backtest
from allocation.backtest_setting import _read, make_setting, spend_multiplier
from causal.errors import ConfigError
from causal.world import World


@pytest.fixture(scope="module")
def setting():
    return make_setting(World(16, 150, seed=2), 28, seed=0)


def _test(setting, multiplier, channel="ctv"):
    busy = {g for t in setting.battery for g in t["geos"]}
    geos = [g for g in setting.world.geos if g not in busy][:4]
    first = setting.start
    return {
        "channel": channel,
        "geos": geos,
        "first": first,
        "last": first + 20,
        "multiplier": multiplier,
    }


def test_multiplier_scales_spend_in_the_tests_markets_and_days_only(setting):
    plan = np.tile(setting.status_quo, (28, 1))
    base = setting.to_geos(plan)
    for k in (0.0, 0.5, 1.5):
        t = _test(setting, k)
        moved = setting.with_tests(base, [t])
        cols = [setting.world.geos.index(g) for g in t["geos"]]
        rows = slice(t["first"], t["last"] + 1)
        assert np.allclose(moved["ctv"][rows, cols], k * base["ctv"][rows, cols])
        moved["ctv"][rows, cols] = base["ctv"][rows, cols]
        assert all(np.array_equal(moved[ch], base[ch]) for ch in base)
        cost = setting.test_spend(plan, [t])
        planned = float(base["ctv"][rows, cols].sum())
        assert np.isclose(cost["extra"], max(k - 1, 0) * planned)
        assert np.isclose(cost["saved"], max(1 - k, 0) * planned)
    # A go-dark is the default; an intensity names its multiplier; 1 (no change) is refused.
    assert spend_multiplier({}) == 0.0 and spend_multiplier({"intensity": "heavy-up"}) == 1.5
    with pytest.raises(ConfigError, match="multiplier"):
        spend_multiplier({"multiplier": 1.0})


def test_heavy_up_and_half_cut_readouts(setting):
    """The readout's spend_delta has the intervention's sign and size (its spend counterfactual's
    error is the same in absolute terms for every intensity: it is the counterfactual's, not the
    test's), and heavy-up minus go-dark readouts on the same window give the true difference."""
    w = setting.world
    plan = np.tile(setting.status_quo, (28, 1))
    clean = setting.run(plan)
    lifts, truth = {}, {}
    for k in (0.0, 0.5, 1.5):
        t = _test(setting, k)
        run = setting.run(plan, [t])
        control = [g for g in w.geos if g not in set(t["geos"])]
        lifts[k] = _read(w, w.panel(run), t, control, 0)
        rows = slice(t["first"], t["last"] + 1)
        truth[k] = float((run.signups - clean.signups)[rows].sum())
        moved = setting.test_spend(plan, [t])
        true_delta = moved["extra"] - moved["saved"]
        assert np.sign(lifts[k].spend_delta) == np.sign(true_delta)
        assert abs(lifts[k].spend_delta / true_delta - 1) < 0.15
    assert truth[1.5] > 0 > truth[0.5] > truth[0.0]
    # The same window's outcome counterfactual error cancels between intensities.
    diff = lifts[1.5].incremental - lifts[0.0].incremental
    assert diff > 0 and abs(diff / (truth[1.5] - truth[0.0]) - 1) < 0.1


def test_round_robin_takes_intensities_in_turn():
    setting = make_setting(World(16, 240, seed=2), 84, seed=0)
    loop = DailyLoop(proposer="random", intensities=("half", "heavy-up"), test_days=7)
    n = len(setting.world.channels)
    for week in (0, n, 2 * n):
        loop._propose(week * 7, setting, {})
    assert [t["intensity"] for t in loop.tests_] == ["half", "heavy-up", "half"]
    assert [t["multiplier"] for t in loop.tests_] == [0.5, 1.5, 0.5]
    with pytest.raises(ConfigError, match="intensities"):
        DailyLoop(intensities=("double",))


def test_heavy_ups_extra_spend_is_reported_as_a_test_cost():
    world = World(16, 150, seed=2)
    loop = DailyLoop(proposer="random", intensities=("heavy-up",), test_days=7, average_weeks=1)
    res = backtest(world, days=14, seed=0, policies=[StatusQuo(), loop, Oracle()])
    given = res.loops["daily loop"]["given_up"]
    assert res.loops["daily loop"]["n_tests"] == 2 and given["by_intensity"] == {"heavy-up": 2}
    # The heavy-ups spent beyond the plan (a test cost) and bought signups with it.
    assert given["extra_spend"] > 0 and given["saved_spend"] == 0
    assert np.isclose(given["spend"], -given["extra_spend"])
    assert given["signups"] < 0
    # Spend moved valued at the status quo's true marginal return: one scale for every intensity.
    assert given["marginal_return"] > 0
    assert np.isclose(
        given["net_signups"], given["signups"] - given["marginal_return"] * given["spend"]
    )
    # At equal spend the loop's plan, run without its tests, spends the budget like the others.
    spend = res.summary_table["equal_spend"]
    assert np.allclose(spend, spend.iloc[0])
