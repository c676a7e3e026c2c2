"""Simulation study of every readout estimator on the simulated world, against the known truth.

Per estimator (by INTERFACE.md name) and scenario: bias and RMSE of the lift
(percentage points of the true counterfactual), coverage of the interval at
``--confidence``, rejection rate at alpha = 1 - confidence (the false positive
rate under ``lift 0%``, the power otherwise), mean seconds per readout.
Scenarios: injected lifts (``--lifts``) and a real in-world CTV go-dark
experiment (true incremental from rerunning the world). See
:mod:`experiments.readout_study` for the design.

An estimator that cannot be imported is skipped with a printed note.

Run: python benchmarks/study_readout.py --reps 200 [--estimators sc,asc,sdid,tbr,did:cluster,gbr] [--treated 15]
[--out study.csv]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from causal.base import ESTIMATOR_PATHS, estimator_class
from experiments.readout_geo import GEO_LEVEL
from experiments.readout_study import StudyDesign, run_study, summarise


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--estimators", default=",".join(ESTIMATOR_PATHS))
    parser.add_argument("--lifts", default="0,0.05,0.1")
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument(
        "--inference", default=None, help="default: each estimator's own first choice"
    )
    parser.add_argument("--geos", type=int, default=30)
    parser.add_argument(
        "--treated", type=int, default=2, help="treated geos per replication (geos/2: balanced)"
    )
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--worlds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-experiments", action="store_true")
    parser.add_argument("--out", default=None, help="CSV of every replication")
    args = parser.parse_args()

    names = []
    for name in args.estimators.split(","):
        try:
            if name.partition(":")[0] not in GEO_LEVEL:
                estimator_class(name.partition(":")[0])
            names.append(name)
        except ImportError as exc:
            print(f"note: skipping estimator '{name}': it does not import ({exc})")
    design = StudyDesign(
        n_geos=args.geos,
        n_days=args.days,
        n_worlds=args.worlds,
        n_treated=args.treated,
        lifts=tuple(float(x) for x in args.lifts.split(",")),
        world_experiments=not args.no_experiments,
    )
    print(f"study: {args.reps} replications, estimators {', '.join(names)}, {design}")
    t0 = time.perf_counter()
    results = run_study(
        names,
        args.reps,
        design=design,
        confidence=args.confidence,
        seed=args.seed,
        inference=args.inference,
    )
    if args.out:
        results.to_csv(args.out, index=False)
    table = summarise(results, alpha=1 - args.confidence)
    pd.set_option("display.width", 200)
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    if table.attrs.get("failed"):
        print(f"replications the method could not fit: {table.attrs['failed']}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    print()
    print(markdown(table))


def markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (for docs/readout.md), without extra dependencies."""
    flat = table.reset_index()
    lines = ["| " + " | ".join(flat.columns) + " |", "|" + "---|" * len(flat.columns)]
    for row in flat.itertuples(index=False):
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
