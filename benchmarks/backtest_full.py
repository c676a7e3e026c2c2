"""Full closed-loop backtest on the default world: two quarters, daily (issue 9).

Runs every policy (status quo, quarterly observational, quarterly calibrated,
daily loop, oracle) over the last 182 days of a 50-market world with a year of
history, and prints each policy's true incremental signups, cost per
incremental signup, share of the oracle and margin against the status quo and
the observational policy, as measured (nothing asserted). Two extra rows isolate
what the calibrated quarterly policy's design choices are worth: the same
calibrated model jumping straight to its optimum (the previous design, with the
planned-channel confounding prior), and the
observational model moving within the same trust region (an ablation). Also
writes the HTML report to benchmarks/out/backtest_full.html (backtest_full_<seed>.html for
another seed).

Every decision policy plans with the product's planner (allocation.optimize.allocate at
exactly the budget; the daily loop inside the rolling guardrail box), and the
policies are also compared at equal spend: their plans run without the daily loop's
test cuts, each spending the budget every day; the last lines give the share of
the oracle's gain over the status quo that each captures (docs/backtest.md has the
figures for seeds 0-3).

    .venv/bin/python benchmarks/backtest_full.py [--seed S] [--days N] [--geos N]
        [--intensities go-dark,half,heavy-up] [--average-weeks N] [--single-model] [--daily-only]
        [--structural-prior-on coefficient] [--structural-shape-prior uniform] [--no-replicate]

``--intensities`` gives the daily loop's round-robin test intensities in turn; ``--daily-only`` runs
the status quo, the daily loop and the oracle alone (the equal-spend share in about 80 s a seed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from backtest_world import add_world_options, build_world

from allocation.backtest import QuarterlyModel, backtest, default_policies
from allocation.cli.backtest_report import backtest_report
from allocation.structural import PRIOR_ON, SHAPE_PRIORS


def main() -> None:
    ap = argparse.ArgumentParser()
    add_world_options(ap)
    ap.add_argument(
        "--intensities",
        default="go-dark",
        help="the daily loop's round-robin test intensities in turn (comma list of go-dark, half, "
        "heavy-up; one round of tests over every channel each)",
    )
    ap.add_argument(
        "--average-weeks",
        type=int,
        default=13,
        help="the daily loop plans on the average of its last N weekly calibrations (1: the week's own)",
    )
    ap.add_argument(
        "--single-model",
        action="store_true",
        help="the daily loop on the response model alone (before session 8: no average with the "
        "structural model's curves)",
    )
    ap.add_argument(
        "--structural-weight",
        type=float,
        default=0.5,
        help="weight of the structural model's curves in the daily loop's average of the two model "
        "classes (0.5: equal weights, the default)",
    )
    ap.add_argument(
        "--structural-prior-on",
        default="marginal_return",
        choices=PRIOR_ON,
        help="the daily loop's structural fits' coefficient prior (coefficient: before session 10)",
    )
    ap.add_argument(
        "--structural-shape-prior",
        default="meridian",
        choices=SHAPE_PRIORS,
        help="the daily loop's structural fits' prior over curve shapes (uniform: before session 13)",
    )
    ap.add_argument(
        "--no-replicate",
        action="store_true",
        help="the daily loop takes every readout at once, even one no spend change can give (before "
        "session 14: no replication of surprising readouts)",
    )
    ap.add_argument(
        "--daily-only",
        action="store_true",
        help="only the status quo, the daily loop and the oracle (the equal-spend share; faster)",
    )
    args = ap.parse_args()
    started = time.perf_counter()
    world = build_world(args)
    policies = default_policies(
        days=args.days,
        daily_options={
            "intensities": tuple(args.intensities.split(",")),
            "average_weeks": args.average_weeks,
            **({"average_models": False} if args.single_model else {}),
            "structural_weight": args.structural_weight,
            "structural_prior_on": args.structural_prior_on,
            "structural_shape_prior": args.structural_shape_prior,
            "replicate_surprises": not args.no_replicate,
        },
    )
    extras = [
        QuarterlyModel(calibrated=True, name="quarterly calibrated, jump"),
        QuarterlyModel(calibrated=False, max_step=2.0, name="quarterly observational, stepped"),
    ]
    policies = policies[:-1] + extras + policies[-1:]  # the oracle last, as in the default order
    if args.daily_only:
        policies = [p for p in policies if p.name in ("status quo", "daily loop", "oracle")]
    result = backtest(world, days=args.days, seed=args.seed, policies=policies)
    seconds = time.perf_counter() - started
    print(result.summary())
    t = result.summary_table
    width = max(len(n) for n in t.index)
    if "quarterly observational" in t.index:
        obs = t.loc["quarterly observational", "cost_per_incremental"]
        print("\ncost per incremental signup, relative change:")
        for name in t.index:
            print(
                f"  {name:<{width}} vs status quo {t.loc[name, 'cpi_vs_status_quo']:+.1%}   "
                f"vs quarterly observational {t.loc[name, 'cost_per_incremental'] / obs - 1:+.1%}"
            )
    print(
        "\nat equal spend (every policy's plan run without test cuts spends the budget each day):"
    )
    for name in t.index:
        print(
            f"  {name:<{width}} spend {t.loc[name, 'equal_spend']:,.0f}  incremental "
            f"{t.loc[name, 'equal_incremental']:,.0f}  cost/incremental {t.loc[name, 'equal_cost_per_incremental']:.2f}"
            f"  share of the oracle's gain over status quo {t.loc[name, 'share_of_oracle_gain']:+.1%}"
        )
    print(
        f"EQUAL-SPEND seed {args.seed}: daily loop captures {t.loc['daily loop', 'share_of_oracle_gain']:.1%} "
        f"of the oracle's gain over the status quo (goal >= 80%)"
    )
    given = result.loops["daily loop"]["given_up"]
    print(
        f"daily loop's tests {given['by_intensity']}: signups given up {given['signups']:,.0f}, "
        f"spend saved {given['saved_spend']:,.0f}, extra spend {given['extra_spend']:,.0f}"
    )
    held = [test for test in result.loop_tests["daily loop"] if "held" in test]
    print(
        f"readouts held back and replicated: {len(held)}"
        + "".join(
            f"; {h['channel']} {h['cluster']} {h['start']} read {h['incremental']:,.0f}"
            for h in held
        )
    )
    print(f"\nwall time {seconds:.0f} s for {len(t)} policies x {args.days} days")
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    # The report is named for the seed alone, so it is written only when every other option is at its
    # default (a changed world or loop would otherwise overwrite the seed's report).
    if any(v != ap.get_default(k) for k, v in vars(args).items() if k != "seed"):
        return
    (
        out / ("backtest_full.html" if args.seed == 0 else f"backtest_full_{args.seed}.html")
    ).write_text(backtest_report(result), encoding="utf-8")


if __name__ == "__main__":
    main()
