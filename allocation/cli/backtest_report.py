"""The HTML report of a closed-loop backtest, in the shared report look (allocation/cli/report.py).

It renders a :class:`~allocation.backtest.BacktestResult` and never recomputes a
statistic: per policy the true incremental signups, cost per incremental signup
and share of the oracle, the cumulative curves, the signups the daily loop gave
up to run its tests, its tests and its decision log.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from allocation.cli.report import Report, currency_context, fmt_fixed, fmt_money, fmt_pct


def _policy_table(result) -> pd.DataFrame:
    t = result.summary_table
    return pd.DataFrame(
        {
            "policy": t.index,
            "spend": [fmt_money(v, 0) for v in t["spend"]],
            "true incremental signups": [fmt_fixed(v) for v in t["incremental"]],
            "cost per incremental signup": [fmt_money(v) for v in t["cost_per_incremental"]],
            "share of oracle": [fmt_pct(v) for v in t["share_of_oracle"]],
            "cost per incremental vs status quo (own spend)": [
                fmt_pct(v) for v in t.get("cpi_vs_status_quo", [None] * len(t))
            ],
            "equal spend: incremental": [
                fmt_fixed(v) for v in t.get("equal_incremental", [None] * len(t))
            ],
            "equal spend: cost per incremental": [
                fmt_money(v) for v in t.get("equal_cost_per_incremental", [None] * len(t))
            ],
            "equal spend: share of oracle's gain": [
                fmt_pct(v) for v in t.get("share_of_oracle_gain", [None] * len(t))
            ],
        }
    )


def _cpi_figure(result):
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, g in result.daily.groupby("policy", sort=False):
        ax.plot(pd.to_datetime(g["date"]), g["cum_spend"] / g["cum_incremental"], label=name)
    ax.set_ylabel("cumulative cost per incremental signup")
    ax.legend()
    return fig


def backtest_report(
    result, *, title: str = "Closed-loop backtest", currency: str | None = None
) -> str:
    """Render a backtest result as HTML; money in ``currency`` when given."""
    with currency_context(currency):
        return _render(result, title, currency)


def _render(result, title: str, currency: str | None) -> str:
    s, t = result.settings, result.summary_table
    headline = [
        ("horizon", f"{s['horizon'][0]} .. {s['horizon'][1]}"),
        ("daily budget", fmt_money(s["budget"], 0)),
    ]
    # The headline compares policies at equal spend (their plans run without test cuts): a loop's
    # tests switch spend off, so its own spend is lower and its cost per incremental not comparable.
    for name in ("daily loop", "quarterly calibrated"):
        if name in t.index and "share_of_oracle_gain" in t:
            headline.append(
                (
                    f"{name}, equal spend: share of the oracle's gain",
                    fmt_pct(t.loc[name, "share_of_oracle_gain"]),
                )
            )
    if {"daily loop", "status quo"} <= set(t.index) and "equal_cost_per_incremental" in t:
        headline.append(
            (
                "daily loop, equal spend: cost per incremental (status quo)",
                f"{fmt_money(t.loc['daily loop', 'equal_cost_per_incremental'])} "
                f"({fmt_money(t.loc['status quo', 'equal_cost_per_incremental'])})",
            )
        )
    report = Report(
        title,
        subtitle=f"world seed {s['world_seed']}, {s['n_geos']} markets, backtest seed {s['seed']}",
        headline=headline,
        currency=currency,
    )
    report.section(
        "Policies against the truth",
        "True incremental signups are read from the simulated world (same random draws for every "
        "policy), so the differences are exact. The daily loop's figures include the signups its "
        "tests gave up.",
    ).table(_policy_table(result))
    sec = report.section("Over time")
    sec.figure(lambda: result.plot()[0], caption="Cumulative true incremental signups per policy")
    sec.figure(
        lambda: _cpi_figure(result), caption="Cumulative cost per incremental signup per policy"
    )
    g = result.given_up
    report.section(
        "The price of learning",
        f"The daily loop's go-dark tests gave up {fmt_fixed(g['signups'])} incremental signups and "
        f"saved {fmt_money(g['spend'], 0)} of spend (its plan run with and without the tests). "
        f"Largest 7-day move over the 15% guardrail: {result.guardrail:.3f} (at most 1 keeps the rule); "
        f"overlapping tests: {len(result.overlaps)}.",
    )
    if len(result.loops) > 1 or result.credit is not None:
        loops = pd.DataFrame(
            [
                {
                    "loop": name,
                    "tests": r["n_tests"],
                    "signups given up": fmt_fixed(r["given_up"]["signups"]),
                    "guardrail ratio": f"{r['guardrail']:.3f}",
                    "overlapping tests": len(r["overlaps"]),
                }
                for name, r in result.loops.items()
            ]
        )
        sec = report.section(
            "Which tests: value of information, round-robin or none",
            "Every loop runs one go-dark test a week of the same length on the same number of markets "
            "(equal test budget) and plans at the same budget (equal spend); the structural loops differ "
            "only in how each week's test is chosen.",
        )
        sec.table(loops)
        if result.credit is not None:
            credit = result.credit.map(lambda v: f"{v:.2f}x")
            credit.index.name = "loop"
            sec.table(
                credit.reset_index(),
                caption="Each channel's credit over the panel at the horizon's end, over its truth",
            )
    if result.tests:
        tests = pd.DataFrame(result.tests)
        tests["geos"] = tests["geos"].map(", ".join)
        for col in ("incremental",):
            if col in tests:
                tests[col] = [
                    fmt_fixed(v) if pd.notna(v) else "not read (ran past the horizon)"
                    for v in tests[col]
                ]
        if "incremental_ci" in tests:
            tests["incremental_ci"] = [
                f"[{fmt_fixed(v[0])}, {fmt_fixed(v[1])}]" if isinstance(v, list) else "—"
                for v in tests["incremental_ci"]
            ]
        if "replicates" in tests:  # the index of the held test this one runs again
            tests["replicates"] = [
                "—" if pd.isna(i) else "the test from " + result.tests[int(i)]["start"]
                for i in tests["replicates"]
            ]
        for col in ("held", "unused"):
            if col in tests:
                tests[col] = tests[col].fillna("—")
        if "design_mde" in tests:
            tests["design_mde"] = [f"{v:.1%}" if pd.notna(v) else "—" for v in tests["design_mde"]]
        if "design_power_at_mde" in tests:
            tests["design_power_at_mde"] = [
                f"{v:.2f}" if pd.notna(v) else "—" for v in tests["design_power_at_mde"]
            ]
        report.section(
            "The daily loop's tests",
            "Each week's markets are the design module's recommendation among the cluster's free "
            "markets (experiments.design: the readout simulated on the recent history; design_mde is "
            "the smallest lift it detects with 80% power), unless proposer says random.",
        ).table(tests)
    if len(result.decisions):
        d = result.decisions.copy()
        for col in ("total_spend", "largest_move"):
            d[col] = [fmt_money(v, 0) for v in d[col]]
        report.section(
            "The daily loop's decision log", "One re-plan a day; each is also in the audit trail."
        ).table(d)
    report.notes = [
        "Each line (channel x market cluster) is spread over the cluster's markets in proportion to market size.",
        "Status quo: business-as-usual spend per line averaged over the 91 days before the horizon; every policy "
        "spends the same daily total.",
        "Quarterly policies re-plan every 91 days: the observational one jumps to its model's optimum; the "
        "calibrated one moves each line at most to double or half its spend per quarter (trust region). The daily "
        "loop moves within 15% of status-quo spend per line in any 7 days.",
        "Calibration gives branded search (spend follows demand) a wide confounding prior and the planned channels "
        "a narrower one (a quarter of the coefficient).",
        "The oracle optimises the world's true steady-state curves (launch calendar and carryover ignored), so it "
        "is the best static plan, not a bound on dynamic plans.",
    ]
    return report.render()
