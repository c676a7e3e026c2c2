"""The daily loop's readouts against the world's true lifts (issue 14).

Runs the loop as it is (``DailyLoop(average_models=True)``, the full configuration unless the world
options say otherwise) and, for every test it reads out, prints the readout (incremental signups and
its 90% interval) beside the world's true lift of that test (the signups the test's cut removed from
its markets over its window, from two runs of the world under the same draws), their ratio and the
readout's error in units of its standard error; then the errors' mean and standard deviation and how
many fall outside the interval. The loop plans on the readouts, not on the truth: the figures are
those of the loop ``backtest_full.py --daily-only`` measures.

    python benchmarks/backtest_loop_readouts.py --seed 0

Figures: docs/backtest.md, "Session 13".
"""

from __future__ import annotations

import argparse

import numpy as np
from backtest_loop_ceiling import ExactLiftLoop
from backtest_world import add_world_options, build_world

from allocation.backtest import Oracle, StatusQuo, backtest
from allocation.backtest_setting import Setting
from allocation.calibration_lifts import Lift


class RecordingLoop(ExactLiftLoop):
    """The daily loop recording each readout beside the test's true lift, and planning on the readout."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.readouts_: list[dict] = []

    def _reread(self, lift: Lift, setting: Setting, plan: np.ndarray, test: dict) -> Lift:
        exact = super()._reread(lift, setting, plan, test)
        self.readouts_.append({"test": test, "lift": lift, "true": exact.incremental})
        return lift


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_options(ap)
    args = ap.parse_args()
    world = build_world(args)
    loop = RecordingLoop(average_models=True)
    result = backtest(world, days=args.days, seed=args.seed, policies=[StatusQuo(), loop, Oracle()])
    share = result.summary_table.loc[loop.name, "share_of_oracle_gain"]
    print(f"seed {args.seed}: daily loop captures {share:.1%} of the oracle's gain (equal spend)")
    errors, outside = [], 0
    for r in loop.readouts_:
        t, lf, true = r["test"], r["lift"], r["true"]
        lo, hi = lf.incremental_ci
        z = (lf.incremental - true) / lf.sd
        errors.append(z)
        outside += not lo <= true <= hi
        print(
            f"  {t['start']} {t['channel']:16s} {t['cluster']:6s} read {lf.incremental:9,.0f} "
            f"[{lo:9,.0f}, {hi:9,.0f}]  true {true:9,.0f}  read / true {lf.incremental / true:5.2f}"
            f"  error / se {z:5.2f}"
        )
    errors = np.array(errors)
    print(
        f"{errors.size} readouts: error / se mean {errors.mean():.2f}, sd {errors.std(ddof=1):.2f}; "
        f"{outside} outside their interval"
    )


if __name__ == "__main__":
    main()
