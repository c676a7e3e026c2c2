"""The readout HTML report: renders a Readout (or MultiCellReadout) through the shared report look.

Nothing is recomputed here: every number comes from the result object.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from allocation.cli.report import (
    Report,
    currency_context,
    fmt_auto,
    fmt_fixed,
    fmt_money,
    fmt_pct,
    money_label,
    per_spend_label,
)
from experiments.readout_result import MultiCellReadout, Readout


def _sig(x: float) -> str:
    # Ratios such as signups per unit spend are often below 0.01: keep three significant digits.
    x = float(x)
    return f"{x:,.2f}" if abs(x) >= 100 else f"{x:.3g}"


def _fmt(x, kind: str) -> str:
    if x is None:
        return "—"
    return {"num": fmt_fixed, "pct": fmt_pct, "money": fmt_money, "sig": _sig}[kind](float(x))


def _figure(readout: Readout, kind: str, size=(9, 3.6), zoom: bool = False):
    def draw():
        fig, ax = plt.subplots(figsize=size)
        readout.plot(kind=kind, ax=ax)
        if zoom:
            # Show the test with a stretch of pre-period (3x its length, at least 8 weeks) so the
            # gap is legible; the full-history fit is summarised in the pre-period table.
            s = readout.series
            test = s[s["period"] == "test"]
            span = max(3 * len(test), 56 if readout.period_name == "day" else 8)
            shown = s.iloc[max(0, s.index.get_loc(test.index[0]) - span) :]
            lo = min(shown["observed"].min(), shown["counterfactual"].min(), test["lower"].min())
            hi = max(shown["observed"].max(), shown["counterfactual"].max(), test["upper"].max())
            pad = 0.05 * (hi - lo)
            ax.set_xlim(shown.index[0], shown.index[-1])
            ax.set_ylim(lo - pad, hi + pad)
        return fig

    return draw


def _table(readout: Readout) -> pd.DataFrame:
    t = readout.table
    kinds = {
        "lift": "pct",
        "incremental per unit spend": "sig",
        "cost per incremental": "money",
        "spend change": "money",
    }
    rows = []
    for q, row in t.iterrows():
        kind = next((v for k, v in kinds.items() if q.startswith(k)), "num")
        values = [None if pd.isna(v) else float(v) for v in row.to_numpy()]
        if kind == "sig":
            # Outcome per unit of spend, said as "signups per 1,000 spent" (never "ROAS").
            q = per_spend_label(readout.outcome) + q[len("incremental per unit spend") :]
            rows.append([q] + [fmt_auto(None if v is None else 1000 * v) for v in values])
            continue
        if kind == "money":
            q = money_label(q)
        rows.append([q] + [_fmt(v, kind) for v in values])
    return pd.DataFrame(rows, columns=["quantity", *t.columns])


def _add_readout(report: Report, r: Readout, prefix: str = "") -> None:
    level = f"{r.confidence:.0%}"
    sec = report.section(f"{prefix}Total vs incremental {r.outcome}", r.text)
    sec.table(
        _table(r),
        caption=f"Totals over the treated geos and the test; intervals at {level}. "
        "Observed is everything that happened; incremental only what the test caused.",
    )
    sec = report.section(f"{prefix}Observed vs counterfactual")
    sec.figure(
        _figure(r, "counterfactual", zoom=True),
        caption=f"Treated total, observed and counterfactual, {level} pointwise band; the test window "
        "is shaded, with the last stretch of the pre-period before it.",
    )
    sec.figure(
        _figure(r, "incremental"),
        caption=f"Incremental {r.outcome} per {r.period_name}: observed minus "
        f"counterfactual, with the {level} pointwise band.",
    )
    sec.figure(
        _figure(r, "cumulative"),
        caption=f"Cumulative incremental {r.outcome}, with the total's {level} interval.",
    )
    if r.channel is not None:
        sec = report.section(f"{prefix}Cost of the test ({r.channel})")
        spend = r.spend or {}
        sec.table(
            pd.DataFrame(
                [
                    [
                        money_label("observed spend in treated geos"),
                        _fmt(spend.get("observed"), "money"),
                    ],
                    [
                        money_label("counterfactual spend (same estimator)"),
                        _fmt(spend.get("counterfactual"), "money"),
                    ],
                    [money_label("spend change"), _fmt(r.spend_delta, "money")],
                    [
                        per_spend_label(r.outcome),
                        fmt_auto(
                            None
                            if r.incremental_per_spend is None
                            else 1000 * r.incremental_per_spend
                        ),
                    ],
                    [
                        money_label(f"cost per incremental {r.outcome}"),
                        _fmt(r.cost_per_incremental, "money"),
                    ],
                ],
                columns=["quantity", "value"],
            )
        )
    sec = report.section(f"{prefix}Pre-period fit and donors")
    fit = r.fit
    sec.table(
        pd.DataFrame(
            [
                [f"RMSE (treated average, per {r.period_name})", _fmt(fit.get("rmse"), "num")],
                ["R²", _fmt(fit.get("r2"), "sig")],
                ["scaled L2 imbalance", _fmt(fit.get("scaled_l2_imbalance"), "sig")],
                ["MAPE", _fmt(fit.get("mape"), "pct")],
            ],
            columns=["measure", "value"],
        )
    )
    if r.weights is not None:
        w = r.weights[r.weights.abs() > 1e-4].sort_values(ascending=False)
        # One line of text instead of a long one-column table: the bars below carry the same numbers.
        sec.paragraph(
            f"Donors ({len(w)}, by weight): "
            + ", ".join(f"{g} {v:.1%}" for g, v in w.items())
            + "."
        )
        sec.figure(
            _figure(r, "weights", size=(6, max(2.5, 0.25 * len(w)))),
            caption=f"Non-zero donor weights ({len(w)} donors, largest {w.iloc[0]:.1%}); weights "
            "below 0.01% are not shown.",
        )
    else:
        sec.paragraph(f"Estimator '{r.estimator}' does not weight donors.")
    if r.placebo:
        sec = report.section(f"{prefix}Placebo checks")
        # No placebo (too little history) is said in words, never "nan".
        rows = [
            [
                k,
                len(v.scores),
                f"{v.actual_score:.2f}",
                f"{v.p_value:.3f}" if len(v.scores) else "none: not enough history",
            ]
            for k, v in r.placebo.items()
        ]
        sec.table(
            pd.DataFrame(rows, columns=["placebo", "placebos", "treated score", "rank p-value"]),
            caption="Score: test-window gap / pre-period RMSE. Space: each donor as if treated; "
            "time: the window moved back into the pre-period.",
        )
        if "space" in r.placebo and len(r.placebo["space"].scores):
            sec.figure(_figure(r, "placebo", size=(7, 3)), caption="Placebo-in-space distribution.")


def render_readout_report(
    result: Readout | MultiCellReadout, *, currency: str | None = None
) -> str:
    """The self-contained HTML of a readout; money in ``currency`` (a code or symbol) when given."""
    # Money is formatted while the tables are built: the currency holds for the whole rendering.
    with currency_context(currency):
        return _render(result, currency)


def _render(result: Readout | MultiCellReadout, currency: str | None) -> str:
    if isinstance(result, MultiCellReadout):
        first = next(iter(result.cells.values()))
        headline = [
            (f"{n}: incremental", fmt_fixed(r.incremental)) for n, r in result.cells.items()
        ]
        report = Report(
            f"Lift readout: {len(result.cells)} cells",
            f"{first.estimator}, {first.outcome}, test {first.test_period[0].date()} to {first.test_period[1].date()}",
            headline=headline,
            currency=currency,
        )
        sec = report.section("Cells")
        t = result.table
        formats = {
            "observed": "num",
            "counterfactual": "num",
            "incremental": "num",
            "incremental_lo": "num",
            "incremental_hi": "num",
            "lift": "pct",
            "cost_per_incremental": "money",
        }
        shown = pd.DataFrame({"cell": t.index, "treated": t["treated"]})
        for col, kind in formats.items():
            shown[col] = [_fmt(None if v is None or pd.isna(v) else v, kind) for v in t[col]]
        shown["p_value"] = [f"{v:.3f}" for v in t["p_value"]]
        level = f"{first.confidence:.0%}"
        shown = shown.rename(
            columns={
                "observed": f"observed (total) {first.outcome}",
                "counterfactual": "counterfactual",
                "incremental": f"incremental {first.outcome}",
                "incremental_lo": f"lower {level}",
                "incremental_hi": f"upper {level}",
                "cost_per_incremental": money_label("cost per incremental"),
                "p_value": "p-value (two-sided)",
            }
        )
        sec.table(
            shown,
            caption=f"Every cell against the geos of no cell; the lower/upper columns are the "
            f"{level} interval of the incremental {first.outcome}.",
        )

        def draw():
            fig, ax = plt.subplots(figsize=(6, 2.5))
            result.plot(ax=ax)
            return fig

        sec.figure(draw, caption="Lift per cell with its interval.")
        for name, r in result.cells.items():
            _add_readout(report, r, prefix=f"[{name}] ")
            report.notes += [f"[{name}] {n}" for n in r.notes]
        return report.render()
    r = result
    lo, hi = r.incremental_ci
    headline = [
        (f"total {r.outcome}", fmt_fixed(r.observed)),
        (f"incremental {r.outcome}", fmt_fixed(r.incremental)),
        (f"{r.confidence:.0%} interval", f"{fmt_fixed(lo)} to {fmt_fixed(hi)}"),
        ("lift", _fmt(r.lift, "pct")),
        ("p-value (two-sided)", f"{r.p_value:.3f}"),
    ]
    if len(r.tests) > 1:
        # Two tests on one screen: both named, with their p-values (the notes say when they disagree).
        headline[-1] = (
            "p-values (two-sided)",
            "; ".join(f"{t['test']} {t['p_value']:.3f}" for t in r.tests),
        )
    headline.append(("inference", r.inference_method.split(",")[0].split(" (")[0]))
    if r.channel is not None:
        headline.append(
            (
                money_label(f"cost per incremental {r.outcome}"),
                _fmt(r.cost_per_incremental, "money"),
            )
        )
    channel = f"{r.channel} test, " if r.channel else ""
    report = Report(
        f"Lift readout: {r.outcome}",
        f"{channel}estimator {r.estimator}, {len(r.treated)} treated geos "
        f"({', '.join(r.treated)}), test {r.test_period[0].date()} to {r.test_period[1].date()}",
        headline=headline,
        currency=currency,
    )
    for text in readout_warnings(r):
        report.warn(text)
    _add_readout(report, r)
    report.notes = list(r.notes)
    return report.render()


def readout_warnings(r: Readout) -> list[str]:
    """What a reader must know before trusting the headline, from the readout's own fields."""
    out = []
    lo, hi = r.incremental_ci
    alpha = 1 - r.confidence
    if (lo > 0 or hi < 0) != (r.p_value < alpha):
        out.append(
            f"The p-value ({r.p_value:.3f}) and the {r.confidence:.0%} interval ({fmt_fixed(lo)} to "
            f"{fmt_fixed(hi)}) disagree on significance at {alpha:.2f}: see the notes for the two methods."
        )
    for t in r.tests[1:] if len(r.tests) > 1 else []:
        if (t["p_value"] < alpha) != (r.tests[0]["p_value"] < alpha):
            out.append(
                f"Two tests disagree: {r.tests[0]['test']} p = {r.tests[0]['p_value']:.3f}, "
                f"{t['test']} p = {t['p_value']:.3f}."
            )
    if r.channel is not None and r.spend is not None and r.spend.get("moved") is False:
        out.append(
            f"Spend on {r.channel} did not move beyond its own noise: the lift cannot be priced "
            "(no cost per incremental)."
        )
    elif r.cost_per_incremental is not None and r.cost_per_incremental < 0:
        out.append(
            f"Incremental {r.outcome} and the spend change have opposite signs: read as no measured effect."
        )
    elif r.cost_per_incremental is not None and lo <= 0 <= hi:
        out.append(
            f"The {r.confidence:.0%} interval of the incremental {r.outcome} includes zero (p = "
            f"{r.p_value:.3f}): the cost per incremental is a point estimate of an effect not "
            "distinguished from none; read its range, not the number."
        )
    out += [n for n in r.notes if "MISCALIBRATED" in n or "not recommended" in n.lower()]
    return out
