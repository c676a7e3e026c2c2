"""Each model class's marginal returns and curvature on the daily loop's first day, against the world's
(issue 14).

On the full configuration's shared start (history and the battery's five go-dark lifts), fits what the
daily loop fitted on day 0 before session 13 (its structural fits now add ``--structural-option
'{"shape_prior": "meridian"}'``) (the response model calibrated on the lifts; the structural model, 60 draws;
their equal-weight average) and prints, per line (channel x cluster), each one's marginal and average
return at the status quo over the world's true ones, the mean absolute log error of the marginal
returns, and the curve's elasticity of the marginal return to spend at the status quo (``d log f' /
d log x`` over +-10%: how fast returns fall as spend moves, which sets how far a plan moves) beside
the world's. Then the structural model's half-saturation picks per channel (share of its draws at each
multiple of the channel's mean spend per unit size, and the world's own multiple), and each mediated
channel's contribution over the fitted history split into its direct part and its query path, in total
and per cluster, beside the world's (``--unmediated programmatic``: the world without that channel's
query path, so any query path the model finds is spurious).

With ``--frozen`` it also runs the backtest with each of the three day-0 curve sets planned, frozen,
every day of the horizon inside the guardrail (no tests, no refits), beside the oracle within the
guardrail: the share of the oracle's gain over the status quo at equal spend that the day-0 curves
alone are worth. Figures: docs/backtest.md, "Session 9: the averaged loop's ceiling and its weights",
"Session 10: programmatic's curve is the lever" and "Session 11: what is left on seed 0".

    python benchmarks/backtest_day0_returns.py --seed 0 [--frozen] [--prior-on coefficient]
        [--structural-option '{"time_effects": true}'] [--no-lifts] [--unmediated programmatic]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
from backtest_world import add_world_options, build_world

from allocation.backtest import GuardedOracle, Oracle, StatusQuo, backtest, line_marginal_returns
from allocation.backtest_policies import _fit, confounding_prior, guardrail_today, true_curve_fns
from allocation.backtest_setting import (
    Setting,
    _curve_fn,
    average_curves,
    line_responses,
    make_setting,
    plan_lines,
)
from allocation.backtest_structural_fit import expected_cluster_curves, fit_structural
from allocation.calibration import calibrate
from allocation.structural import PRIOR_ON, StructuralModel
from allocation.structural_result import draw_multiples
from causal.world import World
from causal.world_params import CLUSTERS, MEDIATED_CONVERSION

STEP = 1.1  # the elasticity's central difference: spend x 1/1.1 and x 1.1


def day0_models(
    setting: Setting,
    frame,
    prior_on: str = "marginal_return",
    options: dict | None = None,
    lifts: bool = True,
) -> tuple[dict[str, dict], StructuralModel]:
    """What the daily loop plans on at day 0: each model class's line curves and their average
    (``options``: further structural-model parameters; ``lifts=False``: the structural model without
    the battery's lifts)."""
    response = calibrate(
        _fit(setting, frame, 0),
        list(setting.lifts),
        bias_scale=confounding_prior(setting.world),
        seed=setting.seed,
    ).to_dict()
    response = average_curves([response], setting)
    model = fit_structural(
        setting,
        frame,
        0,
        setting.lifts if lifts else [],
        n_draws=60,
        options={"prior_on": prior_on, **(options or {})},
    )
    structural = expected_cluster_curves(model.to_curves(), setting)
    models = {
        "response model": response,
        "structural model": structural,
        "average": average_curves([response, structural], setting),
    }
    return models, model


def day0_world(args: argparse.Namespace) -> tuple[World, Setting, pd.DataFrame]:
    """The world, its backtest setting and the panel a fit on the loop's first day sees (the history
    and the battery; the horizon run at the status quo is never read before day 0)."""
    world = build_world(args)
    setting = make_setting(world, args.days, seed=args.seed)
    frame = world.panel(setting.run(np.tile(setting.status_quo, (args.days, 1))))
    return world, setting, frame


def print_path_split(model: StructuralModel, setting: Setting) -> None:
    """The structural model's direct and query-path contributions of each mediated channel over the
    fitted history, in total and per cluster, beside the world's (its direct response, and the
    signups its branded queries convert into, from the same run of the world)."""
    rows = slice(0, len(model.dates_))
    run = setting.run(np.tile(setting.status_quo, (setting.days, 1)))
    world = setting.world
    curves = model.to_curves()
    by_cluster = {(a["name"], a["market"]): a["effect"] for a in curves["aggregates"]}
    print("contributions over the fitted history, model / world (direct, query path, total):")
    for ch in model.mediated_:
        scopes = [("all", np.ones(world.n_geos, bool))] + [
            (name, world.cluster_of == c) for c, name in enumerate(CLUSTERS)
        ]
        for scope, geos in scopes:
            direct = float(run.direct[ch][rows][:, geos].sum())
            path = float(MEDIATED_CONVERSION * run.mediated_queries[ch][rows][:, geos].sum())
            e = by_cluster.get((ch, scope))
            if scope == "all":
                r = model.contributions_.set_index("channel").loc[ch]
                e = {"direct": r["direct"], "mediated": r["mediated"], "total": r["total"]}
            if e is None:
                continue
            print(
                f"   {ch:13s} {scope:6s} {e['direct']:,.0f} / {direct:,.0f}"
                f"   {e['mediated']:,.0f} / {path:,.0f}   {e['total']:,.0f} / {direct + path:,.0f}"
            )
    queries = float(run.brand_queries[rows].sum())
    caused = {ch: float(run.mediated_queries[ch][rows].sum()) for ch in model.mediated_}
    shares = ", ".join(f"{ch} {q:,.0f} ({q / queries:.1%})" for ch, q in caused.items())
    print(f"   branded queries each one causes over the fitted history (share of all): {shares}")
    # The signups equation's coefficient of a mediated channel holds its direct effect plus its
    # queries' conversion beyond kappa (MEDIATED_CONVERSION - kappa): the target of a comparison.
    fit = curves["fit"]
    if fit["kappa"] is not None:
        print(
            "   kappa (signups per branded query, the demand proxy's terms summed): "
            + ", ".join(f"{c} {k:.3f}" for c, k in zip(fit["clusters"], fit["kappa"]))
        )
    spurious = getattr(model, "negative_control_", {})
    if spurious:  # the negative controls' query contributions, which the world says are zero
        print(
            "negative controls' spurious query contributions: "
            + ", ".join(f"{ch} {v:,.0f}" for ch, v in spurious.items())
        )


def returns(fns: list, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each line's marginal and average return ``f(x) / x`` at ``x``."""
    marginal = line_marginal_returns(fns, x)
    average = np.array([f(np.array([v]))[0] / v for f, v in zip(fns, x)])
    return marginal, average


def elasticity(fns: list, x: np.ndarray) -> np.ndarray:
    """Each line's ``d log f'(x) / d log x`` at ``x`` (central difference over x/STEP .. x*STEP)."""
    lo, hi = line_marginal_returns(fns, x / STEP), line_marginal_returns(fns, x * STEP)
    return np.log(hi / lo) / np.log(STEP**2)


class Frozen:
    """Plans every day inside the guardrail on one fixed set of line curves (a curves.json dict)."""

    def __init__(self, name: str, curves: dict, max_change: float = 0.15) -> None:
        self.name, self.curves, self.max_change = name, curves, max_change

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        lo, hi, _ = guardrail_today(setting, context["plan"], day, self.max_change)
        return plan_lines(setting, self.curves, setting.budget, lo, hi)


def print_half_saturation_picks(model: StructuralModel, world: World) -> None:
    """Share of the structural model's draws at each half-saturation multiple and at each Hill
    exponent, per channel."""
    print(
        "structural model's half-saturation picks (share of draws at each multiple of mean spend) "
        "and Hill exponent picks:"
    )
    combos = model.draws_["shape"]
    for k, ch in enumerate(model.channels_):
        grid = model.grid_[ch]
        ref = grid[0].half_saturation / model.half_saturations[0]
        picks = draw_multiples(grid, model.half_saturations, combos[:, k])
        shares = "  ".join(
            f"{m:g}x {np.mean(np.isclose(picks, m)):.0%}" for m in model.half_saturations
        )
        exponents = np.array([grid[j].shape for j in combos[:, k]])
        n_shares = "  ".join(
            f"n={n:g} {np.mean(np.isclose(exponents, n)):.0%}" for n in model.shapes
        )
        print(
            f"   {ch:16s} {shares}   world's: {world.params[ch]['half_saturation'] / ref:.2f}x"
            f"   |  {n_shares}   world's: n={world.params[ch]['shape']:g}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_options(ap)
    ap.add_argument(
        "--frozen",
        action="store_true",
        help="also plan the horizon on each day-0 curve set, frozen, inside the guardrail",
    )
    ap.add_argument(
        "--prior-on",
        choices=PRIOR_ON,
        default="marginal_return",
        help="the structural model's coefficient prior (coefficient: before session 10's fix)",
    )
    ap.add_argument(
        "--structural-option",
        default="{}",
        type=json.loads,
        help="further StructuralModel parameters, a JSON object (e.g. '{\"time_effects\": true}')",
    )
    ap.add_argument(
        "--no-lifts", action="store_true", help="the structural model without the battery's lifts"
    )
    args = ap.parse_args()
    world, setting, frame = day0_world(args)
    sq = setting.status_quo
    truth = true_curve_fns(setting)
    true_marginal, true_average = returns(truth, sq)
    true_elasticity = elasticity(truth, sq)
    models, structural = day0_models(
        setting, frame, args.prior_on, args.structural_option, not args.no_lifts
    )
    channels = list(dict.fromkeys(ch for ch, _ in setting.lines))
    clusters = list(dict.fromkeys(cl for _, cl in setting.lines))
    print(f"seed {args.seed}; lines' clusters in order {', '.join(clusters)}")
    print("world's elasticity of the marginal return at the status quo:")
    for ch in channels:
        idx = [i for i, (c, _) in enumerate(setting.lines) if c == ch]
        print(f"   {ch:16s} {' '.join(f'{true_elasticity[i]:.2f}' for i in idx)}")
    for name, curves in models.items():
        fns = [_curve_fn(r) for r in line_responses(setting, curves)]
        marginal, average = returns(fns, sq)
        marginal, average = marginal / true_marginal, average / true_average
        elastic = elasticity(fns, sq)
        print(
            f"{name}: marginal return / true, mean |log| {np.mean(np.abs(np.log(marginal))):.2f} "
            f"(average return: {np.mean(np.abs(np.log(average))):.2f}; elasticity, mean |error| "
            f"{np.mean(np.abs(elastic - true_elasticity)):.2f})"
        )
        for ch in channels:
            idx = [i for i, (c, _) in enumerate(setting.lines) if c == ch]
            print(
                f"   {ch:16s} marginal {' '.join(f'{marginal[i]:.2f}' for i in idx)}"
                f"   average {' '.join(f'{average[i]:.2f}' for i in idx)}"
                f"   elasticity {' '.join(f'{elastic[i]:.2f}' for i in idx)}"
            )
    print_half_saturation_picks(structural, world)
    print_path_split(structural, setting)
    if not args.frozen:
        return
    policies = [StatusQuo(), *(Frozen(f"{n}, frozen", c) for n, c in models.items())]
    result = backtest(
        world, days=args.days, seed=args.seed, policies=[*policies, GuardedOracle(), Oracle()]
    )
    shares = result.summary_table["share_of_oracle_gain"]
    print("day-0 curves planned frozen inside the guardrail, share of the oracle's gain:")
    for name, share in shares.items():
        print(f"   {name:32s} {share:.1%}")


if __name__ == "__main__":
    main()
