"""Each model class's marginal returns on the daily loop's first day, against the world's (issue 14).

On the full configuration's shared start (history and the battery's five go-dark lifts), fits what the
daily loop fits on day 0 (the response model calibrated on the lifts; the structural model, 60 draws;
their equal-weight average) and prints, per line (channel x cluster), each one's marginal and average
return at the status quo over the world's true ones, and the mean absolute log error of the
marginal returns. Figures: docs/backtest.md, "Session 9: the averaged loop's ceiling and its weights".

    python benchmarks/backtest_day0_returns.py --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np

from allocation.backtest import line_marginal_returns
from allocation.backtest_policies import _fit, confounding_prior, true_curve_fns
from allocation.backtest_setting import _curve_fn, average_curves, line_responses, make_setting
from allocation.backtest_structural_fit import expected_cluster_curves, fit_structural
from allocation.calibration import calibrate
from causal.world import World


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--geos", type=int, default=50)
    ap.add_argument("--history", type=int, default=365)
    ap.add_argument("--days", type=int, default=182)
    args = ap.parse_args()
    world = World(args.geos, args.history + args.days, seed=args.seed)
    setting = make_setting(world, args.days, seed=args.seed)
    frame = world.panel(setting.run(np.tile(setting.status_quo, (args.days, 1))))
    sq = setting.status_quo
    truth = true_curve_fns(setting)
    true_marginal = line_marginal_returns(truth, sq)
    true_average = np.array([f(np.array([x]))[0] / x for f, x in zip(truth, sq)])
    response = calibrate(
        _fit(setting, frame, 0),
        list(setting.lifts),
        bias_scale=confounding_prior(world),
        seed=args.seed,
    ).to_dict()
    response = average_curves([response], setting)
    structural = expected_cluster_curves(
        fit_structural(setting, frame, 0, setting.lifts, n_draws=60).to_curves(), setting
    )
    models = {
        "response model": response,
        "structural model": structural,
        "average": average_curves([response, structural], setting),
    }
    channels = list(dict.fromkeys(ch for ch, _ in setting.lines))
    clusters = list(dict.fromkeys(cl for _, cl in setting.lines))
    print(f"seed {args.seed}; lines' clusters in order {', '.join(clusters)}")
    for name, curves in models.items():
        fns = [_curve_fn(r) for r in line_responses(setting, curves)]
        marginal = line_marginal_returns(fns, sq) / true_marginal
        average = np.array([f(np.array([x]))[0] / x for f, x in zip(fns, sq)]) / true_average
        print(
            f"{name}: marginal return / true, mean |log| {np.mean(np.abs(np.log(marginal))):.2f} "
            f"(average return: {np.mean(np.abs(np.log(average))):.2f})"
        )
        for ch in channels:
            idx = [i for i, (c, _) in enumerate(setting.lines) if c == ch]
            print(
                f"   {ch:16s} marginal {' '.join(f'{marginal[i]:.2f}' for i in idx)}"
                f"   average {' '.join(f'{average[i]:.2f}' for i in idx)}"
            )


if __name__ == "__main__":
    main()
