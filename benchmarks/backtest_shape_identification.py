"""How well a year of history identifies each line's marginal return, and what limits it (issue 14).

On the daily loop's shared start (a year of history and the battery's five go-dark lifts), fits the
structural model the loop fitted on day 0 before session 13 (60 posterior draws, the prior on the
marginal return, the uniform shape grid; ``--structural-option '{"shape_prior": "meridian"}'`` for
today's) and prints, per channel, the model's marginal return at the status quo over the world's true one in each
cluster (the posterior mean curve's, as the loop plans on), whether the draws' 90% interval of it
covers the truth, and the interval's width (the ratio of its ends). Then the same on worlds changed in
one way each, to tell noise from a flaw of the model:

* ``noiseless``: the signups' own sampling noise (``sqrt(mu) z``) switched off; the organic demand's
  autocorrelated deviations stay, since they are what a geo panel's residuals are.
* ``stronger``: programmatic's direct and query effects four times the world's (its signal four times
  as large against the same noise).
* ``varied``: programmatic's planned spend spread by a further weekly, per-market log-normal factor of
  sd 0.5 (about twice the history's spend variation).
* ``noiseless-periods``: no sampling noise, and the model with cluster-by-period effects
  (``time_effects``), so only within-cluster spend variation is left to learn from.

If the model were flawed, the noiseless world would keep its errors and the stronger signal would not
shrink them; if a year of this panel is simply too little, the stronger signal does. Figures:
docs/backtest.md, "Session 13: how well a year identifies the marginal returns".

    python benchmarks/backtest_shape_identification.py --seed 0 [--variants base,noiseless,...]
        [--structural-option '{"shape_prior": "meridian"}']
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from backtest_world import add_world_options, build_world, change_channel

from allocation.backtest import line_marginal_returns
from allocation.backtest_policies import true_curve_fns
from allocation.backtest_setting import _curve_fn, line_responses, make_setting
from allocation.backtest_structural_fit import (
    cluster_draws,
    expected_cluster_curves,
    fit_structural,
)
from causal import response as R
from causal.world import World

VARIANTS = ("base", "noiseless", "stronger", "varied", "noiseless-periods")
STRONGER = 4.0  # programmatic's effect multiple in the "stronger" world
VARIED_SD = 0.5  # sd of the "varied" world's further log spend factor
LEVEL = 0.9  # the posterior interval's level


def change_world(world: World, variant: str, seed: int) -> None:
    """Change the world in place as the variant says (the history's draws are otherwise the same)."""
    if variant.startswith("noiseless"):
        world.z = np.zeros_like(world.z)
    elif variant == "stronger":
        change_channel(world, "programmatic", effect=STRONGER)
    elif variant == "varied":
        week = np.arange(world.n_days) // 7
        rng = np.random.default_rng([seed, 2026])
        factor = rng.normal(0.0, VARIED_SD, (week[-1] + 1, world.n_geos))[week]
        world.planned["programmatic"] = world.planned["programmatic"] * np.exp(
            factor - VARIED_SD**2 / 2
        )


def draw_marginals(curves: dict, setting, x: np.ndarray) -> np.ndarray:
    """Each line's marginal return at ``x`` under every posterior draw (draws x lines)."""
    draws = cluster_draws(curves)
    return np.column_stack(
        [R.derivative("hill", x[i], draws[key]) for i, key in enumerate(setting.lines)]
    )


def study(args: argparse.Namespace, variant: str) -> list[dict]:
    """One world and fit: per line, the marginal return's ratio to the truth, and its interval."""
    world = build_world(args)
    change_world(world, variant, args.seed)
    setting = make_setting(world, args.days, seed=args.seed)
    frame = world.panel(setting.run(np.tile(setting.status_quo, (args.days, 1))))
    options = {
        "prior_on": "marginal_return",
        "time_effects": variant == "noiseless-periods",
        **args.structural_option,
    }
    model = fit_structural(setting, frame, 0, setting.lifts, n_draws=60, options=options)
    curves = model.to_curves()
    sq = setting.status_quo
    true = line_marginal_returns(true_curve_fns(setting), sq)
    expected = expected_cluster_curves(curves, setting)
    mean = line_marginal_returns([_curve_fn(r) for r in line_responses(setting, expected)], sq)
    draws = draw_marginals(curves, setting, sq)
    lo, hi = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    return [
        {
            "channel": ch,
            "cluster": cl,
            "ratio": mean[i] / true[i],
            "covered": bool(lo[i] <= true[i] <= hi[i]),
            "width": hi[i] / lo[i],
        }
        for i, (ch, cl) in enumerate(setting.lines)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_options(ap)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument(
        "--structural-option",
        default="{}",
        type=json.loads,
        help="further StructuralModel parameters, a JSON object (e.g. '{\"shapes\": [1.0]}')",
    )
    args = ap.parse_args()
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            ap.error(f"--variants: unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
        rows = study(args, variant)
        errors = [abs(np.log(r["ratio"])) for r in rows]
        print(
            f"seed {args.seed}, {variant}: marginal return at the status quo, model / world, per "
            f"cluster (* the {LEVEL:.0%} interval misses the world's); mean |log| "
            f"{np.mean(errors):.2f}, coverage {np.mean([r['covered'] for r in rows]):.0%}"
        )
        for ch in dict.fromkeys(r["channel"] for r in rows):
            mine = [r for r in rows if r["channel"] == ch]
            ratios = " ".join(
                f"{r['cluster']} {r['ratio']:.2f}{'' if r['covered'] else '*'}" for r in mine
            )
            width = np.mean([r["width"] for r in mine])
            print(f"   {ch:16s} {ratios}   interval's hi/lo {width:.2f}")


if __name__ == "__main__":
    main()
