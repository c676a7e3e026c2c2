"""The HTML report of a budget plan, in the shared report look (allocation/cli/report.py).

It renders a :class:`~allocation.workflows.planning.PlanRun` and never recomputes a
statistic: the plan's gain over the current spend with its interval over the curves'
posterior draws, current vs recommended spend per line, expected incremental outcome,
marginal cost per incremental outcome, the binding constraints, and a warnings box.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocation.cli.report import (
    Report,
    currency_context,
    fmt_fixed,
    fmt_money,
    fmt_pct,
    grid_edge_warning,
    money_label,
)
from allocation.curves import CurveSet


def _lines_table(lines: pd.DataFrame, per: str, outcome: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "channel": lines["name"],
            "market": lines["market"].fillna("—"),
            money_label(f"current spend {per}"): [fmt_money(v) for v in lines["current_spend"]],
            money_label(f"recommended spend {per}"): [fmt_money(v) for v in lines["spend"]],
            "change": [
                ("—" if not np.isfinite(c) or c == 0 else f"{(s - c) / c:+.1%}")
                for s, c in zip(lines["spend"], lines["current_spend"])
            ],
            f"incremental {outcome} {per}": [fmt_fixed(v, 2) for v in lines["incremental"]],
            money_label(f"marginal cost per incremental {_one(outcome)}"): [
                fmt_money(v) if np.isfinite(v) else "—" for v in lines["cost_per_incremental"]
            ],
            "binding": lines["binding"].replace("", "—"),
        }
    )


def _one(outcome: str) -> str:
    # "marginal cost per incremental signup": one unit of the outcome.
    return outcome[:-1] if outcome.endswith("s") and not outcome.endswith("ss") else outcome


def _unit(u: dict, per: str) -> str:
    # The library says "per period"; the report names the curves' period.
    return u["unit"].replace("per period", per)


def _channel_bars(lines: pd.DataFrame, per: str):
    # Drawn from the lines' own spend columns: one pair of bars per channel (a plan of many
    # markets has hundreds of lines, too many to draw one by one).
    import matplotlib.pyplot as plt

    by = lines.groupby("name", sort=False)[["current_spend", "spend"]].sum()
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(by) + 1.2))
    y = np.arange(len(by))
    # Inverted axis: the first channel on top, its current bar above its recommended one.
    ax.barh(y - 0.2, by["current_spend"], height=0.4, color="#8a94a6", label="current")
    ax.barh(y + 0.2, by["spend"], height=0.4, color="#2f5fa7", label="recommended")
    ax.set_yticks(y, by.index)
    ax.invert_yaxis()
    ax.set_xlabel(f"spend {per}")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    # Above the axes: a legend inside would cover the longest bars.
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def _channels_table(lines: pd.DataFrame, per: str, outcome: str) -> pd.DataFrame:
    # Sums of the lines' own columns, for reading a plan of many markets at a glance.
    by = lines.groupby("name", sort=False)[["current_spend", "spend", "incremental"]].sum()
    return pd.DataFrame(
        {
            "channel": by.index,
            "markets": lines.groupby("name", sort=False).size().to_numpy(),
            money_label(f"current spend {per}"): [fmt_money(v, 0) for v in by["current_spend"]],
            money_label(f"recommended spend {per}"): [fmt_money(v, 0) for v in by["spend"]],
            "change": [
                ("—" if not np.isfinite(c) or c == 0 else f"{(s - c) / c:+.1%}")
                for s, c in zip(by["spend"], by["current_spend"])
            ],
            f"incremental {outcome} {per}": [fmt_fixed(v, 1) for v in by["incremental"]],
        }
    )


def plan_warnings(run) -> list[str]:
    """What a reader must know before acting on the plan, from the run's own fields."""
    out = []
    d, u, curves = run.result, run.uncertainty, run.curves
    if d["status"] != "optimal":
        out.append(
            f"The solver's status is '{d['status']}', not optimal: the plan may not be the best one."
        )
    if u is None:
        why = (
            "the curves file has no posterior draws"
            if not curves.n_draws
            else "a line has no current spend"
        )
        out.append(
            f"The plan's gain has no interval: {why}. The expected gain assumes the curves are exact."
        )
    else:
        lo, hi = u["gain_interval"]
        out.append(
            "The expected gain is measured on the same curves the plan was chosen on, so it leans on "
            "their errors (the optimizer's curse): read it as an upper figure (docs/allocation.md, "
            "'Does the plan's gain come true?')."
        )
        if lo <= 0 <= hi:
            out.append(
                f"The gain's {u['confidence']:.0%} interval [{lo:,.1f}, {hi:,.1f}] includes zero: under "
                f"{1 - u['probability_gain_positive']:.0%} of the posterior draws the plan does no "
                "better than the current spend."
            )
    # curves.json's "identification" names the lifts that checked each channel (the structural
    # calibration writes it); a CurveSet keeps it in ``meta`` when its loader passes it on.
    ident = (curves.meta or {}).get("identification") or {}
    untested = sorted(ch for ch, v in ident.items() if not v.get("lifts"))
    if untested:
        out.append(
            f"No lift has tested {', '.join(untested)}: their curves rest on the panel and the "
            "causal graph alone, and the plan moves their spend on that alone."
        )
    edge = grid_edge_warning(ident)
    if edge:
        out.append(edge)
    moved = [
        f"{r['name']}" + (f" ({r['market']})" if r.get("market") else "")
        for r in d["lines"]
        if r.get("current_spend")
        and abs(r["spend"] - r["current_spend"]) > 0.5 * r["current_spend"]
    ]
    if moved:
        out.append(
            f"{len(moved)} line(s) move by more than half of their current spend ({', '.join(moved[:5])}"
            + (", ..." if len(moved) > 5 else "")
            + "): far from the spend the curves were fitted on; set a guardrail (--max-change)."
        )
    return out


