"""Planning curves of the closed loop (issue 14): S-curve envelopes, averaged calibrations, posterior draws."""

from types import SimpleNamespace

import numpy as np
import pytest

from allocation.backtest import DailyLoop, default_policies
from allocation.backtest_setting import _envelope_below_tangent, average_curves, plan_lines
from allocation.backtest_structural import StructuralLoop, expected_cluster_curves
from causal import response as R
from causal.errors import ConfigError

S_CURVE = {"form": "hill", "beta": 1_000.0, "half_saturation": 50_000.0, "shape": 2.0}
CONCAVE = {"form": "hill", "beta": 100.0, "half_saturation": 10_000.0, "shape": 1.0}


def test_envelope_below_the_tangent_is_the_best_average_return():
    xs = np.linspace(1.0, 300_000.0, 30_001)
    best = (R.value("hill", xs, S_CURVE) / xs).max()
    line = _envelope_below_tangent(dict(S_CURVE), 5_000.0)
    assert line["form"] == "linear"
    assert abs(line["beta"] - best) < 1e-6 * best
    # At or past the tangent point (here the half-saturation) and for concave curves: unchanged.
    assert _envelope_below_tangent(dict(S_CURVE), 60_000.0) == S_CURVE
    assert _envelope_below_tangent(dict(CONCAVE), 5_000.0) == CONCAVE


def test_daily_box_in_the_convex_part_climbs_instead_of_draining():
    # Line 0 pays 0.01 a unit on average up to its tangent point but almost nothing at the margin
    # of its box; line 1 pays about 0.003 at the margin. The static optimum raises line 0.
    setting = SimpleNamespace(
        lines=[("brand_search", "NA"), ("social", "NA")], status_quo=np.array([2_000.0, 8_000.0])
    )
    curves = {
        "channels": [
            {"name": "brand_search", "market": "NA", "response": S_CURVE},
            {"name": "social", "market": "NA", "response": CONCAVE},
        ]
    }
    lo, hi = np.array([1_500.0, 7_500.0]), np.array([2_500.0, 8_500.0])
    climb = plan_lines(setting, curves, 10_000.0, lo, hi)
    drain = plan_lines(setting, curves, 10_000.0, lo, hi, envelope_below_tangent=False)
    assert np.isclose(climb.sum(), 10_000.0) and np.isclose(drain.sum(), 10_000.0)
    assert climb[0] > 2_499.0  # toward the static optimum
    assert drain[0] < 1_501.0  # the myopic plan on the exact curve cuts it


def test_average_curves_fit_one_hill_to_the_mean_response():
    setting = SimpleNamespace(lines=[("ctv", "NA")], status_quo=np.array([1_000.0]))
    hill = {"form": "hill", "beta": 50.0, "half_saturation": 1_500.0, "shape": 1.3}
    log = {"form": "log", "beta": 5.0, "scale": 500.0}

    def week(resp):
        return {"channels": [{"name": "ctv", "market": "NA", "response": resp}]}

    same = average_curves([week(hill), week(hill)], setting)["channels"][0]["response"]
    assert np.isclose(same["beta"], 50.0, rtol=1e-4) and np.isclose(same["shape"], 1.3, rtol=1e-4)
    mixed = average_curves([week(hill), week(log)], setting)["channels"][0]["response"]
    xs = np.linspace(100.0, 4_000.0, 40)
    mean = (R.value("hill", xs, hill) + R.value("log", xs, log)) / 2
    assert np.max(np.abs(R.value("hill", xs, mixed) - mean)) < 0.03 * mean.max()
    # A negative coefficient is no effect, as the planner plans it.
    neg = average_curves([week({**hill, "beta": -50.0})], setting)["channels"][0]["response"]
    assert neg["beta"] == 0.0
    # Weights: all on one model class gives that class's curve back.
    only = average_curves([week(hill), week(log)], setting, weights=(1.0, 0.0))
    assert np.isclose(only["channels"][0]["response"]["beta"], 50.0, rtol=1e-4)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_structural_weight_outside_zero_one_is_refused(weight):
    with pytest.raises(ConfigError, match="structural_weight"):
        DailyLoop(average_models=True, structural_weight=weight)


