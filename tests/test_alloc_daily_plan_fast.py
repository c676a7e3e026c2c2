"""The vectorised daily-plan build against an independent, written-out formulation, on small instances.

``plan_days`` builds the rolling 7-day guardrail as one matrix constraint per lag
and sign and folds the history days into a box on the first plan days
(``guardrail_box``). The reference below writes the same problem out
independently: the adstock recursion as one equality row per day, and the
guardrail as explicit pairwise rows over the concatenated history and plan days.
Any faster reformulation of ``plan_days`` must keep reaching the same optimum
(1e-6 relative), so this is the parity check for speed work on the daily plan.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from test_alloc_helpers import random_curves

from allocation.business_rules import Rules
from allocation.constraints import WINDOW, guardrail_violation
from allocation.curves import CurveSet
from allocation.daily_plan import plan_days
from allocation.launches import Launch, LaunchCalendar
from allocation.problem import concave_response, scaling, solve_robust, structure_key


def _instance(seed: int, n: int = 8) -> CurveSet:
    rng = np.random.default_rng(seed)
    d = random_curves(rng, n, markets=2).to_dict()
    names = ["ctv", "nonbrand_search", "social", "programmatic"]
    for i, line in enumerate(d["channels"]):
        line["name"] = f"{names[i % 4]}{i // 4}"
        # Floors and ceilings off the guardrail band would make some seeds infeasible; one ceiling inside it.
        line.pop("min_spend", None)
        line.pop("max_spend", None)
        if i == 1:
            line["max_spend"] = 1.1 * line["current_spend"]
        if rng.random() < 0.8:
            line["adstock"] = {"form": "geometric", "decay": float(rng.uniform(0, 0.7))}
    return CurveSet.from_dict(d)


def _reference(
    curves: CurveSet,
    *,
    budget: float,
    mode: str,
    max_change: float,
    days: int,
    calendar: LaunchCalendar | None,
    history: np.ndarray,
    market_caps: dict[str, float],
) -> float:
    """Optimum of the previous formulation (explicit spend, adstock rows, pairwise guardrail rows)."""
    n, h = history.shape
    cur = curves.current()
    lam = np.array([c.decay for c in curves])
    a0 = history[:, 0].copy()
    for t in range(1, h):
        a0 = (1 - lam) * history[:, t] + lam * a0
    cs = np.array([scaling(c, cur[i]) for i, c in enumerate(curves)])
    coef, scale = cs[:, 0], cs[:, 1]
    x = cp.Variable((n, days), nonneg=True)
    w = cp.Variable((n, days), nonneg=True)
    cons = [w[:, 0] == cp.multiply((1 - lam) / scale, x[:, 0]) + lam * a0 / scale]
    for t in range(1, days):
        cons.append(
            w[:, t] == cp.multiply((1 - lam) / scale, x[:, t]) + cp.multiply(lam, w[:, t - 1])
        )
    lo = np.array([c.min_spend or 0.0 for c in curves])
    cons.append(x >= lo[:, None])
    hi = np.array([c.max_spend if c.max_spend is not None else np.inf for c in curves])
    fin = np.isfinite(hi)
    if fin.any():
        cons.append(x[fin, :] <= hi[fin][:, None])
    total = cp.sum(x)
    cons.append(total == budget if mode == "eq" else total <= budget)
    seq = cp.hstack([cp.Constant(history), x])
    band = max_change * cur * (1 - 1e-6)  # the same margin for the solver's tolerance as plan_days
    for t in range(h, h + days):
        for k in range(1, WINDOW):
            if t - k >= 0:
                cons.append(cp.abs(seq[:, t] - seq[:, t - k]) <= band)
    for m, cap in market_caps.items():
        sel = [i for i, c in enumerate(curves) if c.market == m]
        cons.append(cp.sum(x[sel, :], axis=0) <= cap)
    mult = calendar.multipliers(curves, days) if calendar is not None else np.ones((n, days))
    obj = concave_response(w, list(structure_key(curves)), coef[:, None] * mult)
    prob = cp.Problem(cp.Maximize(obj), cons)
    solve_robust(
        prob, "CLARABEL"
    )  # as the previous builder did: retries a stalled solve with shorter steps
    assert prob.status == cp.OPTIMAL
    return float(prob.value)


@pytest.mark.parametrize(
    "seed,mode,share,hist_days,market_cap",
    [
        (0, "le", 0.95, 1, False),
        (1, "le", 1.4, 3, False),
        (2, "eq", 1.1, 6, True),
        (3, "le", 1.3, 2, True),
    ],
)
def test_plan_days_matches_written_out_formulation(seed, mode, share, hist_days, market_cap):
    curves = _instance(seed)
    rng = np.random.default_rng(100 + seed)
    cur = curves.current()
    days = 14
    # A history that moves within the guardrail, so the windows reaching back into it bind.
    history = cur[:, None] * (1 + rng.uniform(-0.05, 0.05, (len(cur), hist_days)))
    history[:, -1] = cur
    cal = LaunchCalendar([Launch(day=int(rng.integers(3, 10)), market="M0", strength=1.0)])
    budget = float(cur.sum() * days * share)
    caps = {"M1": float(cur[[c.market == "M1" for c in curves]].sum() * 1.02)} if market_cap else {}
    rules = Rules(budget=budget, budget_mode=mode, max_change=0.15, market_budgets=caps)
    plan = plan_days(curves, rules, days=days, calendar=cal, history=history)
    ref = _reference(
        curves,
        budget=budget,
        mode=mode,
        max_change=0.15,
        days=days,
        calendar=cal,
        history=history,
        market_caps=caps,
    )
    got = float(plan.response.to_numpy().sum())
    assert got == pytest.approx(ref, rel=1e-6)
    assert guardrail_violation(plan.schedule.to_numpy(), history, cur, 0.15) <= 1 + 1e-9
    assert plan.schedule.to_numpy().sum() <= budget * (1 + 1e-7)


def test_reported_response_follows_adstock_recursion():
    # The reported daily outcome is the curves evaluated on the adstock of the reported spend.
    curves = _instance(5, n=4)
    cur = curves.current()
    plan = plan_days(curves, Rules(budget=float(cur.sum() * 10), max_change=0.15), days=10)
    lam = np.array([c.decay for c in curves])
    spend = plan.schedule.to_numpy()
    assert (spend >= 0).all()
    ad, prev = np.empty_like(spend), cur.copy()
    for t in range(spend.shape[1]):
        prev = (1 - lam) * spend[:, t] + lam * prev
        ad[:, t] = prev
    resp = np.array([c.evaluate(ad[i]) for i, c in enumerate(curves)])
    np.testing.assert_allclose(plan.response.to_numpy(), resp, rtol=1e-9)
