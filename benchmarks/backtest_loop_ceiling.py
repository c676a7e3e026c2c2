"""What caps the daily loop's share of the oracle's gain? Three ablations of the response-model loop (issue 14).

Each variant runs the status quo, the response-model daily loop (``DailyLoop``, its defaults: 13-week
average, one 21-day test a week round-robin) changed in one way, and the oracle, on the full
configuration (50 markets, 365 days of history, 182-day horizon), and prints the loop's share of the
oracle's gain over the status quo at equal spend (``backtest_full.py --daily-only`` is the unchanged
loop):

* ``exact``: every test's readout replaced by the world's true expected lift of that test (the signups
  the test's intervention changed in its markets and window, from two runs of the world with and
  without it; interval +-2%) and its true spend change (printed: how far the readouts' spend changes
  were off). If the loop stays below 80% with exact lifts, readout noise is not what caps it.
* ``known-spend``: real readouts, but each lift's spend change replaced by the one the test executed
  (its multiplier applied to the plan in its markets and window: the loop knows its own media plan).
* ``exact-mixed``: the same with the round-robin's intensities go-dark, half cut, heavy-up in turn
  (marginal returns measured near current spend, exactly).
* ``shape``: before each weekly calibration, every lifted channel's saturation is re-chosen on a
  finer grid (Hill of shape 1 or 2 and exp at seven scales, log at three) by the panel's fit
  (residual sum of squares over the autocorrelation-inflated variance) plus the lifts' log predictive
  density under the calibration's own confounding prior: the shape scored on the lifts, not the
  panel alone.
* ``shape-mixed``: ``shape`` with the three intensities in turn.
* ``exact-shape-mixed``: exact readouts of the three intensities in turn, and the shapes scored on
  them (what scoring the shape on the lifts could give if the readouts were exact).
* ``shape-mixed-half``: ``shape-mixed`` with tests on half of a cluster's markets instead of a third
  (tighter real readouts, at a larger test cost the equal-spend share does not count).
* ``concave``: the response model's shape grid without the S-shaped Hill (shape 2): every channel
  concave, as the world's curves nearly are (CTV's Hill shape is 1.2, the others' 1).
* ``blend``: the response model's calibration averaged each week with the structural model's fit on
  the same lifts (``DailyLoop(average_models=True)``; the default of ``backtest_full.py`` since
  session 8; every other variant here is on the response model alone).
* ``blend-half`` / ``blend-mixed-half``: ``blend`` with tests on half of a cluster's markets instead of
  a third (go-darks; or the three intensities in turn): tighter readouts at a larger test cost.
* ``exact-blend`` / ``exact-blend-mixed``: ``blend`` with every test read out exactly (go-darks; or the
  three intensities in turn): what the averaged loop could reach if readout noise were gone.
* ``true-channels``: ``blend`` with the lines of the channels ``--true-channels`` names (default
  programmatic) planned on the world's true steady-state curves (direct plus the query path, fitted by
  one Hill curve per line as the loop's own curves are), every other line on the loop's curves: what
  getting those channels' curves right is worth (session 10).
* ``cluster-day``: the fixed block's smooth per-cluster time terms replaced by cluster x day effects
  (two-way: each geo demeaned over time, then each cluster's mean removed each day), so cluster-level
  demand shocks cannot masquerade as the cluster-level random walk of planned budgets.

    python benchmarks/backtest_loop_ceiling.py --variant exact --seed 0

Figures: docs/backtest.md, "What caps the daily loop (session 7)" and "Session 10: programmatic's
curve is the lever".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from collections.abc import Iterator, Sequence

import numpy as np
from backtest_world import add_world_options, build_world
from scipy import stats

import allocation.fixed_effects as fixed_effects
from allocation.backtest import DailyLoop, Oracle, StatusQuo, backtest
from allocation.backtest_policies import _fit, confounding_prior, true_curve_fns
from allocation.backtest_setting import Setting, fit_hill_curve, spend_grid
from allocation.calibration import calibrate
from allocation.calibration_lifts import Lift, lift_design
from allocation.response_model import ChannelCurve, ResponseModel
from allocation.structural_inputs import _TwoWay

MIXED = ("go-dark", "half", "heavy-up")
SCALES = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)


def executed_spend_change(setting: Setting, plan: np.ndarray, test: dict) -> float:
    """The spend ``test`` moved in its markets and window: its multiplier applied to the plan."""
    base = setting.to_geos(plan)[test["channel"]]
    moved = setting.with_tests({test["channel"]: base}, [test])[test["channel"]] - base
    cols = [list(setting.world.geos).index(g) for g in test["geos"]]
    return float(moved[test["first"] : test["last"] + 1][:, cols].sum())


class KnownSpendLoop(DailyLoop):
    """The daily loop calibrating each readout on the spend change its test executed."""

    def _read_test(self, test, setting, context, frame) -> Lift:
        lift = super()._read_test(test, setting, context, frame)
        return self._reread(lift, setting, context["plan"], test)

    def _reread(self, lift: Lift, setting: Setting, plan: np.ndarray, test: dict) -> Lift:
        return dataclasses.replace(lift, spend_delta=executed_spend_change(setting, plan, test))


class ExactLiftLoop(KnownSpendLoop):
    """The daily loop reading every test exactly: the world's true expected lift (+-2% interval) and
    spend change."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spend_errors_: list[float] = []

    def _reread(self, lift: Lift, setting: Setting, plan: np.ndarray, test: dict) -> Lift:
        # The spend change too: the readout estimates it from the controls' spend, which the
        # loop's own plan moves differently in other clusters.
        moved = executed_spend_change(setting, plan, test)
        self.spend_errors_.append(lift.spend_delta / moved - 1.0)
        others = [u for u in self.tests_ if u is not test]
        caused = (
            setting.run(plan, cuts=self.tests_).media_caused()
            - setting.run(plan, cuts=others).media_caused()
        )
        cols = [list(setting.world.geos).index(g) for g in test["geos"]]
        true = float(caused[test["first"] : test["last"] + 1][:, cols].sum())
        sd = max(abs(true) * 0.02, 1.0)
        z = stats.norm.ppf(0.5 + lift.confidence / 2)
        return dataclasses.replace(
            lift,
            incremental=true,
            incremental_ci=(true - z * sd, true + z * sd),
            spend_delta=moved,
            early=None,  # the real readout's early window does not belong to the exact total
        )


