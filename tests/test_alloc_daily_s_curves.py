"""Daily plans on S-shaped curves (with a certificate) and with market budgets in the structured solver.

The S-curve planner's objective is compared with a mixed-integer piecewise-linear
reference (allocation.daily_pwl, 80 pieces: finer than the 40 the planner uses when it
falls back on it) on small instances: the planner must reach the
reference's true outcome within 0.1%, and its reported gap must bound its distance
to the reference's proven upper bound.
"""

from __future__ import annotations

import numpy as np
import pytest

from allocation.business_rules import Rules
from allocation.constraints import guardrail_violation
from allocation.curves import CurveSet
from allocation.daily_plan import plan_days
from allocation.daily_pwl import daily_outcome, solve_daily_pwl


def _s_instance(seed: int, n: int = 3) -> CurveSet:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        k = float(rng.uniform(500, 2000))
        s_shaped = i < 2
        lines.append(
            {
                "name": f"ch{i}",
                "market": f"M{i % 2}",
                "response": {
                    "form": "hill",
                    "beta": float(rng.uniform(50, 200)),
                    "half_saturation": k,
                    "shape": float(rng.uniform(1.6, 3.0)) if s_shaped else 1.0,
                },
                # Some S-lines start below their inflection point: the guardrail band is not concave.
                "current_spend": float(k * rng.uniform(0.3, 1.3)),
                "adstock": {"form": "geometric", "decay": float(rng.uniform(0.0, 0.6))},
            }
        )
    return CurveSet.from_dict({"channels": lines})


@pytest.mark.parametrize(
    "seed,max_change,days",
    [
        (0, 0.5, 7),
        (3, 0.15, 7),
        pytest.param(4, 0.6, 7, marks=pytest.mark.slow),
        pytest.param(1, 0.3, 10, marks=pytest.mark.slow),
        pytest.param(2, None, 10, marks=pytest.mark.slow),
        pytest.param(0, 0.5, 10, marks=pytest.mark.slow),
        pytest.param(4, 0.6, 10, marks=pytest.mark.slow),
    ],
)
def test_s_curve_daily_plan_matches_the_milp_reference(seed, max_change, days):
    curves = _s_instance(seed)
    cur = curves.current()
    budget = float(cur.sum() * days * 1.1)
    plan = plan_days(curves, Rules(budget=budget, max_change=max_change), days=days)
    cert = plan.to_dict()["certificate"]
    assert cert["kind"] in ("concave_in_band", "concave_envelope")
    lam = np.array([c.decay for c in curves])
    start = cur.copy()
    mult = np.ones((len(curves), days))
    spend = plan.schedule.to_numpy()
    ours = daily_outcome(curves, spend, lam, start, mult)
    assert ours == pytest.approx(plan.response.to_numpy().sum(), rel=1e-9)
    if max_change is not None:
        assert guardrail_violation(spend, cur[:, None], cur, max_change) <= 1 + 1e-9
    assert spend.sum() <= budget * (1 + 1e-9)
    band = None if max_change is None else max_change * cur
    lo = np.zeros((len(curves), days))
    hi = np.full((len(curves), days), np.inf)
    if band is not None:
        from allocation.constraints import guardrail_box

        lo, hi = guardrail_box(cur[:, None], days, band)
    ref = solve_daily_pwl(
        curves, lo=lo, hi=hi, band=band, decay=lam, start=start, mult=mult, budget=budget, pieces=80
    )
    print(
        f"seed {seed}: plan {ours:.4f} ({cert['kind']}, gap {plan.gap:.2e}); MILP {ref.outcome:.4f}, "
        f"bound {ref.upper_bound:.4f}; plan vs MILP {(ours - ref.outcome) / ref.outcome:+.2e}"
    )
    assert ours >= ref.outcome * (1 - 1e-3)
    # the planner's certificate is a true upper bound: the MILP's plan cannot beat it
    if cert["kind"] == "concave_envelope":
        assert ref.outcome <= cert["upper_bound"] * (1 + 1e-6)


def test_market_budgets_in_the_structured_solver_match_clarabel():
    rng = np.random.default_rng(7)
    lines = []
    for i in range(12):
        lines.append(
            {
                "name": f"ch{i % 4}",
                "market": f"M{i // 4}",
                "response": {
                    "form": ["exp", "log", "hill"][i % 3],
                    "beta": float(rng.uniform(50, 200)),
                    **(
                        {"half_saturation": float(rng.uniform(500, 2000)), "shape": 0.8}
                        if i % 3 == 2
                        else {"scale": float(rng.uniform(500, 2000))}
                    ),
                },
                "current_spend": float(rng.uniform(300, 1500)),
                "adstock": {"form": "geometric", "decay": float(rng.uniform(0, 0.7))},
            }
        )
    curves = CurveSet.from_dict({"channels": lines})
    cur = curves.current()
    caps = {
        f"M{m}": float(cur[4 * m : 4 * m + 4].sum() * f) for m, f in enumerate((0.9, 1.05, 2.0))
    }
    rules = Rules(budget=float(cur.sum() * 14 * 1.2), max_change=0.3, market_budgets=caps)
    fast = plan_days(curves, rules, days=14, solver="structured")
    ref = plan_days(curves, rules, days=14, solver="CLARABEL")
    assert "structured" in fast.method
    a, b = fast.response.to_numpy().sum(), ref.response.to_numpy().sum()
    assert a == pytest.approx(b, rel=1e-5)
    spend = fast.schedule.to_numpy()
    for m, cap in caps.items():
        rows = [i for i, c in enumerate(curves) if c.market == m]
        assert spend[rows].sum(axis=0).max() <= cap * (1 + 1e-7)
    assert {"market_budgets"} <= {x["constraint"] for x in fast.binding}
