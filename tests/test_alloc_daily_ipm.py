"""The structured interior-point solver of the daily plan against Clarabel on the same cvxpy problem.

``plan_days`` picks the structured solver (allocation.daily_ipm) whenever no market
or group budget couples lines day by day. These tests solve random instances both
ways, with every concave form (exp, log, hill with shape < 1 and = 1, power < 1,
), floors, ceilings, a launch calendar, a history reaching
into the guardrail windows and both budget modes, and require the same optimum.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_alloc_helpers import random_curves

from allocation.business_rules import Rules
from allocation.constraints import guardrail_violation
from allocation.curves import CurveSet
from allocation.daily_plan import plan_days
from allocation.launches import Launch, LaunchCalendar
from causal.errors import ConfigError


def _instance(seed: int, n: int = 10) -> CurveSet:
    rng = np.random.default_rng(seed)
    d = random_curves(rng, n, markets=3).to_dict()
    names = ["ctv", "nonbrand_search", "social", "programmatic", "brand_search"]
    for i, line in enumerate(d["channels"]):
        line["name"] = f"{names[i % 5]}{i // 5}"
        cur = line["current_spend"]
        # Floors and ceilings around the current spend, so the guardrail band and they can both be met.
        if line.get("min_spend") is not None:
            line["min_spend"] = 0.5 * cur
        if line.get("max_spend") is not None:
            line["max_spend"] = 1.6 * cur
        if rng.random() < 0.8:
            line["adstock"] = {"form": "geometric", "decay": float(rng.uniform(0, 0.8))}
    return CurveSet.from_dict(d)


CASES = [  # seed, budget mode, budget / current, history days, guardrail, calendar
    (0, "le", 0.9, 1, 0.15, True),
    (1, "eq", 1.2, 3, 0.15, True),
    (2, "le", 1.5, 6, 0.10, False),
    (3, "eq", 0.8, 2, 0.25, True),
    (4, "le", 1.1, 1, None, True),
    (5, "eq", 1.0, 4, None, False),
    (6, "le", 3.0, 5, 0.15, True),
]


@pytest.mark.parametrize("seed,mode,share,hist_days,max_change,launch", CASES)
def test_structured_solver_reaches_clarabels_optimum(
    seed, mode, share, hist_days, max_change, launch
):
    curves = _instance(seed)
    rng = np.random.default_rng(50 + seed)
    cur = curves.current()
    days = 21
    history = cur[:, None] * (1 + rng.uniform(-0.04, 0.04, (len(cur), hist_days)))
    history[:, -1] = cur
    cal = (
        LaunchCalendar([Launch(day=int(rng.integers(4, 15)), market="M1", strength=1.5)])
        if launch
        else None
    )
    rules = Rules(budget=float(cur.sum() * days * share), budget_mode=mode, max_change=max_change)
    fast = plan_days(curves, rules, days=days, calendar=cal, history=history, solver="structured")
    ref = plan_days(curves, rules, days=days, calendar=cal, history=history, solver="CLARABEL")
    assert "structured" in fast.method and "structured" not in ref.method
    got, want = fast.response.to_numpy().sum(), ref.response.to_numpy().sum()
    assert got == pytest.approx(want, rel=1e-7)
    # The budget's shadow price: the extra outcome of one more unit of budget.
    assert fast.budget_dual == pytest.approx(ref.budget_dual, rel=1e-3, abs=1e-9)
    spend = fast.schedule.to_numpy()
    if max_change is not None:
        assert guardrail_violation(spend, history, cur, max_change) <= 1.0
    assert spend.sum() <= rules.budget * (1 + 1e-9)
    if mode == "eq":
        assert spend.sum() == pytest.approx(rules.budget, rel=1e-9)
    floors = np.array([c.min_spend or 0.0 for c in curves])
    ceilings = np.array([c.max_spend if c.max_spend is not None else np.inf for c in curves])
    assert (spend >= floors[:, None] - 1e-9).all() and (spend <= ceilings[:, None] + 1e-9).all()
    assert {b["line"] for b in fast.binding if b["constraint"] == "guardrail"} == {
        b["line"] for b in ref.binding if b["constraint"] == "guardrail"
    }


def test_auto_uses_the_structured_solver_unless_groups_couple_lines():
    # Market budgets enter the structured solver (one T x T block per market); channel groups
    # across markets do not, and a linear curve makes a line's block singular.
    curves = _instance(7)
    cur = curves.current()
    rules = Rules(budget=float(cur.sum() * 14), max_change=0.15)
    assert "structured" in plan_days(curves, rules, days=14).method
    caps = Rules(budget=float(cur.sum() * 14), max_change=0.15, market_budgets={"M0": 1e9})
    assert "structured" in plan_days(curves, caps, days=14).method
    groups = Rules(
        budget=float(cur.sum() * 14),
        max_change=0.15,
        group_budgets={"g": {"channels": [curves.names[0]], "max": 1e9}},
    )
    plan = plan_days(curves, groups, days=14)
    assert "structured" not in plan.method and plan.solver == "CLARABEL"
    with pytest.raises(ConfigError, match="group budgets couple lines"):
        plan_days(curves, groups, days=14, solver="structured")
    d = curves.to_dict()
    d["channels"][0]["response"] = {"form": "linear", "beta": 0.05}
    d["channels"][0]["max_spend"] = 2.0 * d["channels"][0]["current_spend"]
    linear = CurveSet.from_dict(d)
    plan = plan_days(linear, rules, days=14)
    assert "structured" not in plan.method and plan.solver == "CLARABEL"
    with pytest.raises(ConfigError, match="has a linear curve"):
        plan_days(linear, rules, days=14, solver="structured")


def test_cli_daily_plan_names_the_structured_solver(tmp_path, run_cli):
    curves = _instance(8)
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(curves.to_dict()), encoding="utf-8")
    caps = tmp_path / "constraints.json"
    caps.write_text(
        json.dumps({"group_budgets": {"g": {"channels": [curves.names[0]], "max": 1e9}}}),
        encoding="utf-8",
    )
    code, _, err = run_cli(
        "allocate",
        "--curves",
        str(path),
        "--days",
        "14",
        "--max-change",
        "0.15",
        "--out",
        str(tmp_path / "plan.json"),
        "--audit-db",
        str(tmp_path / "audit.db"),
    )
    assert code == 0, err
    plan = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert "structured" in plan["method"] and plan["status"] == "optimal"
    code, _, err = run_cli(
        "allocate",
        "--curves",
        str(path),
        "--days",
        "14",
        "--max-change",
        "0.15",
        "--solver",
        "structured",
        "--constraints",
        str(caps),
        "--out",
        str(tmp_path / "plan2.json"),
        "--audit-db",
        str(tmp_path / "audit.db"),
    )
    assert code == 2 and err.strip().count("\n") == 0 and "group budgets couple lines" in err
    assert not (tmp_path / "plan2.json").exists()


@pytest.mark.parametrize(
    "form,shape",
    [("exp", 1.0), ("log", 1.0), ("hill", 0.6), ("hill", 1.0), ("power", 0.5), ("linear", 1.0)],
)
def test_curve_derivatives_match_finite_differences(form, shape):
    # The interior-point method's Newton steps rest on these first and second derivatives.
    from allocation.daily_ipm import SUPPORTED, curve_terms

    z = np.array([[0.05, 0.3, 1.0, 2.5, 7.0]])
    code = np.array([SUPPORTED.index(form)])
    h = 1e-6 * np.maximum(z, 1e-3)
    g, g1, g2 = curve_terms(code, np.array([shape]), z)
    gp, g1p, _ = curve_terms(code, np.array([shape]), z + h)
    gm, g1m, _ = curve_terms(code, np.array([shape]), z - h)
    np.testing.assert_allclose(g1, (gp - gm) / (2 * h), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(g2, (g1p - g1m) / (2 * h), rtol=1e-5, atol=1e-8)
    assert (g2 <= 1e-12).all()  # concave
