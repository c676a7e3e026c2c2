"""Scenarios: the efficient frontier and allocation over samples of the curves (expected value and CVaR)."""

from __future__ import annotations

import numpy as np
import pytest
from test_alloc_helpers import random_curves

from allocation.optimize import allocate
from allocation.scenarios import budget_sweep, robust_allocate, sample_curves


def test_frontier_is_concave_increasing_and_duals_are_its_slope():
    curves = random_curves(np.random.default_rng(2), 6, bounds=False)
    budgets = np.linspace(1000, 20000, 12)
    fr = budget_sweep(curves, budgets)
    inc = fr.table["total_incremental"].to_numpy()
    assert (np.diff(inc) > 0).all()
    slopes = np.diff(inc) / np.diff(budgets)
    assert (np.diff(slopes) < 1e-9).all()  # diminishing returns
    mr = fr.table["marginal_return"].to_numpy()
    # The dual at each budget brackets the secant slopes on either side (envelope theorem).
    assert (mr[:-1] >= slopes * (1 - 1e-6)).all() and (mr[1:] <= slopes * (1 + 1e-6)).all()
    one = allocate(curves, budget=float(budgets[4]))
    assert inc[4] == pytest.approx(one.total_incremental, rel=1e-8)
    fig, _ = fr.plot()
    assert fig is not None


def test_samples_are_reproducible_and_mean_one():
    curves = random_curves(np.random.default_rng(4), 3, bounds=False)
    a = sample_curves(curves, 400, cv=0.2, seed=9)
    b = sample_curves(curves, 400, cv=0.2, seed=9)
    assert [s.curves[0].params for s in a] == [s.curves[0].params for s in b]
    betas = np.array([s.curves[0].params["beta"] for s in a]) / curves.curves[0].params["beta"]
    assert betas.mean() == pytest.approx(1.0, abs=0.04) and betas.std() == pytest.approx(
        0.2, abs=0.04
    )


def test_expected_value_and_cvar_plans():
    curves = random_curves(np.random.default_rng(6), 5, bounds=False)
    samples = sample_curves(curves, 20, cv=0.3, seed=1)
    budget = 8000.0
    ev = robust_allocate(curves, samples, budget=budget, risk="expected")
    cvar = robust_allocate(curves, samples, budget=budget, risk="cvar", tail=0.2)
    nominal = allocate(curves, budget=budget).lines["spend"].to_numpy()
    mean_nominal = np.mean([s.evaluate(nominal).sum() for s in samples])
    # Each plan is best on its own criterion (global optima of concave problems).
    assert ev.outcomes.mean() >= mean_nominal - 1e-6 * abs(mean_nominal)
    assert ev.outcomes.mean() >= cvar.outcomes.mean() - 1e-6 * abs(mean_nominal)
    d_ev, d_cvar = ev.to_dict(), cvar.to_dict()
    assert d_cvar["cvar_incremental"] >= d_ev["cvar_incremental"] - 1e-6 * abs(mean_nominal)
    assert ev.lines["spend"].sum() == pytest.approx(budget, rel=1e-6)
    assert ((ev.lines["stable_share"] >= 0) & (ev.lines["stable_share"] <= 1)).all()
    fig, _ = cvar.plot()
    assert fig is not None


def test_samples_from_the_file_are_used_when_every_line_has_them():
    from allocation.curves import CurveSet

    cs = CurveSet.from_dict(
        {
            "channels": [
                {
                    "name": "a",
                    "response": {"form": "log", "beta": 10, "scale": 100},
                    "samples": [{"beta": 8, "scale": 100}, {"beta": 12, "scale": 90}],
                },
                {
                    "name": "b",
                    "response": {"form": "exp", "beta": 20, "scale": 300},
                    "samples": [{"beta": 18, "scale": 310}, {"beta": 22, "scale": 280}],
                },
            ]
        }
    )
    draws = sample_curves(cs, 4, seed=0)
    assert [d.curves[0].params["beta"] for d in draws] == [8, 12, 8, 12]
    assert draws[1].curves[1].params == {"beta": 22, "scale": 280}


def test_results_share_one_protocol():
    """summary() is a Summary with readable numbers, plot() returns (fig, ax), tail names the CVaR share."""
    from allocation.business_rules import Rules
    from allocation.daily_plan import plan_days
    from causal.summary import Summary

    curves = random_curves(np.random.default_rng(6), 5, bounds=False)
    samples = sample_curves(curves, 10, cv=0.3, seed=1)
    cvar = robust_allocate(curves, samples, budget=8000.0, risk="cvar", tail=0.2)
    assert cvar.to_dict()["tail"] == 0.2
    results = [
        allocate(curves, budget=8000.0),
        plan_days(curves, Rules(budget=8000.0 * 7), days=7),
        budget_sweep(curves, np.array([4000.0, 8000.0])),
        cvar,
    ]
    for r in results:
        s = r.summary()
        assert isinstance(s, Summary) and s.tables and "e+0" not in str(s)
        fig, ax = r.plot()
        assert ax.figure is fig


def test_samples_may_move_a_curves_shape():
    """Posterior draws of the structural model vary the Hill shape: each sample keeps its own form."""
    curves = random_curves(np.random.default_rng(6), 5, bounds=False)
    rng = np.random.default_rng(2)
    samples = []
    for _ in range(8):
        params = []
        for c in curves:
            p = dict(c.params)
            if c.form == "hill":
                p["shape"] = float(rng.uniform(0.5, 1.0))
            params.append(p)
        samples.append(curves.with_params(params))
    assert len({tuple(s.curves[i].params.get("shape", 0) for i in range(5)) for s in samples}) > 1
    plan = robust_allocate(curves, samples, budget=8000.0, risk="expected")
    # The expected-value plan is at least as good, on the samples' mean, as each sample's own optimum.
    for own in plan.per_sample_spend:
        mean_own = np.mean([s.evaluate(own).sum() for s in samples])
        assert plan.outcomes.mean() >= mean_own - 1e-6 * abs(mean_own)
