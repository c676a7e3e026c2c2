"""The ``liftlab design`` HTML report: rendered from a DesignResult, never recomputed."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, PercentFormatter

from allocation.cli.report import (
    Report,
    currency_context,
    fmt_fixed,
    fmt_money,
    fmt_pct,
    money_label,
    money_unit,
)

#: Fewer independent tests than this and power / false-positive rates are only rough (s.e. ~0.1 or more).
FEW_INDEPENDENT_WINDOWS = 10


def _geos(t) -> str:
    return ", ".join(t)


def _pm(x: float | None, se: float | None, *, pct: bool = True, digits: int = 1) -> str:
    """``x ± se`` (a Monte-Carlo standard error), as a percentage or a rate."""
    if x is None:
        return "—"
    body = fmt_pct(x, digits) if pct else f"{x:.2f}"
    if se is None:
        return body
    return body + " ± " + (fmt_pct(se, digits) if pct else f"{se:.2f}")


def _drop_empty(frame: pd.DataFrame) -> pd.DataFrame:
    # A column that is "—" in every row (e.g. investment without a spend channel) only adds noise.
    return frame.loc[:, [c for c in frame.columns if not (frame[c].astype(str) == "—").all()]]


def design_warnings(result) -> list[str]:
    """What a reader must know before trusting the recommended design(s), from the result's own figures."""
    out = []
    many = len(result.cells) > 1
    for i, c in enumerate(result.cells):
        who = f"Cell {i + 1} ({_geos(c.treated)})" if many else "Recommended design"
        p = c.power
        # The tile's rate (the cell's own windows) and the dense no-effect windows' rate, when measured.
        where = "held-out" if result.held_out else "simulated"
        fpr, other = p.false_positive_rate, c.null_rate
        if max(fpr, other or 0.0) > result.alpha:
            shown, on = (
                (fpr, f"its {where} windows")
                if fpr > result.alpha
                else (other, "the no-effect windows")
            )
            se = p.rate_se(shown)
            also = (
                ""
                if other is None or shown == other
                else f" ({other:.2f} on the no-effect windows)"
            )
            chance = (
                "; within two Monte-Carlo standard errors of alpha, so possibly chance"
                if shown - 2 * se <= result.alpha
                else ""
            )
            out.append(
                f"{who}: false positive rate {shown:.2f} ± {se:.2f} on {on}{also}, above alpha "
                f"{result.alpha}{chance}. A significant readout from it is weaker evidence than its "
                "p-value says."
            )
        if c.mde is None:
            out.append(
                f"{who}: does not reach {fmt_pct(result.power_target, 0)} power at any effect size "
                f"simulated (up to {fmt_pct(max(p.lifts))}): no MDE; test longer, treat more geos, or "
                "simulate larger effects."
            )
        elif not c.within_budget:
            out.append(
                f"{who}: needs {fmt_money(c.investment, 0, unit=True)}, above the budget "
                f"{fmt_money(result.settings['budget'], 0, unit=True)}."
            )
        if p.selection_factor > 1.0:
            out.append(
                f"{who}: its history is calmer than random sets' of its size (the search chose it for "
                f"that), so the registry's readout widens its interval x{p.selection_factor:.2f}; the "
                "MDE and the power curve are that readout's (a plain readout's interval would be "
                "narrower and too narrow)."
            )
        if p.n_effective < FEW_INDEPENDENT_WINDOWS:
            out.append(
                f"{who}: power and false positive rate come from {p.n_windows} windows, about "
                f"{p.n_effective:.1f} independent tests: power at the MDE is {p.mde_power or 0:.2f} ± "
                f"{p.power_se:.2f}, so the MDE is a rough figure."
            )
    if not result.held_out:
        out.append(
            "No windows could be held out of the search on this history: the recommended design is "
            "measured where it was chosen, so its MDE and power are optimistic (the winner's curse)."
        )
    return out


def render_design_report(
    result, *, comparison: list[dict] | None = None, currency: str | None = None
) -> str:
    """HTML for a :class:`experiments.design.DesignResult`.

    ``comparison`` optionally lists published designs (``label``, ``treated``,
    ``rank`` elsewhere, ``note``) to set beside the ranking. ``currency`` (a
    3-letter code or a symbol) labels the investment figures.
    """
    with currency_context(currency):
        return _render(result, comparison, currency)