def render_plan_report(run, *, title: str = "Budget plan", currency: str | None = None) -> str:
    """Render a :class:`~allocation.workflows.planning.PlanRun` (static or daily plan)."""
    with currency_context(currency):
        return _render(run, title=title, currency=currency)


def plan_report(
    plan, curves: CurveSet, *, title: str = "Budget plan", frontier=None, robust=None
) -> str:
    """Render a plan object alone (no gain interval, no frontier unless given)."""
    from allocation.workflows.planning import PlanRun

    d = plan.to_dict()
    run = PlanRun(plan, curves, d, {}, frontier=frontier, robust=robust)
    return render_plan_report(run, title=title)


def _render(run, *, title: str, currency: str | None) -> str:
    plan, curves, frontier, robust = run.plan, run.curves, run.frontier, run.robust
    d = plan.to_dict()
    daily = hasattr(plan, "schedule")
    per = f"per {curves.period}"
    outcome = curves.outcome
    u = run.uncertainty
    headline = [
        ("status", d["status"]),
        ("objective", d["objective"].replace("_", " ")),
        (money_label(f"total spend {per}"), fmt_money(d["total_spend"], 0)),
        (f"incremental {outcome} {per}, plan", fmt_fixed(d["total_incremental"], 1)),
    ]
    if d.get("current_total_incremental") is not None:
        now = d["current_total_incremental"]
        headline.append((f"incremental {outcome} {per}, now", fmt_fixed(now, 1)))
        gain = d["total_incremental"] - now
        headline.append(
            (
                "gain vs now, fitted curves",
                f"{gain:+,.1f}" + (f" ({gain / now:+.1%})" if now else ""),
            )
        )
    if u:
        lo, hi = u["gain_interval"]
        headline.append(
            (
                f"gain over the draws, {u['confidence']:.0%} interval",
                f"{u['expected_gain']:+,.1f} [{lo:+,.1f}, {hi:+,.1f}]",
            )
        )
    if d.get("budget_dual"):
        headline.append(
            (
                money_label(f"marginal cost per incremental {_one(outcome)}"),
                fmt_money(1.0 / d["budget_dual"]),
            )
        )
    report = Report(
        title,
        subtitle=f"solver {d['solver']} ({d['method'].replace('_', ' ')}), optimality gap "
        f"{d['gap']:.1e}",
        headline=headline,
        warnings=plan_warnings(run),
        currency=currency,
    )
    if u:
        g = report.section(
            "The plan's gain and its uncertainty",
            f"The plan's incremental {outcome} and its gain over holding every line at its current "
            f"spend, under each of the {u['n_draws']} posterior draws of the curves ({u['source']}); "
            f"{_unit(u, per)}, central {u['confidence']:.0%} interval. The headline's 'fitted curves' "
            "gain is the same difference on the curves' point estimates.",
        )
        g.table(
            pd.DataFrame(
                {
                    "": [f"incremental {outcome}", "gain over the current spend"],
                    "expected": [
                        fmt_fixed(u["expected_incremental"], 1),
                        f"{u['expected_gain']:+,.1f}",
                    ],
                    f"{u['confidence']:.0%} interval": [
                        " – ".join(fmt_fixed(v, 1) for v in u["incremental_interval"]),
                        " – ".join(f"{v:+,.1f}" for v in u["gain_interval"]),
                    ],
                    "share of draws with a gain": ["—", fmt_pct(u["probability_gain_positive"], 0)],
                }
            )
        )
    lines = plan.lines
    sec = report.section(
        "Current vs recommended spend",
        f"Per channel and market: spend {per} now and recommended, the expected incremental "
        f"{outcome} {per} at the recommended spend, and the marginal cost of one more incremental "
        f"{outcome.rstrip('s')} there (1 / the slope of the curve).",
    )
    long = len(lines) > 20
    if long:
        sec.table(_channels_table(lines, per, outcome), caption="Per channel, summed over markets")
    sec.table(
        _lines_table(lines, per, outcome),
        caption="Per channel and market" if long else "",
        collapsed=long,
    )
    if long:
        sec.figure(
            lambda: _channel_bars(lines, per),
            caption=f"Current and recommended spend {per} per channel, summed over markets",
        )
    elif daily:
        sec.figure(
            lambda: _bars(lines), caption="Current and average daily recommended spend per line"
        )
    else:
        sec.figure(lambda: plan.plot()[0], caption="Current and recommended spend per line")
    b = report.section(
        "Binding constraints",
        "Constraints that hold with equality at the optimum; relaxing one changes the plan.",
    )
    binding = d["binding_constraints"]
    if binding:
        counts = pd.Series([x["constraint"] for x in binding]).value_counts(sort=False)
        if len(binding) > 20:
            b.paragraph(
                "Binding: "
                + ", ".join(
                    f"{name} ({n} line{'s' if n != 1 else ''})" for name, n in counts.items()
                )
                + "."
            )
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
                    for x in binding
                ]
            ),
            caption="Every binding constraint",
            collapsed=len(binding) > 20,
        )
    else:
        b.paragraph("No constraint binds.")
    if daily:
        t = report.section(
            "Daily plan",
            "Daily spend per channel (summed over markets) over the horizon; "
            "launch days are marked.",
        )
        t.figure(lambda: plan.plot()[0], caption="Daily spend by channel")
    if frontier is not None:
        f = report.section(
            "Efficient frontier",
            "Best incremental outcome at each budget, and the marginal cost of "
            "one more incremental signup there (1 / the dual value of the budget).",
        )
        f.figure(
            lambda: frontier.plot()[0],
            caption="Incremental outcome and marginal cost by budget",
        )
        t = frontier.table
        f.table(
            pd.DataFrame(
                {
                    money_label(f"budget {per}"): [fmt_money(v) for v in t["budget"]],
                    f"incremental {outcome} {per}": [
                        fmt_fixed(v, 2) for v in t["total_incremental"]
                    ],
                    money_label(f"marginal cost per incremental {_one(outcome)}"): [
                        fmt_money(v) for v in t["marginal_cost"]
                    ],
                }
            )
        )
    if robust is not None:
        rd = robust.to_dict()
        crit = "expected outcome" if rd["risk"] == "expected" else f"CVaR at {rd['tail']:.0%}"
        r = report.section(
            "Uncertainty of the curves",
            f"Plan over {rd['n_samples']} samples of the curves, maximising the "
            f"{crit}: "
            f"expected incremental {rd['expected_incremental']:,.1f}, mean of the worst "
            f"{rd['tail']:.0%} {rd['cvar_incremental']:,.1f}. Stable share: how often a sample's "
            "own optimum is within 10% of the robust spend.",
        )
        r.figure(lambda: robust.plot()[0], caption="Robust spend and the samples' own optima")
        rl = robust.lines
        r.table(
            pd.DataFrame(
                {
                    "line": rl.index,
                    money_label("robust spend"): [fmt_money(v) for v in rl["spend"]],
                    money_label("samples' optima 5%"): [
                        fmt_money(v) for v in rl["sample_spend_p05"]
                    ],
                    money_label("samples' optima 95%"): [
                        fmt_money(v) for v in rl["sample_spend_p95"]
                    ],
                    "stable share": [f"{v:.0%}" for v in rl["stable_share"]],
                }
            )
        )
    report.notes = [
        f"Curves give the steady-state {outcome} {per} for a steady spend {per} (curves.json).",
        f"Marginal return of budget: dual value of the total-budget constraint, in {outcome} per "
        "unit of spend; its inverse is the marginal cost shown.",
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
    return stub.plot()[0]
