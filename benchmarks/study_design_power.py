"""Honest power: does a design detect its reported MDE as often as it claims, on periods it never saw?

For several simulated worlds (causal.world.World): design on the first H days,
then for every held-out window after day H inject the recommended design's
reported MDE into its treated geos, read the window out with
experiments.readout.read_out (pre-period = every day before the window) and
count detections (p <= alpha, positive estimate); do the same with no
injection for the false positive rate. Claimed power is the design's simulated
power at its MDE (measured on windows the search did not see); the issue asks for
|detection - claimed| <= 0.05 and |false positive rate - alpha| <= 0.03 (issue 20).

Run: nice -n 10 python benchmarks/study_design_power.py [--worlds 5] [--step 2] [--claim-share 0] [--weekly]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from causal.panel import load_panel  # noqa: E402
from causal.world import World  # noqa: E402
from experiments.design import design_experiment  # noqa: E402
from experiments.power import inject_lift  # noqa: E402
from experiments.readout import read_out  # noqa: E402


def weekly(raw: pd.DataFrame) -> pd.DataFrame:
    """The outcome summed over weeks ending on Sunday; complete weeks only."""
    raw = raw.assign(date=pd.to_datetime(raw["date"]))
    wk = (
        raw.groupby([pd.Grouper(key="date", freq="W-SUN"), "geo"])["signups"]
        .agg(["sum", "size"])
        .reset_index()
    )
    wk = wk[wk["size"] == 7].drop(columns="size").rename(columns={"sum": "signups"})
    return wk.sort_values(["date", "geo"]).reset_index(drop=True)


def study(
    seed: int,
    *,
    n_geos: int,
    n_days: int,
    history: int,
    step: int,
    estimator: str,
    claim_share: float = 0.0,
    week: bool = False,
    duration: int = 14,
    selection_check: bool = False,
) -> dict:
    world = World(n_geos, n_days, seed=seed)
    raw = world.panel()
    if week:
        raw = weekly(raw)
    full = load_panel(raw)
    n_days = full.dates.size  # periods from here on (weeks for a weekly study)
    hist = load_panel(raw.iloc[: history * n_geos])
    r = design_experiment(
        hist,
        n_treated=(2, 4),
        durations=(duration,),
        effect_sizes=np.arange(0, 0.2001, 0.025),
        n_windows=40,
        estimator=estimator,
        seed=seed,
        claim_share=claim_share,
    )
    b = r.best
    d = b.duration
    hits, false = [], []
    if b.mde is None:
        return {"seed": seed, "mde": None}
    for s in range(history, n_days - d + 1, step):
        window = (full.dates[s], full.dates[s + d - 1])
        for lift, out in ((0.0, false), (b.mde, hits)):
            ro = read_out(
                inject_lift(full, b.treated, s, d, lift),
                list(b.treated),
                window,
                estimator=estimator,
                confidence=1 - r.alpha,
                placebos=False,
                selection_check=selection_check,
            ).to_dict()
            out.append(ro["p_value"] <= r.alpha and (lift == 0 or ro["incremental"] > 0))
    return {
        "seed": seed,
        "treated": b.treated,
        "mde": b.mde,
        "claimed": b.power.mde_power,
        "claimed_se": b.power.power_se,
        "fpr_claimed": b.power.false_positive_rate,
        "fpr_claimed_se": b.power.false_positive_rate_se,
        "search_mde": r.search_cells[0].mde,
        "held_out": r.held_out,
        "detected": float(np.mean(hits)),
        "fpr_heldout": float(np.mean(false)),
        "n_heldout": len(hits),
        "n_eff": (n_days - history - d) / d + 1,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worlds", type=int, default=5)
    ap.add_argument("--geos", type=int, default=20)
    ap.add_argument("--days", type=int, default=600)
    ap.add_argument("--history", type=int, default=400)
    ap.add_argument("--step", type=int, default=2)
    ap.add_argument("--estimator", default="sc")
    ap.add_argument(
        "--claim-share", type=float, default=1 / 3, help="design_experiment's claim_share"
    )
    ap.add_argument(
        "--weekly",
        action="store_true",
        help="weekly worlds: --days 1400 summed to 200 weeks, design on the first --history 130 "
        "weeks, 4-week tests (defaults when --weekly is given)",
    )
    ap.add_argument(
        "--duration", type=int, default=None, help="test length in periods (14 days / 4 weeks)"
    )
    ap.add_argument(
        "--selection-check",
        action="store_true",
        help="read out with read_out(selection_check=True), as the registry reads a designed test",
    )
    args = ap.parse_args()
    if args.weekly:
        args.days = 1400 if args.days == 600 else args.days
        args.history = 130 if args.history == 400 else args.history
        args.step = 1 if args.step == 2 else args.step
    duration = args.duration or (4 if args.weekly else 14)
    t0 = time.perf_counter()
    rows = [
        study(
            s,
            n_geos=args.geos,
            n_days=args.days,
            history=args.history,
            step=args.step,
            estimator=args.estimator,
            claim_share=args.claim_share,
            selection_check=args.selection_check,
            week=args.weekly,
            duration=duration,
        )
        for s in range(args.worlds)
    ]
    missing = [r["seed"] for r in rows if r["mde"] is None]
    if missing:
        print(
            f"worlds {missing}: no MDE within the effect sizes on the held-out windows (left out of the pooling)"
        )
        rows = [r for r in rows if r["mde"] is not None]
    print(
        f"{'seed':>4} {'treated':<24} {'search MDE':>10} {'MDE':>6} {'claimed':>12} {'detected':>9} "
        f"{'FPR claimed':>12} {'FPR held':>9} {'n':>4}"
    )
    for r in rows:
        print(
            f"{r['seed']:>4} {','.join(r['treated']):<24} {r['search_mde'] if r['search_mde'] is not None else float('nan'):>10.4f} {r['mde']:>6.4f} "
            f"{r['claimed']:>6.2f}+-{r['claimed_se']:.2f} {r['detected']:>9.2f} "
            f"{r['fpr_claimed']:>6.2f}+-{r['fpr_claimed_se']:.2f} {r['fpr_heldout']:>9.2f} {r['n_heldout']:>4}"
        )
    claimed = np.mean([r["claimed"] for r in rows])
    detected = np.mean([r["detected"] for r in rows])
    fpr = np.mean([r["fpr_heldout"] for r in rows])
    # Monte-Carlo SE of the pooled held-out rates: the windows overlap, so each world holds about
    # (held-out days - d) / d + 1 independent tests.
    n_eff = sum(r["n_eff"] for r in rows)
    se_det = np.sqrt(detected * (1 - detected) / n_eff)
    se_fpr = np.sqrt(fpr * (1 - fpr) / n_eff)
    print(
        f"pooled: claimed power {claimed:.3f}, held-out detection {detected:.3f} +- {se_det:.3f} "
        f"(diff {detected - claimed:+.3f}, tolerance 0.05: {'met' if abs(detected - claimed) <= 0.05 else 'MISSED'}); "
        f"held-out false positive rate {fpr:.3f} +- {se_fpr:.3f} (alpha 0.1, diff {fpr - 0.1:+.3f}, tolerance 0.03: "
        f"{'met' if abs(fpr - 0.1) <= 0.03 else 'MISSED'}); ~{n_eff:.0f} independent held-out tests"
    )
    print(f"time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
