"""The ``liftlab design`` HTML report: rendered from a DesignResult, never recomputed."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, PercentFormatter

from allocation.cli.report import Report, fmt_money, fmt_number, fmt_pct


def _geos(t) -> str:
    return ", ".join(t)


def _drop_empty(frame: pd.DataFrame) -> pd.DataFrame:
    # A column that is "—" in every row (e.g. investment without a spend channel) only adds noise.
    return frame.loc[:, [c for c in frame.columns if not (frame[c].astype(str) == "—").all()]]


def render_design_report(result, *, comparison: list[dict] | None = None) -> str:
    """HTML for a :class:`experiments.design.DesignResult`.

    ``comparison`` optionally lists published designs (``label``, ``treated``,
    ``rank`` elsewhere, ``note``) to set beside the ranking.
    """
    d = result.to_dict()
    best = result.best
    mde = "not reached" if best.mde is None else fmt_pct(best.mde)
    headline = [
        ("treat", _geos(best.treated)),
        ("test length", f"{best.duration} periods"),
        ("MDE", mde),
        (f"MDE in {result.outcome}", fmt_number(best.power.mde_incremental)),
        ("false positive rate", fmt_pct(best.power.false_positive_rate, 0)),
    ]
    if best.investment is not None:
        headline.append(("investment", fmt_money(best.investment, 0)))
    rep = Report(
        title="Geo-experiment design",
        subtitle=f"{result.outcome}: estimator {result.estimator}, alpha {result.alpha}, power target "
                 f"{fmt_pct(result.power_target, 0)}; {result.n_screened} candidates screened, "
                 f"{len(result.candidates)} simulated on {best.power.n_windows} historical windows",
        headline=headline,
    )

    rows = []
    for c in result.candidates:
        rows.append({
            "rank": c.rank, "treated": _geos(c.treated), "length (periods)": c.duration,
            "MDE": "—" if c.mde is None else fmt_pct(c.mde),
            "MDE (outcome)": fmt_number(c.power.mde_incremental),
            "power at MDE": "—" if c.power.mde_power is None else fmt_pct(c.power.mde_power, 0),
            "false pos. rate": fmt_pct(c.power.false_positive_rate, 0),
            "scaled L2 imbalance": f"{c.fit['scaled_l2_imbalance']:.3f}",
            "pre R²": "—" if c.fit["r2"] is None else f"{c.fit['r2']:.3f}",
            "investment": fmt_money(c.investment, 0),
            "feasible": "yes" if c.feasible else "no",
        })
    rep.section(
        "Candidate ranking",
        "Each design is ranked by the sum of its ranks on MDE, pre-period fit (scaled L2 imbalance), "
        "investment and false positives above alpha; designs that miss the power target, exceed the budget or "
        "over-reject with no effect on history come last.",
    ).table(_drop_empty(pd.DataFrame(rows).head(30)))

    if len(result.cells) > 1:
        cell_rows = [{"cell": i + 1, "treated": _geos(c.treated), "length": c.duration,
                      "MDE": "—" if c.mde is None else fmt_pct(c.mde), "investment": fmt_money(c.investment, 0),
                      "false pos. rate": fmt_pct(c.power.false_positive_rate, 0)}
                     for i, c in enumerate(result.cells)]
        rep.section("Cells", "Each cell's power is simulated against the geos in no cell.").table(pd.DataFrame(cell_rows))

    def power_fig():
        fig, _ = result.plot(top=5)
        return fig

    rep.section("Power curves of the top designs",
                "Share of historical windows in which the readout detects a lift of each size "
                "(averaged over either sign); dashed: power target, dotted: alpha.").figure(power_fig)

    def fit_fig():
        fig, ax = plt.subplots(figsize=(9, 3.5))
        dates = pd.to_datetime(result.fit_series["dates"])
        ax.plot(dates, result.fit_series["observed"], label="treated geos (average)", color="black", lw=1.2)
        ax.plot(dates, result.fit_series["synthetic"], label=f"synthetic control ({result.estimator})",
                color="#2f5fa7", lw=1.2, ls="--")
        ax.set_ylabel(f"{result.outcome} per period, average geo")
        ax.set_xlabel("date")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_title("Pre-period fit: treated geos vs their synthetic control")
        ax.legend(fontsize=8, loc="upper left")
        fig.autofmt_xdate()
        return fig

    rep.section("Pre-period fit of the recommended design",
                f"{result.estimator} fitted on the whole history: R² {best.fit['r2']:.3f}, "
                f"MAPE {fmt_pct(best.fit['mape'])}, scaled L2 imbalance {best.fit['scaled_l2_imbalance']:.3f}.").figure(fit_fig)

    by = pd.DataFrame([{"length (periods)": r["duration_days"], "best MDE": "—" if r["mde"] is None else fmt_pct(r["mde"]),
                        "MDE (outcome)": fmt_number(r["mde_incremental"]),
                        "investment": fmt_money(r["investment"], 0),
                        "treated": "—" if r["treated"] is None else _geos(r["treated"])} for r in d["mde_by_duration"]])

    def mde_fig():
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.plot(xs, ys, marker="o", color="#2f5fa7")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("test length (periods)")
        ax.set_ylabel("best MDE (lift)")
        ax.set_title("Smallest detectable lift by test length")
        return fig

    sec = rep.section("MDE against test length and the investment needed",
                      "For each test length, the design with the smallest MDE among those simulated; the "
                      "investment is the spend that buys the MDE's incremental outcome.")
    sec.table(_drop_empty(by))
    xs = [r["duration_days"] for r in d["mde_by_duration"] if r["mde"] is not None]
    ys = [r["mde"] for r in d["mde_by_duration"] if r["mde"] is not None]
    if len(xs) > 1:  # one length is a single dot: the table says it all
        sec.figure(mde_fig)

    if comparison:
        rep.section("Comparison with published designs").table(pd.DataFrame(comparison))

    rep.notes = [
        "Power is simulated with the readout's own estimator and inference on historical windows "
        "(each window's pre-period is every period before it).",
        f"False positive rate: rejections with no effect injected; designs above "
        f"{fmt_pct(d['settings']['max_false_positive_rate'], 0)} are ranked after the others.",
        "The MDE is found on a fine grid (step 0.25 points) up to the largest effect size simulated.",
    ]
    return rep.render()