def _render(result, comparison: list[dict] | None, currency: str | None) -> str:
    d = result.to_dict()
    best = result.best
    per = result.plan.period if result.plan is not None else "period"
    priced = best.investment is not None
    p = best.power
    headline = [
        ("treat", _geos(best.treated)),
        (
            "test length",
            f"{best.duration} {per}s" + ("" if per == "day" else f" ({d['duration_days']} days)"),
        ),
        ("MDE", _pm(best.mde, p.mde_se)),
        (f"MDE in {result.outcome}", fmt_fixed(p.mde_incremental)),
        ("power at the MDE", _pm(p.mde_power, p.power_se, pct=False)),
        ("false positive rate", _pm(p.false_positive_rate, p.false_positive_rate_se, pct=False)),
    ]
    if priced:
        headline.append(("investment", fmt_money(best.investment, 0, unit=True)))
    where = (
        f"measured on {p.n_windows} held-out windows (the latest; about {p.n_effective:.1f} independent "
        "tests) that did not choose it"
        if result.held_out
        else "measured on the windows that chose it: the history is too short to hold any out, so the claim is "
        "optimistic (the winner's curse)"
    )
    search = result.search_cells[0] if result.search_cells else best
    rep = Report(
        title="Geo-experiment design",
        subtitle=f"{result.outcome}: estimator {result.estimator}, alpha {result.alpha}, power target "
        f"{fmt_pct(result.power_target, 0)}; {result.n_screened} candidates screened, "
        f"{len(result.candidates)} simulated on up to {d['settings']['n_windows']} search windows; "
        f"the recommended design's figures are {where}",
        headline=headline,
        warnings=design_warnings(result),
        currency=currency if priced else None,
    )
    if result.plan is not None:
        rep.section("Settings chosen for this history", result.plan.describe() + ".")

    rows = []
    for c in result.candidates:
        row = {
            "rank": c.rank,
            "treated": _geos(c.treated),
            f"length ({per}s)": c.duration,
            "MDE ± s.e.": _pm(c.mde, c.power.mde_se),
            "MDE (outcome)": fmt_fixed(c.power.mde_incremental),
            "power at MDE ± s.e.": _pm(c.power.mde_power, c.power.power_se, pct=False),
            "false pos. rate ± s.e.": _pm(
                c.null_rejection_rate, c.power.rate_se(c.null_rejection_rate), pct=False
            ),
            "scaled L2 imbalance": f"{c.fit['scaled_l2_imbalance']:.3f}",
            "pre R²": "—" if c.fit["r2"] is None else f"{c.fit['r2']:.3f}",
        }
        if priced:
            row[money_label("investment")] = fmt_money(c.investment, 0)
        row["feasible"] = "yes" if c.feasible else "no"
        rows.append(row)
    terms = (
        "MDE, pre-period fit (scaled L2 imbalance), "
        + ("investment " if priced else "")
        + "and false positives above alpha"
    )
    rep.section(
        "Candidate ranking (on the search windows)",
        f"Each design is ranked by the sum of its ranks on {terms}; designs that miss the power target"
        + (", exceed the budget" if d["settings"]["budget"] is not None else "")
        + " or over-reject with no effect on history come last. ± is the Monte-Carlo standard error of each "
        "figure over the windows (binomial on the number of non-overlapping tests the windows hold; for the MDE, "
        "through the slope of the power curve): ranks within about two standard errors are not distinguishable. "
        "These figures come from the windows the search chose on, for a plain readout; the first design's "
        f"MDE there was {fmt_pct(search.mde)}, against {fmt_pct(best.mde)} on the held-out windows"
        + (
            f" ({fmt_pct(best.mde / p.selection_factor)} before the readout's widening "
            f"x{p.selection_factor:.2f}, above)."
            if best.mde is not None and p.selection_factor > 1.0
            else "."
        ),
    ).table(_drop_empty(pd.DataFrame(rows).head(30)))

    if len(result.cells) > 1:
        cell_rows = [
            {
                "cell": i + 1,
                "treated": _geos(c.treated),
                f"length ({per}s)": c.duration,
                "MDE ± s.e.": _pm(c.mde, c.power.mde_se),
                money_label("investment"): fmt_money(c.investment, 0),
                "false pos. rate ± s.e.": _pm(
                    c.power.false_positive_rate, c.power.false_positive_rate_se, pct=False
                ),
            }
            for i, c in enumerate(result.cells)
        ]
        rep.section("Cells", "Each cell's power is simulated against the geos in no cell.").table(
            _drop_empty(pd.DataFrame(cell_rows))
        )

    def power_fig():
        fig, _ = result.plot(top=5)
        return fig

    rep.section(
        "Power curves of the top designs (search windows)",
        "Share of historical windows in which the readout detects a lift of each size "
        "(averaged over either sign); dashed: power target, dotted: alpha.",
    ).figure(power_fig)

    if priced:

        def invest_fig():
            fig, ax = plt.subplots(figsize=(6.5, 3.6))
            xs_, ys_ = (
                (p.fine_lifts, p.fine_power) if p.fine_lifts is not None else (p.lifts, p.power)
            )
            lifts = [float(x) for x in xs_ if x >= 0]
            pw = [float(y) for x, y in zip(xs_, ys_) if x >= 0]
            st = result.settings
            cpi = st["cost_per_incremental"] or 1.0 / st["incremental_per_spend"]
            per_lift = p.baseline * cpi  # as experiments.design prices the MDE
            inv = [x * per_lift for x in lifts]
            ax.plot(inv, pw, color="#2f5fa7", label="recommended design")
            if best.mde is not None:
                ax.plot(
                    [best.investment],
                    [p.mde_power],
                    marker="o",
                    color="#c0392b",
                    ls="none",
                    label=f"MDE {fmt_pct(best.mde)}: {fmt_money(best.investment, 0, unit=True)}",
                )
            se = [p.rate_se(y) for y in pw]
            ax.fill_between(
                inv,
                [max(y - 2 * e, 0) for y, e in zip(pw, se)],
                [min(y + 2 * e, 1) for y, e in zip(pw, se)],
                color="#2f5fa7",
                alpha=0.15,
                label="± 2 s.e.",
            )
            ax.axhline(result.power_target, color="grey", ls="--", lw=1, label="power target")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.set_xlabel(
                f"investment, {money_unit()} (spend buying the lift's incremental outcome)"
            )
            ax.set_ylabel("power")
            ax.set_title("Power against investment, recommended design")
            ax.legend(fontsize=8, loc="lower right")
            return fig

        rep.section(
            "Power against investment",
            "As GeoLift's power curve by investment: each lift the power curve was simulated at, priced as "
            "the incremental outcome it means for the treated geos over the test times the cost per "
            "incremental; the band is ± 2 Monte-Carlo standard errors. Measured on the recommended "
            "design's held-out windows."
            if result.held_out
            else "Each lift priced as its incremental outcome times the cost per incremental; band ± 2 s.e.",
        ).figure(invest_fig)

    def fit_fig():
        fig, ax = plt.subplots(figsize=(9, 3.5))
        dates = pd.to_datetime(result.fit_series["dates"])
        ax.plot(
            dates,
            result.fit_series["observed"],
            label="treated geos (average)",
            color="black",
            lw=1.2,
        )
        ax.plot(
            dates,
            result.fit_series["synthetic"],
            label=f"synthetic control ({result.estimator})",
            color="#2f5fa7",
            lw=1.2,
            ls="--",
        )
        ax.set_ylabel(f"{result.outcome} per period, average geo")
        ax.set_xlabel("date")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_title("Pre-period fit: treated geos vs their synthetic control")
        ax.legend(fontsize=8, loc="upper left")
        fig.autofmt_xdate()
        return fig

    rep.section(
        "Pre-period fit of the recommended design",
        f"{result.estimator} fitted on the whole history: R² {best.fit['r2']:.3f}, "
        f"MAPE {fmt_pct(best.fit['mape'])}, scaled L2 imbalance {best.fit['scaled_l2_imbalance']:.3f}.",
    ).figure(fit_fig)

    by = pd.DataFrame(
        [
            {
                f"length ({per}s)": r["duration_periods"],
                "days": r["duration_days"],
                "best MDE ± s.e.": _pm(r["mde"], r.get("mde_se")),
                "MDE (outcome)": fmt_fixed(r["mde_incremental"]),
                **({money_label("investment"): fmt_money(r["investment"], 0)} if priced else {}),
                "treated": "—" if r["treated"] is None else _geos(r["treated"]),
            }
            for r in d["mde_by_duration"]
        ]
    )

    def mde_fig():
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.plot(xs, ys, marker="o", color="#2f5fa7")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel(f"test length ({per}s)")
        ax.set_ylabel("best MDE (lift)")
        ax.set_title("Smallest detectable lift by test length")
        return fig

    sec = rep.section(
        "MDE against test length" + (" and the investment needed" if priced else ""),
        "For each test length, the design with the smallest MDE among those simulated (search "
        "windows)"
        + (
            "; the investment is the spend that buys the MDE's incremental outcome."
            if priced
            else ". No investment is shown: give --cost-per-incremental "
            "or --incremental-per-spend to price each MDE."
        ),
    )
    sec.table(_drop_empty(by))
    xs = [r["duration_periods"] for r in d["mde_by_duration"] if r["mde"] is not None]
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
        "The recommended design is chosen on the earlier windows and its power, MDE and false positive rate are "
        "measured on the latest windows, which did not choose it: the best of many candidates measured where it "
        "was chosen looks better than it is (the winner's curse)."
        if result.held_out
        else "No window could be held out of the search on this history: the recommended design's figures are "
        "measured where it was chosen and are optimistic.",
        "Monte-Carlo standard errors treat overlapping windows as the number of non-overlapping tests they span.",
    ]
    return rep.render()
