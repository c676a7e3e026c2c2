"""Simulation study of every readout estimator on the simulated world, against the known truth.

Two kinds of replication:

* **injected lifts**: in a business-as-usual world, the treated geos' outcome in a test window
  is multiplied by ``1 + lift`` (:func:`experiments.power.inject_lift`, the design's own
  injection); the true incremental total is ``lift`` times their untouched outcome there.
  ``lift = 0`` gives the false positive rate and the coverage under no effect.
* **in-world experiments**: a real intervention run inside the world
  (:meth:`causal.world.World.experiment_truth`, e.g. CTV go-dark), whose true incremental
  signups come from rerunning the world under the same draws.

Per estimator (by INTERFACE.md name) and scenario: bias and RMSE of the lift (percentage points
of the true counterfactual), coverage of the interval at ``--confidence``, rejection rate at
alpha = 1 - confidence (the false positive rate under ``lift 0%``, the power otherwise), mean
seconds per readout. Every draw comes from ``--seed``. Public APIs only: this harness lives
outside the library (issue 19).

An estimator that cannot be imported is skipped with a printed note.

Run: python benchmarks/study_readout.py --reps 200 [--estimators sc,asc,sdid,tbr,did:cluster,gbr] [--treated 15]
[--out study.csv]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal.base import ESTIMATOR_PATHS, estimator_class
from causal.errors import LiftlabError
from causal.panel import load_panel
from causal.world import Experiment, World
from experiments.power import inject_lift
from experiments.readout import read_out
from experiments.readout_geo import GEO_LEVEL


@dataclass
class StudyDesign:
    """Settings of one study (see :func:`run_study`)."""

    n_geos: int = 30
    n_days: int = 300
    n_worlds: int = 4
    n_treated: int = 2
    test_days: int = 21
    pre_days: int = 120
    lifts: Sequence[float] = (0.0, 0.05, 0.1)
    world_experiments: bool = True
    experiment_channel: str = "ctv"


def _draw_designs(world: World, d: StudyDesign, rng: np.random.Generator, n: int):
    for _ in range(n):
        treated = sorted(rng.choice(world.geos, size=d.n_treated, replace=False).tolist())
        start = int(rng.integers(d.pre_days, world.n_days - d.test_days + 1))
        yield treated, start


def run_study(
    estimators: Sequence[str],
    n_reps: int,
    *,
    design: StudyDesign | None = None,
    confidence: float = 0.9,
    seed: int = 0,
    inference: str | None = None,
    progress: bool = False,
    selection_check: bool = False,
) -> pd.DataFrame:
    """Run the study; returns one row per (estimator, scenario, replication).

    ``estimators`` are names, or ``name:inference`` (e.g. ``did:cluster``) to
    run one with a chosen inference.

    Columns: ``estimator, scenario, lift, rep, true_incremental, incremental,
    lo, hi, p_value, true_counterfactual, seconds``; ``scenario`` is
    ``injected`` or ``experiment``. An estimator that fails to import is
    skipped with a row-less note printed by the caller (see :func:`summarise`).
    """
    d = design or StudyDesign()
    rng = np.random.default_rng(seed)
    reps_per_world = int(np.ceil(n_reps / d.n_worlds))
    rows: list[dict] = []
    done = 0
    for _ in range(d.n_worlds):
        if done >= n_reps:
            break
        world = World(d.n_geos, d.n_days, seed=int(rng.integers(1 << 30)))
        base = world.run()
        panel = load_panel(world.panel(base))
        signups = panel.wide()
        for treated, start in _draw_designs(world, d, rng, min(reps_per_world, n_reps - done)):
            dates = panel.dates
            test = (dates[start], dates[start + d.test_days - 1])
            pre = (dates[start - d.pre_days], dates[start - 1])
            window = signups.loc[test[0] : test[1], treated]
            scenarios = []
            for lift in d.lifts:
                scenarios.append(
                    (
                        "injected",
                        lift,
                        inject_lift(panel, treated, start, d.test_days, lift),
                        float(lift * window.to_numpy().sum()),
                        float(window.to_numpy().sum()),
                    )
                )
            if d.world_experiments:
                e = Experiment(
                    d.experiment_channel,
                    tuple(treated),
                    str(test[0].date()),
                    str(test[1].date()),
                    0.0,
                )
                truth = world.experiment_truth(e, base=base)
                observed, _ = world.simulate([e])  # the public way to the experiment's panel
                scenarios.append(
                    (
                        "experiment",
                        float("nan"),
                        load_panel(observed),
                        truth["true_incremental"],
                        truth["counterfactual"],
                    )
                )
            for scenario, lift, p, true_inc, true_cf in scenarios:
                for name in estimators:
                    # "name:inference" runs one estimator with a chosen inference (e.g. "did:cluster").
                    est_name, _, inf_name = name.partition(":")
                    t0 = time.perf_counter()
                    try:
                        r = read_out(
                            p,
                            treated,
                            test,
                            pre_period=pre,
                            estimator=est_name,
                            confidence=confidence,
                            seed=seed + done,
                            inference=inf_name or inference,
                            placebos=False,
                            selection_check=selection_check,
                        )
                    except (
                        LiftlabError
                    ) as exc:  # a replication the method cannot fit is recorded, not hidden
                        rows.append(
                            {
                                "estimator": name,
                                "scenario": scenario,
                                "lift": lift,
                                "rep": done,
                                "error": str(exc),
                            }
                        )
                        continue
                    rows.append(
                        {
                            "estimator": name,
                            "scenario": scenario,
                            "lift": lift,
                            "rep": done,
                            "true_incremental": true_inc,
                            "true_counterfactual": true_cf,
                            "incremental": r.incremental,
                            "lo": r.incremental_ci[0],
                            "hi": r.incremental_ci[1],
                            "p_value": r.p_value,
                            "seconds": time.perf_counter() - t0,
                            "error": None,
                        }
                    )
            done += 1
            if progress:
                print(f"  replication {done}/{n_reps}", flush=True)  # a script: printing is its job
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame, *, alpha: float = 0.1) -> pd.DataFrame:
    """Per estimator and scenario: bias, RMSE (lift points), coverage, rejection rate, seconds."""
    ok = results[results["error"].isna()].copy()
    ok["lift_error"] = (ok["incremental"] - ok["true_incremental"]) / ok["true_counterfactual"]
    ok["covered"] = (ok["lo"] <= ok["true_incremental"]) & (ok["true_incremental"] <= ok["hi"])
    ok["reject"] = ok["p_value"] <= alpha
    ok["label"] = np.where(
        ok["scenario"] == "injected",
        "lift " + ok["lift"].map(lambda x: f"{x:.0%}"),
        "in-world experiment",
    )
    out = ok.groupby(["estimator", "label"]).agg(
        reps=("rep", "size"),
        bias_pp=("lift_error", lambda x: 100 * x.mean()),
        rmse_pp=("lift_error", lambda x: 100 * np.sqrt((x**2).mean())),
        coverage=("covered", "mean"),
        reject_rate=("reject", "mean"),
        seconds=("seconds", "mean"),
    )
    failed = results[results["error"].notna()].groupby(["estimator"]).size()
    out.attrs["failed"] = failed.to_dict()
    return out


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
    parser.add_argument(
        "--selection-check",
        action="store_true",
        help="read out with the selection check on (experiments/readout_selection.py)",
    )
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
        selection_check=args.selection_check,
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
