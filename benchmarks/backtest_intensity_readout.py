"""Does the loop's readout get a half cut's and a heavy-up's spend change and lift right? (issues 14, 16)

On a small world (16 markets, 150 days, seed 2; the status-quo plan over a 28-day horizon), one 21-day
test on the same 4 markets per channel and intensity (go-dark, half, heavy-up), read out as the closed
loop reads its tests (``allocation.backtest_setting._read``: synthetic control, conformal interval, the
channel's spend counterfactual). Prints the readout's ``spend_delta`` against the true spend change of
the world run, and the readout's incremental against the true one (the run minus the run without the
test).

    python benchmarks/backtest_intensity_readout.py [--seed 2]
"""

from __future__ import annotations

import argparse

import numpy as np

from allocation.backtest_setting import _read, make_setting
from causal.world import World


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    w = World(16, 150, seed=args.seed)
    s = make_setting(w, 28, seed=0)
    plan = np.tile(s.status_quo, (28, 1))
    clean = s.run(plan)
    busy = {g for t in s.battery for g in t["geos"]}
    geos = [g for g in w.geos if g not in busy][:4]
    print(
        "| channel | test | spend_delta: readout | true | error | incremental: readout [90%] | true |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for ch in w.channels:
        for name, k in (("go-dark", 0.0), ("half", 0.5), ("heavy-up", 1.5)):
            test = {"channel": ch, "geos": geos, "first": s.start, "last": s.start + 20}
            test["multiplier"] = k
            run = s.run(plan, [test])
            moved = s.test_spend(plan, [test])
            true_delta = moved["extra"] - moved["saved"]
            true_inc = float((run.signups - clean.signups)[s.start : s.start + 21].sum())
            control = [g for g in w.geos if g not in set(geos)]
            lift = _read(w, w.panel(run), test, control, 0)
            lo, hi = lift.incremental_ci
            print(
                f"| {ch} | {name} | {lift.spend_delta:,.0f} | {true_delta:,.0f} | "
                f"{lift.spend_delta - true_delta:+,.0f} ({lift.spend_delta / true_delta - 1:+.1%}) | "
                f"{lift.incremental:,.0f} [{lo:,.0f}, {hi:,.0f}] | {true_inc:,.0f} |"
            )


if __name__ == "__main__":
    main()