class TrueChannelsLoop(DailyLoop):
    """The loop planning the lines of ``true_channels`` on the world's true curves (a diagnostic)."""

    def __init__(self, true_channels: Sequence[str] = ("programmatic",), **kwargs) -> None:
        super().__init__(**kwargs)
        self.true_channels = tuple(true_channels)
        self._true: dict[tuple[str, str], dict] | None = None

    def _recalibrate(self, day, setting, context) -> dict:
        curves = super()._recalibrate(day, setting, context)
        if self._true is None:
            fns = true_curve_fns(setting)
            self._true = {}
            for i, key in enumerate(setting.lines):
                if key[0] in self.true_channels:
                    xs = spend_grid(setting, i)
                    self._true[key] = fit_hill_curve(xs, fns[i](xs))
        lines = [
            {**c, "response": self._true.get((c["name"], c["market"]), c["response"])}
            for c in curves["channels"]
        ]
        return {**curves, "channels": lines}


def _saturations(ref: float) -> list[tuple[str, dict]]:
    out = [("hill", {"half_saturation": ref * m, "shape": s}) for s in (1.0, 2.0) for m in SCALES]
    out += [("exp", {"scale": ref * m}) for m in SCALES]
    return out + [("log", {"scale": ref * m}) for m in (0.25, 1.0, 4.0)]


def lift_log_density(model: ResponseModel, lifts: Sequence[Lift], bias_scale: dict) -> float:
    """Log predictive density of the lifts under the panel's posterior plus calibrate's bias prior."""
    if not lifts:
        return 0.0
    designs = [lift_design(model, lf) for lf in lifts]
    rows = np.array([d.row for d in designs])
    w = model.n_coef_per_channel_
    prior_var = np.zeros(len(model.theta_))
    for ch in {d.lift.channel for d in designs}:
        sl = model.column_index(ch)
        mine = [d for d in designs if d.lift.channel == ch]
        implied = sum(d.lift.incremental for d in mine) / sum(
            d.row[sl].sum() if w == 1 else d.row[sl.start] for d in mine
        )
        tau = bias_scale.get(ch, 1.0) * max(abs(model.theta_[sl.start]), abs(implied)) + 1e-12
        cols = [sl.start] if w == 1 else list(range(sl.start + 1, sl.stop))
        prior_var[cols] += tau**2
    sd = np.array([d.lift.sd for d in designs])
    cov = rows @ (model.cov_ + np.diag(prior_var)) @ rows.T + np.diag(sd**2)
    y = np.array([d.lift.incremental for d in designs])
    return float(stats.multivariate_normal(rows @ model.theta_, cov, allow_singular=True).logpdf(y))


def rescore_shapes(model: ResponseModel, lifts: Sequence[Lift], bias_scale: dict) -> None:
    """Re-choose each lifted channel's saturation by panel fit plus the lifts' predictive density."""
    d = model._d
    rows = np.ones(d.y.size, dtype=bool)
    base = model._fit_linear(d, rows, store=True)
    s2 = base["sigma2"] * base["vif"]
    for ch in sorted({lf.channel for lf in lifts}):
        x = d.spend[ch]
        ref = float((x[x > 0] / np.broadcast_to(d.size, x.shape)[x > 0]).mean())
        kept, best = model.curves_[ch], (-np.inf, None)
        mine = [lf for lf in lifts if lf.channel == ch]
        for form, params in _saturations(ref):
            model.curves_[ch] = ChannelCurve(ch, kept.adstock, form, params)
            fit = model._fit_linear(d, rows, store=True)
            r = fit["proj"].resid(fit["yv"] - fit["F"] @ fit["theta"])
            score = -0.5 * float(r @ r) / s2 + lift_log_density(model, mine, bias_scale)
            if score > best[0]:
                best = (score, model.curves_[ch])
        model.curves_[ch] = best[1]
    model._fit_linear(d, rows, store=True)


