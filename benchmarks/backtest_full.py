"""Full closed-loop backtest on the default world: two quarters, daily (issue 9).

Runs every policy (status quo, quarterly observational, quarterly calibrated,
daily loop, oracle) over the last 182 days of a 50-market world with a year of
history, and prints each policy's true incremental signups, cost per
incremental signup, share of the oracle and margin against the status quo and
the observational policy, as measured (nothing asserted). Also writes the HTML
report to benchmarks/out/backtest_full.html.

    .venv/bin/python benchmarks/backtest_full.py [--seed S] [--days N] [--geos N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from allocation.backtest import backtest
from allocation.cli.backtest_report import backtest_report
from causal.world import World


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--days", type=int, default=182)
    ap.add_argument("--history", type=int, default=365)
    ap.add_argument("--geos", type=int, default=50)
    args = ap.parse_args()
    started = time.perf_counter()
    world = World(args.geos, args.history + args.days, seed=args.seed)
    result = backtest(world, days=args.days, seed=args.seed)
    seconds = time.perf_counter() - started
    print(result.summary())
    t = result.summary_table
    obs = t.loc["quarterly observational", "cost_per_incremental"]
    print("\ncost per incremental signup, relative change:")
    for name in t.index:
        print(f"  {name:<24} vs status quo {t.loc[name, 'cpi_vs_status_quo']:+.1%}   "
              f"vs quarterly observational {t.loc[name, 'cost_per_incremental'] / obs - 1:+.1%}")
    print(f"\nwall time {seconds:.0f} s for {len(t)} policies x {args.days} days")
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "backtest_full.html").write_text(backtest_report(result), encoding="utf-8")


if __name__ == "__main__":
    main()
