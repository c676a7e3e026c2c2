"""What each model class of the averaged daily loop says about a line, week by week (issue 14).

The daily loop (``DailyLoop(average_models=True)``, the default on the half-year) plans on the average
of two weekly calibrations: the response model's and the structural model's. This runs the loop on the
full configuration and records both before they are averaged, then prints, per channel and cluster, at
a few weeks: each one's marginal return at the status quo over the world's (``m/t``), its average
return ``f(x) / x`` over the world's (``a/t``), and its ratio of marginal to average return ``m/a``
(the world's beside it: how far the curve bends at current spend; a go-dark pins the average, the plan
follows the marginal); and the structural model's half-saturation draws at those weeks.

    python benchmarks/backtest_loop_components.py --seed 0 [--channels programmatic,ctv]
        [--structural-option '{"half_saturations": [0.5, 0.71, 1, 1.41, 2, 2.83, 4]}']

``--structural-option`` passes further ``StructuralModel`` parameters to the loop's weekly structural
fits (JSON object). Run with ``PYTHONPATH=$PWD:$PWD/benchmarks``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from backtest_day0_returns import returns
from backtest_world import add_world_options, build_world

import allocation.backtest_policies as policies
from allocation.backtest import DailyLoop, Oracle, StatusQuo, backtest
from allocation.backtest_policies import true_curve_fns
from allocation.backtest_setting import _curve_fn, line_responses, make_setting
from allocation.structural_result import draw_multiples

WEEKS = (0, 4, 8, 12, 16, 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_options(ap)
    ap.add_argument("--channels", default="programmatic,ctv")
    ap.add_argument("--structural-option", default="{}", type=json.loads)
    args = ap.parse_args()
    pairs: list[list[dict]] = []
    average_curves, fit_structural = policies.average_curves, policies.fit_structural

    def record(history, setting, weights=None):
        if weights is not None:  # the two model classes, before their average
            pairs.append(history)
        return average_curves(history, setting, weights)

    picks: list[dict] = []

    def fit(*a, options=None, **k):
        model = fit_structural(*a, options={**(options or {}), **args.structural_option}, **k)
        picks.append(
            {
                ch: draw_multiples(
                    model.grid_[ch], model.half_saturations, model.draws_["shape"][:, j]
                )
                for j, ch in enumerate(model.channels_)
            }
        )
        return model

    policies.average_curves, policies.fit_structural = record, fit
    world = build_world(args)
    loop = DailyLoop(average_models=True)
    result = backtest(world, days=args.days, seed=args.seed, policies=[StatusQuo(), loop, Oracle()])
    share = result.summary_table["share_of_oracle_gain"][loop.name]
    print(f"seed {args.seed}: daily loop captures {share:.1%} of the oracle's gain (equal spend)")
    setting = make_setting(world, args.days, seed=args.seed)
    sq = setting.status_quo
    true_m, true_a = returns(true_curve_fns(setting), sq)
    weeks = sorted({w for w in WEEKS if w < len(pairs)} | {len(pairs) - 1})  # the horizon's weeks
    for ch in args.channels.split(","):
        idx = [i for i, (c, _) in enumerate(setting.lines) if c == ch]
        clusters = " ".join(setting.lines[i][1] for i in idx)
        print(f"{ch} ({clusters}); world's m/a {np.round(true_m[idx] / true_a[idx], 2)}")
        for week in weeks:
            row = f"  week {week:2d}"
            for name, curves in zip(("response", "structural"), pairs[week]):
                fns = [_curve_fn(r) for r in line_responses(setting, curves)]
                m, a = returns(fns, sq)
                row += (
                    f"   {name}: m/t {np.round(m[idx] / true_m[idx], 2)}"
                    f" a/t {np.round(a[idx] / true_a[idx], 2)} m/a {np.round(m[idx] / a[idx], 2)}"
                )
            print(row)
        shares = []
        for week in weeks:
            m = picks[week][ch]
            grid = sorted(set(np.round(m, 6)))
            shares.append(
                f"week {week}: " + " ".join(f"{g:g}x {np.mean(np.isclose(m, g)):.0%}" for g in grid)
            )
        print(
            "  structural model's half-saturation draws (multiples of mean spend): "
            + "; ".join(shares)
        )


if __name__ == "__main__":
    main()
