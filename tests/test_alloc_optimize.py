"""Static allocation: optimality against independent checks, DPP, objectives, constraints."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from test_alloc_helpers import random_curves, spend_at_marginal, water_fill

from allocation.business_rules import Rules, line_bounds
from allocation.curves import CurveSet
from allocation.optimize import Allocator, allocate
from causal.errors import ConfigError, InfeasibleError


@pytest.mark.parametrize("seed", range(8))
def test_random_concave_instances_match_kkt_water_filling(seed):
    rng = np.random.default_rng(seed)
    curves = random_curves(rng, int(rng.integers(2, 9)))
    bounds = line_bounds(curves, Rules())
    lo, hi = bounds.lower, bounds.upper
    budget = float(lo.sum() + rng.uniform(1000, 12000))
    plan = allocate(curves, budget=budget)
    ref = water_fill(curves, budget, lo, hi)
    f_plan, f_ref = curves.evaluate(plan.lines["spend"]).sum(), curves.evaluate(ref).sum()
    assert f_plan == pytest.approx(f_ref, rel=1e-6)
    assert f_plan >= f_ref * (1 - 1e-6)
    # KKT: lines not at a bound share one marginal return, equal to the budget's dual value.
    s = plan.lines["spend"].to_numpy()
    tol = 1e-5 * budget
    free = (s > lo + tol) & (s < np.where(np.isfinite(hi), hi, np.inf) - tol)
    if free.sum() >= 1 and plan.budget_dual:
        m = plan.lines["marginal"].to_numpy()[free]
        np.testing.assert_allclose(m, plan.budget_dual, rtol=1e-4)


def test_brute_force_two_lines():
    curves = CurveSet.from_dict(
        {
            "channels": [
                {
                    "name": "a",
                    "response": {
                        "form": "hill",
                        "beta": 300,
                        "half_saturation": 1500,
                        "shape": 0.6,
                    },
                },
                {"name": "b", "response": {"form": "exp", "beta": 250, "scale": 2500}},
            ]
        }
    )
    budget = 4000.0
    best = minimize_scalar(
        lambda x: -curves.evaluate([x, budget - x]).sum(),
        bounds=(0, budget),
        method="bounded",
        options={"xatol": 1e-9},
    )
    plan = allocate(curves, budget=budget)
    assert plan.total_incremental == pytest.approx(-best.fun, rel=1e-6)
    grid = np.linspace(0, budget, 40001)
    vals = np.array([curves.evaluate([x, budget - x]).sum() for x in grid])
    assert plan.total_incremental >= vals.max() * (1 - 1e-7)


def test_problem_is_dpp_and_resolves_with_parameters():
    rng = np.random.default_rng(3)
    curves = random_curves(rng, 6, markets=2)
    rules = Rules(
        budget=8000.0,
        market_budgets={"M0": 3000.0},
        group_budgets={"g": {"channels": ["ch1", "ch2"], "max": 2500.0}},
    )
    alloc = Allocator()
    p1 = alloc.solve(curves, rules)
    sp = alloc.problem_for(curves, rules, line_bounds(curves, rules))
    assert sp.problem.is_dpp()
    assert set(sp.constraints) >= {"total_budget", "line_floors", "market_budgets", "group_budgets"}
    rules.budget = 10000.0
    p2 = alloc.solve(curves, rules)
    assert len(alloc._cache) == 1  # built once, re-solved with a new budget parameter
    assert p2.total_incremental > p1.total_incremental


def test_linear_curves_put_everything_in_best_line():
    curves = CurveSet.from_dict(
        {
            "channels": [
                {"name": "a", "response": {"form": "linear", "beta": 0.02}},
                {"name": "b", "response": {"form": "linear", "beta": 0.05}, "max_spend": 3000},
                {"name": "c", "response": {"form": "linear", "beta": 0.01}},
            ]
        }
    )
    plan = allocate(curves, budget=5000)
    np.testing.assert_allclose(plan.lines["spend"], [2000, 3000, 0], atol=1e-3)


def test_min_spend_and_max_profit_satisfy_their_kkt_conditions():
    rng = np.random.default_rng(11)
    curves = random_curves(rng, 5, bounds=False)
    lo, hi = np.zeros(5), np.full(5, np.inf)
    plan = allocate(curves, objective="min_spend", target=400.0)
    assert plan.total_incremental == pytest.approx(400.0, rel=1e-6)
    # The cheapest way to reach the target equalises marginals: spend_at_marginal(lam) reaches 400 at some lam.
    lam = float(np.median(plan.lines["marginal"][plan.lines["spend"] > 1]))
    ref = spend_at_marginal(curves, lam, lo, hi)
    assert ref.sum() == pytest.approx(plan.total_spend, rel=1e-4)
    value = 40.0
    prof = allocate(curves, objective="max_profit", budget=1e7, value_per_signup=value)
    ref = spend_at_marginal(curves, 1 / value, lo, hi)
    ref_obj = value * curves.evaluate(ref).sum() - ref.sum()
    assert prof.objective_value == pytest.approx(ref_obj, rel=1e-6)


def test_constraints_are_honoured_and_reported():
    rng = np.random.default_rng(5)
    curves = random_curves(rng, 8, markets=2, bounds=False)
    rules = Rules(
        budget=12000.0,
        budget_mode="eq",
        commitments={"ch0/M0": 2500.0},
        reserve=1000.0,
        market_budgets={"M1": 3000.0},
        group_budgets={"grp": {"channels": ["ch2", "ch4"], "min": 4000.0}},
    )
    plan = allocate(curves, rules=rules)
    s = plan.lines["spend"]
    assert plan.total_spend == pytest.approx(11000.0, rel=1e-7)
    assert s["ch0/M0"] >= 2500 - 1e-4
    assert s[[lab for lab in s.index if lab.endswith("M1")]].sum() <= 3000 + 1e-4
    assert s[["ch2/M0", "ch4/M0"]].sum() >= 4000 - 1e-4
    names = {b["constraint"] for b in plan.binding}
    assert "total_budget" in names and "test_and_learn_reserve" in names
    d = plan.to_dict()
    for key in ("status", "objective", "budget", "lines", "total_spend", "total_incremental"):
        assert key in d
    assert set(d["lines"][0]) >= {
        "name",
        "market",
        "spend",
        "current_spend",
        "incremental",
        "marginal",
    }


def test_infeasible_floors_named_before_solving():
    curves = CurveSet.from_dict(
        {
            "channels": [
                {
                    "name": "a",
                    "response": {"form": "log", "beta": 10, "scale": 100},
                    "min_spend": 800,
                },
                {
                    "name": "b",
                    "response": {"form": "log", "beta": 10, "scale": 100},
                    "min_spend": 700,
                },
            ]
        }
    )
    with pytest.raises(
        InfeasibleError, match="floors sum to 1,500.00, above the total budget 1,000.00"
    ):
        allocate(curves, budget=1000)
    with pytest.raises(InfeasibleError, match="commitment"):
        allocate(curves, rules=Rules(budget=2000, commitments={"a": 1900}))
    with pytest.raises(InfeasibleError, match="group_budgets.g.max 100.00 is below"):
        allocate(
            curves, rules=Rules(budget=5000, group_budgets={"g": {"channels": ["a"], "max": 100}})
        )
    marketed = CurveSet.from_dict(
        {
            "channels": [
                {
                    "name": "a",
                    "market": "US",
                    "response": {"form": "log", "beta": 10, "scale": 100},
                    "min_spend": 800,
                }
            ]
        }
    )
    with pytest.raises(InfeasibleError, match="market_budgets.US 500.00 is below"):
        allocate(marketed, rules=Rules(budget=5000, market_budgets={"US": 500}))
    with pytest.raises(ConfigError, match="budget must be >= 0"):
        allocate(curves, budget=-5)
    with pytest.raises(ConfigError, match="no current_spend"):
        allocate(curves, budget=5000, max_change=0.1)


def test_static_guardrail_keeps_every_line_within_its_band():
    rng = np.random.default_rng(8)
    curves = random_curves(rng, 10, markets=3, bounds=False)
    cur = curves.current()
    plan = allocate(curves, budget=float(cur.sum()), max_change=0.15)
    s = plan.lines["spend"].to_numpy()
    assert (np.abs(s - cur) <= 0.15 * cur * (1 + 1e-7)).all()
    assert any(b["constraint"] == "guardrail" for b in plan.binding)
    free = allocate(curves, budget=float(cur.sum()))
    assert free.total_incremental >= plan.total_incremental - 1e-6
