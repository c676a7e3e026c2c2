"""Where does the daily loop lose the oracle's gain? (issue 14 diagnosis)

Runs, on one world, the status quo, the daily loop (response model, or ``--structural``), a loop that
plans the whole horizon inside the guardrail on the curves the daily loop holds at the END of the
horizon (hindsight curves: if it captures no more than the loop, the loss is the model's marginal
returns, not learning delay), the oracle within the guardrail and the oracle. Then decomposes the
loop's shortfall against the guarded oracle by line (channel x cluster): each line's regret is
``sum_d [f_i(g_d) - f_i(x_d) - lam (g_d - x_d)]`` on the true steady-state curves, ``g`` the guarded
oracle's plan, ``x`` the loop's, ``lam`` the true marginal return at the oracle's plan (the lines'
regrets sum to the total steady-state shortfall, since both plans spend the budget every day).

    python benchmarks/backtest_loop_diagnose.py --seed 0 [--geos 50 --history 365 --days 182]
        [--average-weeks 13] [--exact-lifts | --structural] [--scope cluster-day|concave]

``--scope`` changes the response model as ``backtest_loop_ceiling.py``'s variant of that name (run with
``PYTHONPATH=$PWD:$PWD/benchmarks``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from backtest_world import add_world_options, build_world

from allocation.backtest import (
    DailyLoop,
    GuardedOracle,
    Oracle,
    StatusQuo,
    backtest,
    line_marginal_returns,
)
from allocation.backtest_policies import guardrail_today, true_curve_fns
from allocation.backtest_setting import (
    Setting,
    _curve_fn,
    best_allocation,
    line_responses,
    plan_lines,
)

OUT = Path(__file__).with_name("out")


class Hindsight:
    """Plans every day inside the guardrail on fixed curves: those ``source`` holds when it has run."""

    def __init__(self, source, name: str, max_change: float = 0.15) -> None:
        self.source, self.name, self.max_change = source, name, max_change
        self.curves = None

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        if self.curves is None:
            self.curves = self.source._curves
        lo, hi, yesterday = guardrail_today(setting, context["plan"], day, self.max_change)
        return plan_lines(setting, self.curves, setting.budget, lo, hi)


def line_fns(setting: Setting, curves: dict) -> list:
    return [_curve_fn(r) for r in line_responses(setting, curves)]


def main() -> None:
    ap = argparse.ArgumentParser()
    add_world_options(ap)
    ap.add_argument("--structural", action="store_true")
    ap.add_argument(
        "--exact-lifts",
        action="store_true",
        help="the response-model loop reading every test exactly (backtest_loop_ceiling.ExactLiftLoop)",
    )
    ap.add_argument(
        "--scope",
        choices=("cluster-day", "concave"),
        help="the response model changed as backtest_loop_ceiling's variant of that name",
    )
    ap.add_argument("--plan-on", default="mean", choices=("mean", "draws"))
    ap.add_argument("--average-weeks", type=int, default=1)
    ap.add_argument(
        "--average-models",
        action="store_true",
        help="the response-model loop averaged with the structural model (the loop's default)",
    )
    args = ap.parse_args()

    started = time.perf_counter()
    world = build_world(args)
    if args.structural:
        from allocation.backtest_structural import StructuralLoop

        loop = StructuralLoop(
            proposer="voi",
            test_share=0.5,
            n_draws=60,
            plan_on=args.plan_on,
            average_weeks=args.average_weeks,
        )
    elif args.exact_lifts:
        from backtest_loop_ceiling import ExactLiftLoop

        loop = ExactLiftLoop(average_weeks=args.average_weeks)
    else:
        loop = DailyLoop(average_weeks=args.average_weeks, average_models=args.average_models)
    hind = Hindsight(loop, "hindsight curves in the guardrail")
    go = GuardedOracle()
    pols = [StatusQuo(), loop, hind, go, Oracle()]
    import contextlib

    from backtest_loop_ceiling import SCOPES

    with SCOPES[args.scope]() if args.scope else contextlib.nullcontext():
        res = backtest(world, days=args.days, seed=args.seed, policies=pols)
    t = res.summary_table
    print(t[["equal_incremental", "share_of_oracle_gain"]].to_string())
    from allocation.backtest_setting import make_setting

    setting = make_setting(world, args.days, seed=args.seed)
    truth = true_curve_fns(setting)
    sq = setting.status_quo
    orc = best_allocation(truth, setting.budget)
    lam = float(np.median(line_marginal_returns(truth, orc)))
    x = res.plans[loop.name].to_numpy()
    g = res.plans[go.name].to_numpy()
    h = res.plans[hind.name].to_numpy()

    def val(fns, plan):
        return np.array([f(plan[:, i]).sum() for i, f in enumerate(fns)])

    reg_loop = val(truth, g) - val(truth, x) - lam * (g - x).sum(axis=0)
    reg_hind = val(truth, g) - val(truth, h) - lam * (g - h).sum(axis=0)
    end = line_fns(setting, loop._curves)
    by_line = {(c["name"], c["market"]): c for c in loop._curves["channels"]}
    ends = [by_line[key] for key in setting.lines]
    static_model = best_allocation(end, setting.budget)

    def ss(plan):
        return sum(f(np.array([v]))[0] for f, v in zip(truth, plan))

    gain = ss(orc) - ss(sq)
    rows = []
    for i, (ch, cl) in enumerate(setting.lines):
        rows.append(
            {
                "line": f"{ch}/{cl}",
                "sq": sq[i],
                "oracle": orc[i],
                "model_static_opt": static_model[i],
                "loop_last": x[-1, i],
                "guarded_last": g[-1, i],
                "mtrue_sq": line_marginal_returns([truth[i]], sq[i : i + 1])[0],
                "mmodel_sq": line_marginal_returns([end[i]], sq[i : i + 1])[0],
                "mtrue_loop_last": line_marginal_returns([truth[i]], x[-1, i : i + 1])[0],
                "mmodel_loop_last": line_marginal_returns([end[i]], x[-1, i : i + 1])[0],
                "model_form": "{form} {shape}".format(
                    form=ends[i]["response"]["form"], shape=ends[i]["response"].get("shape", "")
                ),
                "avg_true_sq": float(truth[i](sq[i : i + 1])[0] / sq[i]),
                "avg_model_sq": float(end[i](sq[i : i + 1])[0] / sq[i]),
                "regret_loop": reg_loop[i],
                "regret_hindsight": reg_hind[i],
            }
        )
    import pandas as pd

    df = pd.DataFrame(rows).set_index("line")
    pd.set_option("display.width", 250)
    print(df.round(4).to_string())
    print(f"lambda (true marginal at oracle) {lam:.5f}")
    print(
        f"steady-state share of the oracle's gain of the END model's static optimum: "
        f"{(ss(static_model) - ss(sq)) / gain:.1%}"
    )
    print(
        f"total steady-state regret vs guarded oracle: loop {reg_loop.sum():,.0f}, hindsight {reg_hind.sum():,.0f}"
    )
    by_ch = df.groupby(df.index.str.split("/").str[0])[["regret_loop", "regret_hindsight"]].sum()
    by_cl = df.groupby(df.index.str.split("/").str[1])[["regret_loop", "regret_hindsight"]].sum()
    print(by_ch.round(0).to_string())
    print(by_cl.round(0).to_string())
    OUT.mkdir(exist_ok=True)
    tag = (
        ("structural" if args.structural else "daily_exact" if args.exact_lifts else "daily")
        + (f"_{args.scope}" if args.scope else "")
        + f"_{args.plan_on}_avg{args.average_weeks}"
    )
    (OUT / f"diagnose_{tag}_{args.geos}x{args.days}_{args.seed}.json").write_text(
        json.dumps(
            {
                "shares": t["share_of_oracle_gain"].to_dict(),
                "lines": df.to_dict(orient="index"),
                "lambda": lam,
                "seconds": time.perf_counter() - started,
            },
            indent=1,
            default=float,
        )
    )
    print(f"wall {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
