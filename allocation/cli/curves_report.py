"""The ``calibrate --report`` HTML: curves before/after with the lifts, credit per channel, the graph, refutations."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from allocation.calibration import CalibrationResult
from allocation.cli.report import (
    Report,
    currency_context,
    fmt_fixed,
    grid_edge_warning,
    money_label,
    per_spend_label,
)
from allocation.workflows.calibrate import CalibrationRun
from causal.graph import GraphAnalysis
from causal.panel import Panel


def render_calibration_report(run: CalibrationRun, *, currency: str | None = None) -> str:
    """The ``calibrate --report`` HTML of a :class:`CalibrationRun` (its graph analysis included)."""
    if run.analysis is None:
        raise ValueError(
            "the calibration report needs the graph analysis: calibrate_curves(analyse_graph=True)"
        )
    # Money is formatted while the tables are built: the currency holds for the whole rendering.
    with currency_context(currency):
        if run.kind == "regression":
            return render_report(
                run.result, run.panel, run.analysis, currency=currency, warnings=run.warnings
            )
        return render_structural_report(
            run.model, run.curves, run.panel, run.analysis, currency=currency, warnings=run.warnings
        )


def _g(x: float) -> str:
    # Four significant digits, but never scientific notation for spend-sized numbers (21,160 not 2.116e+04).
    if x is None or x != x:
        return "—"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def render_report(
    result: CalibrationResult,
    panel: Panel,
    analysis: GraphAnalysis,
    *,
    currency: str | None = None,
    warnings: Sequence[str] = (),
) -> str:
    """Render the regression model's calibration report with its graph analysis (DoWhy); ``warnings``
    (the run's, e.g. a lift whose sign its spend change rules out) head it."""
    m = result.model
    ch = result.channels
    rep = Report(
        title="Calibrated response curves",
        subtitle=f"{panel.source}: {len(m.geos_)} geos x {len(m.dates_)} {m.period_}s, {len(result.lifts)} lifts",
        headline=[
            ("channels", str(len(m.channels_))),
            ("markets", str(len([c for c in m.clusters_ if c]) or 1)),
            ("lifts", str(len(result.lifts))),
            ("conflicts", str(len(result.conflicts))),
            ("backtest WAPE", f"{m.backtest_.wape_total:.1%}" if m.backtest_ else "—"),
        ],
        currency=currency,
    )
    for text in warnings:
        rep.warn(text)
    conf = f"{result.confidence:.0%}"
    unit = per_spend_label(m.outcome_)
    s = rep.section(
        "Credit per channel, before and after calibration",
        f"Contribution is the {m.outcome_} the curves attribute to the channel over the panel; "
        f"'{per_spend_label(m.outcome_)}' is the contribution per 1,000 of spend; 'marginal' is the "
        "slope of the curve at the current spend, per 1,000 more. "
        f"Intervals at {conf}.",
    )
    tbl = pd.DataFrame(
        {
            "channel": ch.index,
            "calibrated by a lift": ["yes" if v else "no" for v in ch["calibrated"]],
            "contribution before": [fmt_fixed(v) for v in ch["contribution_before"]],
            "contribution after": [fmt_fixed(v) for v in ch["contribution_after"]],
            f"after {conf} interval": [
                f"{fmt_fixed(a)} – {fmt_fixed(b)}"
                for a, b in zip(ch["contribution_after_lo"], ch["contribution_after_hi"])
            ],
            f"{unit}, before": [_g(1000 * v) for v in ch["roas_before"]],
            f"{unit}, after": [_g(1000 * v) for v in ch["roas_after"]],
            "marginal, before": [_g(1000 * v) for v in ch["mroas_before"]],
            "marginal, after": [_g(1000 * v) for v in ch["mroas_after"]],
            f"marginal after, {conf}": [
                f"{_g(1000 * a)} – {_g(1000 * b)}"
                for a, b in zip(ch["mroas_after_lo"], ch["mroas_after_hi"])
            ],
        }
    )
    s.table(tbl)

    s = rep.section(
        "Response curves with the experiments",
        f"Steady-state response per {m.period_} for a steady spend per {m.period_}, all markets "
        "summed, before "
        "(dashed) and after (solid) calibration. Each lift is drawn from the calibrated curve at the "
        "test's counterfactual spend, scaled to all markets, with its interval.",
    )
    for name in m.channels_:
        s.figure(
            lambda name=name: result.plot(name, ax=plt.subplots(figsize=(8, 4.5))[1])[0],
            caption=f"{name}: steady-state response, all markets summed",
        )

    s = rep.section(
        "Lifts",
        "Measured incremental against the curves' prediction for exactly that spend change, "
        "geos and window (carryover included), before and after calibration, and from the "
        "calibration without the lift (leave-one-out).",
    )
    lf = result.lifts
    s.table(
        pd.DataFrame(
            {
                "lift": lf["name"],
                "channel": lf["channel"],
                "geos": lf["n_geos"],
                "periods": lf["n_periods"],
                "spend change": [fmt_fixed(v) for v in lf["spend_delta"]],
                "measured": [fmt_fixed(v) for v in lf["measured"]],
                f"{conf} interval": [
                    f"{fmt_fixed(a)} – {fmt_fixed(b)}" for a, b in zip(lf["ci_lo"], lf["ci_hi"])
                ],
                "curve before": [fmt_fixed(v) for v in lf["predicted_before"]],
                "curve after": [fmt_fixed(v) for v in lf["predicted_after"]],
                "leave-one-out z": [f"{v:.2f}" for v in lf["z_loo"]],
                "conflict": ["CONFLICT" if v else "no" for v in lf["conflict"]],
            }
        )
    )
    for c in result.conflicts:
        s.paragraph(c)

    s = rep.section("Curves per market", "Calibrated response blocks as written to curves.json.")
    rows = []
    for line in result.curve_lines():
        r = line["response"]
        rows.append(
            {
                "channel": line["name"],
                "market": line["market"] or "all",
                "form": r["form"],
                "beta": _g(r["beta"]),
                "half saturation / scale": _g(r.get("half_saturation", r.get("scale"))),
                "shape": _g(r.get("shape", float("nan"))),
                "adstock": ", ".join(f"{k} {v}" for k, v in line["adstock"].items() if k != "form"),
                money_label("current spend"): fmt_fixed(line["current_spend"]),
                "contribution before": fmt_fixed(line["contribution"]["uncalibrated"]),
                "contribution after": fmt_fixed(line["contribution"]["calibrated"]),
            }
        )
    s.table(pd.DataFrame(rows))

    if m.backtest_ is not None:
        bt = m.backtest_
        s = rep.section(
            "Backtest",
            f"Curves refitted on the data before {bt.start} and used to forecast "
            f"{bt.start} to {bt.end} ({bt.n_periods} periods) from the observed spend.",
        )
        s.table(
            pd.DataFrame(
                {
                    "measure": [
                        f"WAPE, total per {m.period_}",
                        f"WAPE, per geo and {m.period_}",
                        "MAPE, total",
                        "R², total",
                        "bias of the total",
                    ],
                    "value": [
                        f"{bt.wape_total:.2%}",
                        f"{bt.wape_geo:.2%}",
                        f"{bt.mape_total:.2%}",
                        f"{bt.r2_total:.3f}",
                        f"{bt.bias_total:+.2%}",
                    ],
                }
            )
        )

    s = rep.section(
        "The causal graph",
        "Channels (blue), observed covariates (green), unobserved nodes (grey), the outcome (red). "
        f"The curves adjust for: {', '.join(m.controls_) or 'no covariate'} (covariates that descend "
        "from no channel); a channel's own total effect adjusts for its DoWhy backdoor set below.",
    )
    s.figure(lambda: analysis.plot()[0], caption="causal graph")
    t = analysis.table
    s.table(
        pd.DataFrame(
            {
                "channel": t.index,
                "adjustment set (total effect)": [v or "∅" for v in t["adjustment_set"]],
                "naive (joint regression)": [_g(v) for v in t["naive"]],
                "graph-adjusted (DoWhy)": [_g(v) for v in t["adjusted"]],
                f"adjusted {conf}": [
                    f"{_g(a)} – {_g(b)}" for a, b in zip(t["adjusted_lo"], t["adjusted_hi"])
                ],
                "experimental": [_g(v) for v in t["experimental"]],
                "calibrated curve": [_g(ch.loc[c, "roas_after"]) for c in t.index],
            }
        ),
        caption=f"{m.outcome_} per unit spend, geo-week data per unit of market size",
    )
    s = rep.section(
        "Refutations (DoWhy)",
        "Placebo: the treatment permuted across rows, whose effect should vanish (new effect near 0; "
        "DoWhy's p-value tests that 0 is within the placebo distribution, the permutation p-value that "
        "the real estimate is outside it). Random common cause and data subset: the estimate should "
        "not move (high p-value).",
    )
    r = analysis.refutations
    if len(r):
        s.table(
            pd.DataFrame(
                {
                    "channel": r["channel"],
                    "refuter": r["refuter"],
                    "estimate": [_g(v) for v in r["estimate"]],
                    "new effect": [_g(v) for v in r["new_effect"]],
                    "DoWhy p-value": [_g(v) for v in r["p_value"]],
                    "permutation p": [_g(v) for v in r["permutation_p"]],
                    "passes": ["yes" if v else "NO" for v in r["passes"]],
                }
            )
        )
    rep.notes = [*result.notes, *analysis.notes]
    return rep.render()


def structural_warnings(
    summary: pd.DataFrame, curves: dict, total_outcome: float, outcome: str
) -> list[str]:
    """Untested channels, lifts in conflict, adjustments not made and implausible credit, from the model's fields."""
    out = []
    untested = [c for c in summary.index if not summary.loc[c, "lifted"]]
    if untested:
        out.append(
            f"No lift has tested {', '.join(untested)}: their credit rests on the panel and the causal graph "
            "alone (liftlab propose-tests ranks which test would teach most)."
        )
    out += [f"A lift disagrees with the model: {c}" for c in curves.get("conflicts", [])]
    undone = [
        c for c, v in curves.get("identification", {}).items() if not v.get("demand_adjusted", True)
    ]
    if undone:
        out.append(
            f"No demand adjustment for {', '.join(undone)} (the query column is missing or constant): "
            "their credit may carry demand they follow; the intervals are widened for it."
        )
    edge = grid_edge_warning(curves.get("identification", {}))
    if edge:
        out.append(edge)
    share = float(summary["total"].sum()) / total_outcome if total_outcome else float("nan")
    if share > 0.6:
        out.append(
            f"The channels are credited with {share:.0%} of all {outcome}, leaving {1 - share:.0%} to "
            "baseline demand: check the model before acting on it."
        )
    return out


def render_structural_report(
    model,
    curves: dict,
    panel: Panel,
    analysis: GraphAnalysis,
    *,
    currency: str | None = None,
    warnings: Sequence[str] = (),
) -> str:
    """The ``calibrate --report`` HTML of the structural model: credit (direct, mediated, total), identification,
    lifts, cluster curves, the graph."""
    conf = f"{model.confidence:.0%}"
    s_ = model.summary()
    rep = Report(
        title="Structural response curves",
        subtitle=f"{panel.source}: {len(model.geos_)} geos x {len(model.dates_)} {model.period_}s, "
        f"{len(model.lifts_)} lifts",
        headline=[
            ("channels", str(len(model.channels_))),
            ("markets", str(len(model.geos_))),
            ("clusters", str(len([c for c in model.clusters_ if c is not None]) or 1)),
            ("lifts", str(len(model.lifts_))),
            ("conflicts", str(len(curves["conflicts"]))),
        ],
        currency=currency,
    )
    for text in [
        *warnings,
        *structural_warnings(s_, curves, float(panel.data[panel.y].sum()), model.outcome_),
    ]:
        rep.warn(text)
    sec = rep.section(
        "Credit per channel",
        f"Contribution of each channel over the panel: direct (not through branded queries), mediated "
        f"(through them) and total, posterior means with the {conf} interval of the total. "
        f"'without lifts' is the same model fitted on the panel alone; per 1,000 spent uses the total.",
    )
    sec.table(
        pd.DataFrame(
            {
                "channel": s_.index,
                "lift": ["yes" if v else "no" for v in s_["lifted"]],
                "direct": [fmt_fixed(v) for v in s_["direct"]],
                "mediated": [fmt_fixed(v) for v in s_["mediated"]],
                "total": [fmt_fixed(v) for v in s_["total"]],
                f"{conf} interval": [
                    f"{fmt_fixed(a)} – {fmt_fixed(b)}" for a, b in zip(s_["lo"], s_["hi"])
                ],
                "without lifts": [fmt_fixed(v) for v in s_["uncalibrated"]],
                money_label("spend"): [fmt_fixed(v) for v in s_["spend"]],
                per_spend_label(model.outcome_): [_g(1000 * v) for v in s_["roas"]],
            }
        )
    )
    sec = rep.section(
        "Response curves",
        f"Steady-state total response of each channel for a steady spend per {model.period_} "
        "spread over the markets by size: posterior median and band.",
    )
    for name in model.channels_:
        sec.figure(
            lambda name=name: model.plot(name, ax=plt.subplots(figsize=(8, 4.5))[1])[0],
            caption=f"{name}: total response, all markets",
        )
    ident = curves["identification"]
    sec = rep.section(
        "Identification",
        "How far the data moved each channel from its prior (posterior sd over prior "
        "sd of the pooled total coefficient; small is well identified), whether a "
        "lift checked it, and the width of its contribution interval per unit spend.",
    )
    sec.table(
        pd.DataFrame(
            {
                "channel": list(ident),
                "posterior sd / prior sd": [
                    _g(v["posterior_sd_over_prior_sd"]) for v in ident.values()
                ],
                "KL (normal approx.)": [_g(v["kl_normal_approx"]) for v in ident.values()],
                "lift": [", ".join(v["lifts"]) or "none" for v in ident.values()],
                "interval width per spend": [
                    _g(v["interval_width_per_spend"]) for v in ident.values()
                ],
                "demand adjusted": [
                    "yes" if v["demand_adjusted"] else "NO" for v in ident.values()
                ],
            }
        )
    )
    if curves["lifts"]:
        lf = pd.DataFrame(curves["lifts"])
        sec = rep.section(
            "Lifts",
            "Measured incremental against the model's prediction for exactly that spend "
            "change, geos and window (carryover included): without lifts, with all, and "
            "without this one (leave-one-out).",
        )
        sec.table(
            pd.DataFrame(
                {
                    "lift": lf["name"],
                    "channel": lf["channel"],
                    "measured": [fmt_fixed(v) for v in lf["measured"]],
                    f"{conf} interval": [
                        f"{fmt_fixed(a)} – {fmt_fixed(b)}" for a, b in zip(lf["ci_lo"], lf["ci_hi"])
                    ],
                    "without lifts": [fmt_fixed(v) for v in lf["predicted_before"]],
                    "calibrated": [fmt_fixed(v) for v in lf["predicted_after"]],
                    "leave-one-out z": [f"{v:.2f}" for v in lf["z_loo"]],
                    "conflict": ["CONFLICT" if v else "no" for v in lf["conflict"]],
                }
            )
        )
        for c in curves["conflicts"]:
            sec.paragraph(c)
    sec = rep.section(
        "Curves per cluster",
        "Aggregates of the per-market lines (reports only; plans use the per-market lines).",
    )
    sec.table(
        pd.DataFrame(
            [
                {
                    "channel": a["name"],
                    "cluster": a["market"] or "all",
                    "beta": _g(a["response"]["beta"]),
                    "half saturation": _g(a["response"]["half_saturation"]),
                    "shape": _g(a["response"]["shape"]),
                    "decay": _g(a["adstock"]["decay"]),
                    money_label("current spend"): fmt_fixed(a["current_spend"]),
                    "total contribution": fmt_fixed(a["effect"]["total"]),
                    "mediated": fmt_fixed(a["effect"]["mediated"]),
                }
                for a in curves["aggregates"]
            ]
        )
    )
    sec = rep.section(
        "The causal graph",
        "The model follows it: channels pointing into the branded queries have a "
        "queries equation; the signups equation adjusts for the queries (the "
        f"demand proxy) and for {', '.join(model.controls_) or 'no covariate'}.",
    )
    sec.figure(lambda: analysis.plot()[0], caption="causal graph")
    rep.notes = [*model.notes_, *analysis.notes]
    return rep.render()
