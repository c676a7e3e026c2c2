"""The daily loop's re-plan: the envelope LP against the mixed-integer model, in the same process.

The structural model's curves are S-shaped Hills (shape > 1). Inside the guardrail box every line's
lower bound usually lies past its inflection, where the curve is concave and its concave envelope over
the box is the curve itself: ``plan_lines`` then solves the envelope's LP instead of the mixed-integer
piecewise-linear model. This times both on the same day's problem (20 lines, the guardrail box around
the status quo, the structural model fitted on the history) and prints the ratio and how far apart the
two plans' values are on the calibrated curves.

    python benchmarks/bench_backtest_plan.py [--geos 50] [--history 365] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from allocation.backtest import make_setting, plan_lines
from allocation.backtest_setting import _curve_fn
from allocation.backtest_structural import StructuralLoop, cluster_curves
from causal.world import World


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--geos", type=int, default=50)
    ap.add_argument("--history", type=int, default=365)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    world = World(args.geos, args.history + 28, seed=0)
    setting = make_setting(world, 28, seed=0)
    loop = StructuralLoop(proposer="none")
    loop.lifts_ = list(setting.lifts)
    curves = cluster_curves(
        loop.fit(
            setting, world.panel(setting.run(np.tile(setting.status_quo, (28, 1)))), 0
        ).to_curves()
    )
    band = 0.15 * setting.status_quo
    lo, hi = setting.status_quo - band, setting.status_quo + band
    fns = {(c["name"], c["market"]): _curve_fn(c["response"]) for c in curves["channels"]}
    value = lambda x: sum(float(fns[k](v)) for k, v in zip(setting.lines, x))  # noqa: E731
    out = {}
    for mode in ("milp", "envelope"):
        t = time.perf_counter()
        for _ in range(args.repeat):
            x = plan_lines(setting, curves, setting.budget, lo, hi, s_curves=mode)
        out[mode] = ((time.perf_counter() - t) / args.repeat, value(x))
    (tm, vm), (te, ve) = out["milp"], out["envelope"]
    print(
        f"{len(setting.lines)} lines, guardrail box around the status quo, {args.repeat} solves each"
    )
    print(f"  mixed-integer model  {tm:.3f} s per plan, value {vm:,.2f}")
    print(f"  envelope LP          {te:.3f} s per plan, value {ve:,.2f}")
    print(f"  envelope / milp time {te / tm:.2f}; values differ by {(ve - vm) / vm:+.4%}")


if __name__ == "__main__":
    main()
