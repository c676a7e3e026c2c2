"""Honest power: does a design detect its reported MDE as often as it claims, on periods it never saw?

For several simulated worlds (causal.world.World): design on the first H days,
then for every held-out window after day H inject the recommended design's
reported MDE into its treated geos, read the window out with
experiments.readout.read_out (pre-period = every day before the window) and
count detections (p <= alpha, positive estimate); do the same with no
injection for the false positive rate. Claimed power is the design's simulated
power at its MDE; the issue asks for |detection - claimed| <= 0.1 and
|false positive rate - alpha| <= 0.05.

Run: .venv/bin/python benchmarks/study_design_power.py [--worlds 5] [--step 2] [--claim-share 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from causal.panel import load_panel  # noqa: E402
from causal.world import World  # noqa: E402
from experiments.design import design_experiment  # noqa: E402
from experiments.power import inject_lift  # noqa: E402
from experiments.readout import read_out  # noqa: E402


def study(seed: int, *, n_geos: int, n_days: int, history: int, step: int, estimator: str,
          claim_share: float = 0.0) -> dict:
    world = World(n_geos, n_days, seed=seed)
    raw = world.panel()
    full = load_panel(raw)
    hist = load_panel(raw.iloc[: history * n_geos])
    r = design_experiment(hist, n_treated=(2, 4), durations=(14,), effect_sizes=np.arange(0, 0.2001, 0.025),
                          n_windows=40, estimator=estimator, seed=seed, claim_share=claim_share)
    b = r.best
    d = b.duration
    hits, false = [], []
    for s in range(history, n_days - d + 1, step):
        window = (full.dates[s], full.dates[s + d - 1])
        for lift, out in ((0.0, false), (b.mde, hits)):
            ro = read_out(inject_lift(full, b.treated, s, d, lift), list(b.treated), window,
                          estimator=estimator, confidence=1 - r.alpha, placebos=False).to_dict()
            out.append(ro["p_value"] <= r.alpha and (lift == 0 or ro["incremental"] > 0))
    return {"seed": seed, "treated": b.treated, "mde": b.mde, "claimed": b.power.mde_power,
            "fpr_history": b.power.false_positive_rate, "detected": float(np.mean(hits)),
            "fpr_heldout": float(np.mean(false)), "n_heldout": len(hits)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worlds", type=int, default=5)
    ap.add_argument("--geos", type=int, default=20)
    ap.add_argument("--days", type=int, default=600)
    ap.add_argument("--history", type=int, default=400)
    ap.add_argument("--step", type=int, default=2)
    ap.add_argument("--estimator", default="sc")
    ap.add_argument("--claim-share", type=float, default=0.0, help="design_experiment's claim_share")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = [study(s, n_geos=args.geos, n_days=args.days, history=args.history, step=args.step,
                  estimator=args.estimator, claim_share=args.claim_share) for s in range(args.worlds)]
    print(f"{'seed':>4} {'treated':<24} {'MDE':>6} {'claimed':>8} {'detected':>9} {'FPR hist':>9} {'FPR held':>9} {'n':>4}")
    for r in rows:
        print(f"{r['seed']:>4} {','.join(r['treated']):<24} {r['mde']:>6.3f} {r['claimed']:>8.2f} "
              f"{r['detected']:>9.2f} {r['fpr_history']:>9.2f} {r['fpr_heldout']:>9.2f} {r['n_heldout']:>4}")
    claimed = np.mean([r["claimed"] for r in rows])
    detected = np.mean([r["detected"] for r in rows])
    fpr = np.mean([r["fpr_heldout"] for r in rows])
    print(f"pooled: claimed power {claimed:.3f}, held-out detection {detected:.3f} (diff {detected - claimed:+.3f}); "
          f"held-out false positive rate {fpr:.3f} (alpha 0.1, diff {fpr - 0.1:+.3f})")
    print(f"time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
