"""The HTML report of ranked test proposals, in the shared report look; it renders, never recomputes."""

from __future__ import annotations

import pandas as pd

from allocation.cli.report import Report, currency_context, fmt_fixed, fmt_money, money_label


def proposal_report(
    proposal, *, title: str = "Which test next", currency: str | None = None
) -> str:
    """Render an :class:`allocation.next_test.Proposal`; money in ``currency`` when given."""
    with currency_context(currency):
        return _render(proposal, title, currency)


def _render(proposal, title: str, currency: str | None) -> str:
    d = proposal.to_dict()
    best = d["best"]
    per = d["period"]
    headline = [
        ("best test", best["label"]),
        ("net value", f"{fmt_fixed(best['net_value'])} signups over {d['horizon']} {per}s"),
        ("value of information", fmt_fixed(best["value"])),
        ("cost", fmt_fixed(best["cost"])),
        ("candidates", str(len(d["candidates"]))),
    ]
    report = Report(
        title,
        subtitle=f"{d['n_draws']} posterior draws; value = expected gain of the plan made "
        "after the test, over the plan made now",
        headline=headline,
        warnings=d["warnings"],
        currency=currency,
    )
    sec = report.section(
        "Ranked candidates",
        "Value: expected extra signups from planning on the posterior after the test's readout, over the horizon "
        "(simulated readouts of each candidate with the design's standard error). Cost: signups the test forgoes "
        "in its markets, net of what the spend it moves earns at the plan's margin. The lift's posterior standard "
        "deviation before the test and expected after shows how much the test would teach.",
    )
    rows = pd.DataFrame(
        [
            {
                "rank": i + 1,
                "test": c["label"],
                "markets": ", ".join(c["markets"]),
                "value": fmt_fixed(c["value"]),
                "cost": fmt_fixed(c["cost"]),
                "net value": fmt_fixed(c["net_value"]),
                "detectable effect (MDE)": fmt_fixed(c["mde"]),
                "expected lift": fmt_fixed(c["expected_lift"]),
                "lift sd now": fmt_fixed(c["lift_sd_before"]),
                "lift sd after": fmt_fixed(c["lift_sd_after"]),
                money_label("spend moved"): fmt_money(c["spend_delta"], 0),
            }
            for i, c in enumerate(d["candidates"][:20])
        ]
    )
    sec.table(rows)
    sec.figure(
        lambda: proposal.plot()[0],
        caption="Expected value of information and cost of the best candidates",
    )
    ch = report.section(
        "What each channel's best test would teach",
        f"Each channel's incremental signups per {per} at current spend: the posterior's 90% interval now, and "
        "its expected width after that channel's best-ranked test.",
    )
    ch.table(
        pd.DataFrame(
            [
                {
                    "channel": r["channel"],
                    "mean": fmt_fixed(r["mean"], 1),
                    "90% interval now": f"{fmt_fixed(r['lo'], 1)} to {fmt_fixed(r['hi'], 1)}",
                    "width now": fmt_fixed(r["width_now"], 1),
                    "expected width after its best test": fmt_fixed(
                        r["width_after_its_best_test"], 1
                    ),
                    "its best test": r["best_test"] or "—",
                }
                for r in d["channels"]
            ]
        )
    )
    if d["notes"]:
        report.section("Notes", "").table(pd.DataFrame({"note": d["notes"]}))
    return report.render()