class ShapeOnLiftsLoop(DailyLoop):
    """The daily loop whose lifted channels' saturations are re-chosen with the lifts each week."""

    def _recalibrate(self, day, setting, context) -> dict:
        if day % self.refit_every == 0 or self._model is None:
            self._model = _fit(setting, context["frame"](), day, self.pooling)
        fitted_to = self._model.dates_[-1].date().isoformat()
        bias = confounding_prior(setting.world)
        lifts = [lf for lf in self.lifts_ if lf.end <= fitted_to]
        rescore_shapes(self._model, lifts, bias)
        return calibrate(self._model, lifts, bias_scale=bias, seed=setting.seed).to_dict()


class ExactShapeLoop(ExactLiftLoop, ShapeOnLiftsLoop):
    """Exact readouts, and the lifted channels' saturations scored on them."""


@contextlib.contextmanager
def cluster_day_effects() -> Iterator[None]:
    """The response model's fixed block as the structural model's ``time_effects=True`` one: geo
    effects plus cluster x period effects (:class:`allocation.structural_inputs._TwoWay`)."""
    projector = fixed_effects.FixedBlock.projector

    def two_way(self, rows):
        periods = int(rows.reshape(self.T, self.G).all(axis=1).sum())
        return _TwoWay(self.cidx, self.n_cl, periods, self.G)

    fixed_effects.FixedBlock.projector = two_way
    try:
        yield
    finally:
        fixed_effects.FixedBlock.projector = projector


@contextlib.contextmanager
def concave_grid() -> Iterator[None]:
    """Drop the S-shaped Hill (shape 2) from the response model's saturation grid."""
    candidates = ResponseModel._candidates

    def concave(self, ref):
        ads, sats = candidates(self, ref)
        return ads, [(f, p) for f, p in sats if not (f == "hill" and p["shape"] != 1.0)]

    ResponseModel._candidates = concave
    try:
        yield
    finally:
        ResponseModel._candidates = candidates


VARIANTS = {
    "exact": (ExactLiftLoop, ("go-dark",)),
    "known-spend": (KnownSpendLoop, ("go-dark",)),
    "exact-mixed": (ExactLiftLoop, MIXED),
    "shape": (ShapeOnLiftsLoop, ("go-dark",)),
    "shape-mixed": (ShapeOnLiftsLoop, MIXED),
    "exact-shape-mixed": (ExactShapeLoop, MIXED),
    "shape-mixed-half": (ShapeOnLiftsLoop, MIXED),
    "cluster-day": (DailyLoop, ("go-dark",)),
    "concave": (DailyLoop, ("go-dark",)),
    "blend": (DailyLoop, ("go-dark",)),
    "blend-half": (DailyLoop, ("go-dark",)),
    "blend-mixed-half": (DailyLoop, MIXED),
    "exact-blend": (ExactLiftLoop, ("go-dark",)),
    "exact-blend-mixed": (ExactLiftLoop, MIXED),
    "true-channels": (TrueChannelsLoop, ("go-dark",)),
}
SCOPES = {"cluster-day": cluster_day_effects, "concave": concave_grid}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    add_world_options(ap)
    ap.add_argument(
        "--true-channels",
        default="programmatic",
        help="with --variant true-channels: the channels planned on the world's true curves (comma list)",
    )
    args = ap.parse_args()
    started = time.perf_counter()
    cls, intensities = VARIANTS[args.variant]
    world = build_world(args)
    share = 0.5 if args.variant.endswith("-half") else 1 / 3
    blend = (
        {"average_models": True}
        if "blend" in args.variant or args.variant == "true-channels"
        else {}
    )
    if args.variant == "true-channels":
        blend["true_channels"] = tuple(args.true_channels.split(","))
    policies = [StatusQuo(), cls(intensities=intensities, test_share=share, **blend), Oracle()]
    scope = SCOPES.get(args.variant, contextlib.nullcontext)()
    with scope:
        result = backtest(world, days=args.days, seed=args.seed, policies=policies)
    captured = result.summary_table.loc["daily loop", "share_of_oracle_gain"]
    print(
        f"VARIANT {args.variant} seed {args.seed}: daily loop captures {captured:.1%} of the oracle's gain "
        f"over the status quo at equal spend ({time.perf_counter() - started:.0f} s)"
    )
    errors = np.abs(getattr(policies[1], "spend_errors_", []))
    if errors.size:
        print(
            f"the readouts' spend changes were off by {np.median(errors):.1%} (median), "
            f"{errors.max():.1%} at most, over {errors.size} tests"
        )


if __name__ == "__main__":
    main()
