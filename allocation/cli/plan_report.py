"""The HTML report of a budget plan, in the shared report look (allocation/cli/report.py).

It renders the plan object and never recomputes a statistic: current vs
recommended spend per line, expected incremental outcome, marginal cost per
incremental signup, and the binding constraints.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocation.cli.report import Report, fmt_money, fmt_number
from allocation.curves import CurveSet


def _lines_table(lines: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "channel": lines["name"],
            "market": lines["market"].fillna("—"),
            "current spend per period": [fmt_money(v) for v in lines["current_spend"]],
            "recommended spend per period": [fmt_money(v) for v in lines["spend"]],
            "change": [
                ("—" if not np.isfinite(c) or c == 0 else f"{(s - c) / c:+.1%}")
                for s, c in zip(lines["spend"], lines["current_spend"])
            ],
            "incremental per period": [fmt_number(v, 2) for v in lines["incremental"]],
            "marginal cost per incremental": [
                fmt_money(v) if np.isfinite(v) else "—" for v in lines["cost_per_incremental"]
            ],
            "binding": lines["binding"].replace("", "—"),
        }
    )


def plan_report(
    plan, curves: CurveSet, *, title: str = "Budget plan", frontier=None, robust=None
) -> str:
    """Render a :class:`~allocation.optimize.Plan` or :class:`~allocation.timeplan.TimePlan`."""
    d = plan.to_dict()
    headline = [
        ("status", d["status"]),
        ("objective", d["objective"].replace("_", " ")),
        ("total spend per period", fmt_money(d["total_spend"], 0)),
        ("incremental per period, plan", fmt_number(d["total_incremental"], 1)),
    ]
    if d.get("current_total_incremental") is not None:
        now = d["current_total_incremental"]
        headline.append(("incremental per period, now", fmt_number(now, 1)))
        gain = d["total_incremental"] - now
        headline.append(("gain vs now", f"{gain:+,.1f}" + (f" ({gain / now:+.1%})" if now else "")))
    if d.get("budget_dual"):
        headline.append(("marginal cost per incremental", fmt_money(1.0 / d["budget_dual"])))
    report = Report(
        title,
        subtitle=f"solver {d['solver']} ({d['method'].replace('_', ' ')}), optimality gap "
        f"{d['gap']:.1e}",
        headline=headline,
    )
    lines = plan.lines
    sec = report.section(
        "Current vs recommended spend",
        "Per channel and market: spend per period now and recommended, the expected incremental "
        "outcome per period at the recommended spend, and the marginal cost of one more incremental "
        "signup there (1 / the slope of the curve).",
    )
    sec.table(_lines_table(lines))
    if hasattr(plan, "schedule"):
        sec.figure(
            lambda: _bars(lines), caption="Current and average daily recommended spend per line"
        )
    else:
        sec.figure(
            lambda: plan.plot(show=False)[0], caption="Current and recommended spend per line"
        )
    b = report.section(
        "Binding constraints",
        "Constraints that hold with equality at the optimum; relaxing one changes the plan.",
    )
    if d["binding_constraints"]:
        b.table(
            pd.DataFrame(
                [
                    {
                        "constraint": x["constraint"],
                        "applies to": x.get("line")
                        or x.get("market")
                        or x.get("group")
                        or "all lines",
                        "bound": fmt_money(x.get("value")),
                    }
                    for x in d["binding_constraints"]
                ]
            )
        )
    else:
        b.paragraph("No constraint binds.")
    if hasattr(plan, "schedule"):
        t = report.section(
            "Daily plan",
            "Daily spend per channel (summed over markets) over the horizon; "
            "launch days are marked.",
        )
        t.figure(lambda: plan.plot(show=False)[0], caption="Daily spend by channel")
    if frontier is not None:
        f = report.section(
            "Efficient frontier",
            "Best incremental outcome at each budget, and the marginal cost of "
            "one more incremental signup there (1 / the dual value of the budget).",
        )
        f.figure(
            lambda: frontier.plot(show=False)[0],
            caption="Incremental outcome and marginal cost by budget",
        )
        t = frontier.table
        f.table(
            pd.DataFrame(
                {
                    "budget": [fmt_money(v) for v in t["budget"]],
                    "incremental": [fmt_number(v, 2) for v in t["total_incremental"]],
                    "marginal cost per incremental": [fmt_money(v) for v in t["marginal_cost"]],
                }
            )
        )
    if robust is not None:
        rd = robust.to_dict()
        crit = "expected outcome" if rd["risk"] == "expected" else f"CVaR at {rd['alpha']:.0%}"
        r = report.section(
            "Uncertainty of the curves",
            f"Plan over {rd['n_samples']} samples of the curves, maximising the "
            f"{crit}: "
            f"expected incremental {rd['expected_incremental']:,.1f}, mean of the worst "
            f"{rd['alpha']:.0%} {rd['cvar_incremental']:,.1f}. Stable share: how often a sample's "
            "own optimum is within 10% of the robust spend.",
        )
        r.figure(
            lambda: robust.plot(show=False)[0], caption="Robust spend and the samples' own optima"
        )
        rl = robust.lines
        r.table(
            pd.DataFrame(
                {
                    "line": rl.index,
                    "robust spend": [fmt_money(v) for v in rl["spend"]],
                    "samples' optima 5%": [fmt_money(v) for v in rl["sample_spend_p05"]],
                    "samples' optima 95%": [fmt_money(v) for v in rl["sample_spend_p95"]],
                    "stable share": [f"{v:.0%}" for v in rl["stable_share"]],
                }
            )
        )
    report.notes = [
        "Curves give the steady-state outcome per period for a steady spend per period (curves.json).",
        "Marginal return of budget: dual value of the total-budget constraint, in outcome per unit of spend.",
        f"Method: {d['method']}; the gap is the proven relative distance to the true optimum "
        "(0 for the exact convex model).",
    ]
    return report.render()


def _bars(lines: pd.DataFrame):
    # A daily plan's lines table has the same columns as a static plan's: reuse Plan.plot's drawing.
    from allocation.optimize import Plan

    stub = Plan(
        status="",
        objective="",
        budget=None,
        lines=lines,
        budget_dual=None,
        binding=[],
        solver="",
        method="",
        gap=0.0,
        solve_seconds=0.0,
    )
    return stub.plot(show=False)[0]
