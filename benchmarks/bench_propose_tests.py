"""Time a ranked test proposal on the default world (50 markets x 730 days x 5 channels), issue 16.

Calibrates the structural model on the panel (no lift), then ranks candidate tests with
``allocation.next_test.propose_tests`` at its defaults, and prints the wall time of each step, the
ranking's top rows and each channel's credit against the truth. Run:

    python benchmarks/bench_propose_tests.py [--seed 0] [--compare-screen] [--compare-replan]
"""

from __future__ import annotations

import argparse
import time

from allocation.curves import CurveSet
from allocation.next_test import propose_tests
from allocation.structural import StructuralModel
from causal.graph import default_graph, joint_controls, normalise
from causal.panel import load_panel
from causal.world import World


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compare-screen",
        action="store_true",
        help="also time the proposal with the design search's default 4 screening windows",
    )
    parser.add_argument(
        "--compare-replan",
        action="store_true",
        help="also time the proposal with replan_every=7 (the demo's: a weekly guardrail over a year)",
    )
    args = parser.parse_args()
    world = World(seed=args.seed)
    panel = load_panel(world.panel())
    graph = normalise(default_graph(panel.channels, panel.y), panel.channels, panel.y)
    t0 = time.perf_counter()
    model = StructuralModel(
        controls=joint_controls(graph, panel.channels, panel.covariates),
        clusters=dict(world.clusters().itertuples(index=False, name=None)),
        graph=graph,
        seed=args.seed,
    ).fit(panel)
    curves = CurveSet.from_dict(model.to_curves())
    t1 = time.perf_counter()
    proposal = propose_tests(curves, panel, seed=args.seed)
    t2 = time.perf_counter()
    print(
        f"world seed {args.seed}: {len(panel.geos)} markets x {len(panel.dates)} days, {len(curves)} lines, "
        f"{curves.n_draws} draws"
    )
    print(
        f"calibration {t1 - t0:.1f} s; ranked proposal of {len(proposal.values)} candidates {t2 - t1:.1f} s"
    )
    print(proposal.summary())
    if args.compare_screen:
        t3 = time.perf_counter()
        other = propose_tests(curves, panel, seed=args.seed, n_screen_windows=4)
        t4 = time.perf_counter()
        same = [v.test.label for v in other.values[:5]] == [
            v.test.label for v in proposal.values[:5]
        ]
        print(
            f"same process: 4 screening windows {t4 - t3:.1f} s, 2 (default) {t2 - t1:.1f} s, "
            f"ratio {(t2 - t1) / (t4 - t3):.2f}; same top five: {same}"
        )

    if args.compare_replan:
        t5 = time.perf_counter()
        weekly = propose_tests(curves, panel, seed=args.seed, replan_every=7)
        t6 = time.perf_counter()
        print(
            f"same process: replan_every=7 {t6 - t5:.1f} s, default {t2 - t1:.1f} s, ratio "
            f"{(t6 - t5) / (t2 - t1):.2f}; best: {weekly.best.test.label} (value "
            f"{weekly.best.value:,.0f}, cost {weekly.best.cost:,.0f})"
        )


if __name__ == "__main__":
    main()
