"""Daily plans: adstock carryover, the rolling 7-day guardrail, the launch calendar, the re-plan."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_alloc_helpers import random_curves

from allocation.business_rules import Rules
from allocation.constraints import guardrail_violation
from allocation.curves import CurveSet
from allocation.daily_plan import plan_days, replan
from allocation.launches import Launch, LaunchCalendar
from allocation.optimize import allocate
from causal.errors import ConfigError, InfeasibleError


def _with_decay(curves: CurveSet, rng) -> CurveSet:
    d = curves.to_dict()
    names = ["ctv", "nonbrand_search", "social", "programmatic"]
    for i, line in enumerate(d["channels"]):
        line["adstock"] = {"form": "geometric", "decay": float(rng.uniform(0, 0.7))}
        line["name"] = names[i % 4]
        line["market"] = f"M{i // 4}"
    return CurveSet.from_dict(d)


def test_no_carryover_no_guardrail_equals_static_plan_every_day():
    rng = np.random.default_rng(1)
    curves = random_curves(rng, 5, bounds=False)
    daily_budget = 6000.0
    plan = plan_days(curves, Rules(budget=daily_budget * 10), days=10)
    static = allocate(curves, budget=daily_budget)
    np.testing.assert_allclose(
        plan.schedule.to_numpy(),
        static.lines["spend"].to_numpy()[:, None] * np.ones(10),
        rtol=2e-3,
        atol=0.5,
    )
    assert plan.response.to_numpy().sum() == pytest.approx(10 * static.total_incremental, rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_guardrail_never_violated(seed):
    rng = np.random.default_rng(seed)
    curves = _with_decay(random_curves(rng, 12, bounds=False), rng)
    cal = LaunchCalendar([Launch(day=int(rng.integers(5, 20)), market="M0", strength=1.5)])
    cur = curves.current()
    for budget in (cur.sum() * 28 * 0.7, cur.sum() * 28 * 1.4):
        plan = plan_days(
            curves, Rules(budget=float(budget), max_change=0.15), days=28, calendar=cal
        )
        assert guardrail_violation(plan.schedule.to_numpy(), plan.history, cur, 0.15) <= 1 + 1e-9
        assert plan.schedule.to_numpy().sum() <= budget * (1 + 1e-7)
        again = replan(plan.to_dict(), curves, elapsed=2)
        assert guardrail_violation(again.schedule.to_numpy(), again.history, cur, 0.15) <= 1 + 1e-9
        # The re-plan's windows reach back into the two days already run.
        assert again.history.shape[1] == 3
        np.testing.assert_allclose(again.history[:, 1:], plan.schedule.to_numpy()[:, :2])


def test_launch_calendar_shifts_spend_to_awareness_before_and_search_after():
    curves = CurveSet.from_dict(
        {
            "channels": [
                {
                    "name": "ctv",
                    "market": "US",
                    "response": {
                        "form": "hill",
                        "beta": 200,
                        "half_saturation": 3000,
                        "shape": 0.8,
                    },
                    "adstock": {"form": "geometric", "decay": 0.5},
                    "current_spend": 1500.0,
                },
                {
                    "name": "social",
                    "market": "US",
                    "response": {"form": "exp", "beta": 120, "scale": 2000},
                    "adstock": {"form": "geometric", "decay": 0.3},
                    "current_spend": 800.0,
                },
                {
                    "name": "nonbrand_search",
                    "market": "US",
                    "response": {"form": "log", "beta": 60, "scale": 800},
                    "adstock": {"form": "geometric", "decay": 0.1},
                    "current_spend": 900.0,
                },
                {
                    "name": "nonbrand_search",
                    "market": "UK",
                    "response": {"form": "log", "beta": 60, "scale": 800},
                    "current_spend": 900.0,
                },
            ]
        }
    )
    launch = 14
    cal = LaunchCalendar([Launch(day=launch, market="US", strength=1.0, pre_days=7, post_days=7)])
    rules = Rules(max_change=0.3)
    base = plan_days(curves, rules, days=28)
    with_launch = plan_days(curves, rules, days=28, calendar=cal)
    pre, post = slice(launch - 7, launch), slice(launch, launch + 5)
    s0, s1 = base.schedule.to_numpy(), with_launch.schedule.to_numpy()
    awareness = [0, 1]
    assert s1[awareness, pre].sum() > s0[awareness, pre].sum() * 1.05
    assert s1[2, post].sum() > s0[2, post].sum() * 1.05
    # Share of US spend in awareness channels is higher before the launch than after it.
    us = s1[:3]
    share_pre = us[awareness, pre].sum() / us[:, pre].sum()
    share_post = us[awareness, post].sum() / us[:, post].sum()
    assert share_pre > share_post
    assert guardrail_violation(s1, with_launch.history, curves.current(), 0.3) <= 1 + 1e-9
    fig, _ = with_launch.plot()
    assert fig is not None


def test_time_plan_errors_name_the_cause(tmp_path):
    curves = CurveSet.from_dict(
        {
            "channels": [
                {
                    "name": "a",
                    "response": {"form": "log", "beta": 10, "scale": 100},
                    "current_spend": 100.0,
                    "min_spend": 300.0,
                },
                {"name": "b", "response": {"form": "log", "beta": 10, "scale": 100}},
            ]
        }
    )
    with pytest.raises(ConfigError, match="line b has no current_spend"):
        plan_days(curves, Rules(budget=1000, max_change=0.1), days=7)
    only_a = CurveSet.from_dict({"channels": [curves.to_dict()["channels"][0]]})
    with pytest.raises(InfeasibleError, match="line a day 0: the guardrail window"):
        plan_days(only_a, Rules(budget=100000, max_change=0.1), days=7)
    bad = tmp_path / "cal.json"
    bad.write_text(json.dumps({"launches": [{"market": "US"}]}))
    with pytest.raises(ValueError, match=r"launches\[0\]: needs key 'day'"):
        LaunchCalendar.load(bad)