def test_expected_cluster_curves_average_the_draws():
    setting = SimpleNamespace(lines=[("ctv", "NA")], status_quo=np.array([1_000.0]))
    draws = {"beta": [30.0, 60.0], "half_saturation": [800.0, 800.0], "shape": [1.0, 1.5]}
    markets = [
        {
            "name": "ctv",
            "market": m,
            "cluster": "NA",
            "response": {"form": "hill", "beta": 45.0, "half_saturation": 800.0, "shape": 1.0},
            "response_draws": draws,
        }
        for m in ("a", "b")
    ]
    fit = expected_cluster_curves({"channels": markets}, setting)["channels"][0]["response"]
    xs = np.linspace(100.0, 4_000.0, 40)
    mean = np.mean(
        [
            R.value("hill", xs, {"beta": 2 * b, "half_saturation": 1_600.0, "shape": n})
            for b, n in zip(draws["beta"], draws["shape"])
        ],
        axis=0,
    )
    assert np.max(np.abs(R.value("hill", xs, fit) - mean)) < 0.02 * mean.max()


def test_bad_planning_options_are_refused():
    with pytest.raises(ConfigError, match="average_weeks"):
        DailyLoop(average_weeks=0)
    with pytest.raises(ConfigError, match="plan_on"):
        StructuralLoop(plan_on="median")
    with pytest.raises(ConfigError, match="structural_shape_prior"):
        DailyLoop(structural_shape_prior="flat")
    # Averaging needs several refits in its window: long horizons only.
    loop = next(p for p in default_policies(days=56) if isinstance(p, DailyLoop))
    assert loop.average_weeks == 1
    loop = next(p for p in default_policies(days=182) if isinstance(p, DailyLoop))
    assert loop.average_weeks == 13


def test_half_year_loops_average_the_two_model_classes():
    # default_policies averages the response model's calibration with the structural model's fit
    # on horizons of AVERAGE_FROM_DAYS or more (measured there), not on shorter ones.
    def loop(days):
        return next(p for p in default_policies(days=days) if type(p) is DailyLoop)

    assert loop(182).average_models and not loop(56).average_models
    assert not DailyLoop().average_models


def test_averaged_loop_plans_on_both_models():
    from allocation.backtest import Oracle, StatusQuo, backtest
    from causal.world import World

    world = World(12, 164, seed=5)
    single = DailyLoop(proposer="none", average_weeks=1)
    both = DailyLoop(proposer="none", average_weeks=1, average_models=True)
    both.name = "daily loop, two models"
    res = backtest(world, days=14, seed=0, policies=[StatusQuo(), single, both, Oracle()])
    # Each week's curves: the response model's calibration alone, or its average with the structural fit.
    first = [loop.calibrations_[0]["channels"][0]["response"] for loop in (single, both)]
    assert first[0] != first[1] and first[1]["form"] == "hill"
    # Same lifts, same response-model fit: the plans differ only by the structural model's curves.
    a, b = res.plans[single.name].to_numpy(), res.plans[both.name].to_numpy()
    assert np.abs(a - b).max() > 1e-3 * a.max()
    np.testing.assert_allclose(b.sum(axis=1), a.sum(axis=1), rtol=1e-6)


def test_the_averaged_loop_fits_the_structural_model_under_its_priors(monkeypatch):
    # Session 13 (docs/backtest.md): the loop's weekly structural fits weigh the shape grid by
    # Meridian's default Hill prior, with the coefficient prior on the marginal return.
    import allocation.backtest_policies as policies
    from allocation.backtest import Oracle, StatusQuo, backtest
    from causal.world import World

    seen = []
    real = policies.fit_structural

    def spy(*args, options=None, **kwargs):
        seen.append(options)
        return real(*args, options=options, **kwargs)

    monkeypatch.setattr(policies, "fit_structural", spy)
    loop = DailyLoop(proposer="none", average_weeks=1, average_models=True)
    backtest(World(12, 164, seed=5), days=7, seed=0, policies=[StatusQuo(), loop, Oracle()])
    assert seen == [{"prior_on": "marginal_return", "shape_prior": "meridian"}]
