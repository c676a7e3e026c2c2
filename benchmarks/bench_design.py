"""Design speed and the GeoLift walkthrough.

1. Power for one candidate (chicago + portland, 15 days, GeoLift's pre-test data):
   the fast path (exact solution path of the synthetic-control refit, one fit per
   window) against refitting the readout's conformal test for every effect size,
   same decisions, printed ratio.
2. The whole walkthrough search (2 to 5 treated markets, chicago included,
   honolulu excluded, 10 and 15 days, effect sizes 0..0.2 by 0.05, cost per
   incremental 7.50, budget 100000, alpha 0.1) timed, on 2 workers.
3. GeoLift's published top designs simulated with the same engine and placed in
   our ranking; writes design_geolift.html with the comparison table.

Run: .venv/bin/python benchmarks/bench_design.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from allocation.cli.design_report import render_design_report  # noqa: E402
from causal.panel import load_panel  # noqa: E402
from experiments.design import design_experiment, evaluate_design  # noqa: E402
from experiments.power import candidate_power, simulation_windows  # noqa: E402

# The shared data sit beside the checkout (../shared); a worktree one level deeper finds them two up.
DATA = (
    next(
        (
            p
            for p in (REPO.parent / "shared", REPO.parent.parent / "shared")
            if (p / "data").is_dir()
        ),
        REPO.parent / "shared",
    )
    / "data"
    / "geolift"
    / "GeoLift_PreTest.csv"
)
EFFECTS = [0.0, 0.05, 0.1, 0.15, 0.2]
SETTINGS = dict(
    n_treated=(2, 5),
    include=["chicago"],
    exclude=["honolulu"],
    durations=(10, 15),
    effect_sizes=EFFECTS,
    alpha=0.1,
    cost_per_incremental=7.5,
    budget=100000,
)
GEOLIFT_TOP = [("chicago", "portland"), ("chicago", "cincinnati", "houston", "portland")]
# GeoLift's published walkthrough (GeoLiftMarketSelection, effect sizes -0.25..0.25 by 0.05, lookback
# window 1): 15-day designs, their EffectSize and Average_MDE (vignettes/GeoLift_Walkthrough.md).
GEOLIFT_CLAIMS = [
    (("chicago", "cincinnati", "houston", "portland"), 15, 0.05, 0.04829913),
    (("chicago", "portland"), 15, -0.10, -0.09904014),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    panel = load_panel(DATA, y="Y", geo_col="location")
    Y = panel.wide().to_numpy()
    geos = panel.geos
    t = [geos.index("chicago"), geos.index("portland")]
    c = [i for i in range(len(geos)) if i not in t]
    starts = simulation_windows(Y.shape[0], 15, n_windows=30, min_pre=60)

    print("== 1. power of one candidate: fast path vs refit per effect size ==")
    candidate_power(Y, t, c, 15, starts[:1], EFFECTS, names=geos)  # warm-up (imports)
    timings = {}
    for label, step in (("effect sizes only", None), ("with the fine MDE grid", 0.0025)):
        runs = {}
        for method in ("fast", "refit"):
            t0 = time.perf_counter()
            runs[method] = candidate_power(
                Y, t, c, 15, starts, EFFECTS, method=method, names=geos, mde_step=step
            )
            timings[(label, method)] = time.perf_counter() - t0
        f, r = runs["fast"], runs["refit"]
        same = np.array_equal(f.detections, r.detections) and f.mde == r.mde
        n_lifts = (
            len(EFFECTS) * 2 - 1
            if step is None
            else len(np.arange(step, 0.2 + step / 2, step)) * 2 + 1
        )
        print(
            f"{label}: {len(starts)} windows x {n_lifts} lifts; fast {timings[(label, 'fast')]:.3f} s, "
            f"refit {timings[(label, 'refit')]:.3f} s, ratio refit/fast "
            f"{timings[(label, 'refit')] / timings[(label, 'fast')]:.1f}x; same decisions and MDE: {same} "
            f"(MDE {f.mde}, power {f.power.tolist()})"
        )

    print("\n== 2. the GeoLift walkthrough search ==")
    t0 = time.perf_counter()
    result = design_experiment(panel, n_jobs=args.n_jobs, **SETTINGS)
    t_search = time.perf_counter() - t0
    print(
        f"walkthrough search: {t_search:.1f} s on {args.n_jobs} workers "
        f"({result.n_screened} designs screened, {len(result.candidates)} simulated in full)"
    )
    print(result.summary())

    print("\n== 3. GeoLift's published top designs, simulated with the same engine ==")
    rows = []
    for tr in GEOLIFT_TOP:
        for d in (10, 15):
            ev = evaluate_design(
                panel, tr, d, effect_sizes=EFFECTS, alpha=0.1, cost_per_incremental=7.5
            )
            in_ours = next(
                (
                    x.rank
                    for x in result.candidates
                    if set(x.treated) == set(tr) and x.duration == d
                ),
                None,
            )
            rows.append(
                {
                    "design": ", ".join(tr),
                    "length": d,
                    "MDE (ours, fine grid)": None if ev.mde is None else round(ev.mde, 4),
                    "power at 5%": round(ev.power.power_at(0.05), 2),
                    "false pos. rate": round(ev.power.false_positive_rate, 2),
                    "scaled L2 imbalance": round(ev.fit["scaled_l2_imbalance"], 3),
                    "investment": None if ev.investment is None else round(ev.investment),
                    "rank in our search": in_ours if in_ours is not None else "not a finalist",
                    "source": "GeoLift top",
                }
            )
    for x in result.candidates[:5]:
        rows.append(
            {
                "design": ", ".join(x.treated),
                "length": x.duration,
                "MDE (ours, fine grid)": None if x.mde is None else round(x.mde, 4),
                "power at 5%": round(x.power.power_at(0.05), 2),
                "false pos. rate": round(x.power.false_positive_rate, 2),
                "scaled L2 imbalance": round(x.fit["scaled_l2_imbalance"], 3),
                "investment": None if x.investment is None else round(x.investment),
                "rank in our search": x.rank,
                "source": "liftlab",
            }
        )
    for r in rows:
        print(r)

    print("\n== 4. each tool's pick and claimed MDE, re-measured on the held-out windows ==")
    held = []
    best = result.best
    picks = [
        (tr, d, abs(mde), f"GeoLift (EffectSize {eff:+.2f}, Average_MDE {mde:+.4f})")
        for tr, d, eff, mde in GEOLIFT_CLAIMS
    ]
    picks.append((best.treated, best.duration, best.mde, "liftlab (MDE set on these windows)"))
    for tr, d, claimed, label in picks:
        grid = sorted({0.0, round(claimed, 6), *EFFECTS})
        ev = evaluate_design(panel, tr, d, effect_sizes=grid, alpha=0.1, claim_share=1 / 3)
        pw = ev.power.power_at(claimed)
        held.append(
            {
                "design": ", ".join(tr),
                "length": d,
                "claimed MDE": round(claimed, 4),
                "source": label,
                "power at claimed MDE (held out)": f"{pw:.2f} ± {ev.power.rate_se(pw):.2f}",
                "false pos. rate (held out)": f"{ev.power.false_positive_rate:.2f} ± "
                f"{ev.power.false_positive_rate_se:.2f}",
                "liftlab MDE (held out)": None if ev.mde is None else round(ev.mde, 4),
                "held-out windows": ev.power.n_windows,
            }
        )
    for r in held:
        print(r)
    (out / "design_geolift.html").write_text(
        render_design_report(result, comparison=rows), encoding="utf-8"
    )
    print(f"report: {out / 'design_geolift.html'}")


if __name__ == "__main__":
    main()
