"""What the averaged daily loop learns from, changed one way at a time (issue 14, session 12).

The loop as it is (``DailyLoop(average_models=True)``: the response model's calibration and the structural
model's fit averaged each week, then over 13 weeks) with its structural side or its data changed; full
configuration (50 markets, 365 days of history, 182-day horizon) unless the world options say otherwise.
Prints the loop's share of the oracle's gain over the status quo at equal spend, as
``backtest_full.py --daily-only`` does for the unchanged loop.

* ``--structural JSON``: the structural side as a list of ``[weight, options]`` fits, each a
  :class:`~allocation.structural.StructuralModel` with those parameters (``"per_cluster": true`` in the
  options fits it on each cluster's markets alone, with the lifts wholly inside the cluster); the
  response model keeps one minus their weights. Default ``[[0.5, {"prior_on": "marginal_return",
  "shape_prior": "meridian"}]]`` is the loop as it is (since session 13; session 12's figures were
  measured with the uniform shape grid, a fit's default when its options do not name one).
* ``--holdout-tail DAYS``: every lift's treated markets, over its window and ``DAYS`` days after it,
  held out of the structural model's observational likelihood (the lift term is then their only
  likelihood: the experiment is not counted twice).
* ``--jitter SD``: the panel the loop learns from (its weekly fits and readouts) has every line's
  spend spread over the cluster's markets with weekly log-normal multipliers of sd ``SD``,
  budget-neutral within the cluster (size-weighted mean one), as business-as-usual budgets vary by
  market; the runs scored keep the plan's spread by size, so the jitter's own cost is not counted
  (an upper bound of what that extra variation teaches).
* ``--planned-bias S``: the response model's confounding prior of the planned channels (default
  ``PLANNED_BIAS``).
* ``--test-share S``: the share of a cluster's markets each test takes (default a third).

    python benchmarks/backtest_loop_learning.py --seed 0 --jitter 0.25

Figures: docs/backtest.md, "Session 12: what the loop learns from".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from backtest_world import add_world_options, build_world

import allocation.structural_inference as structural_inference
from allocation.backtest import DailyLoop, Oracle, StatusQuo, backtest
from allocation.backtest_policies import PLANNED_BIAS, confounding_prior
from allocation.backtest_setting import Setting, average_curves
from allocation.backtest_structural_fit import expected_cluster_curves, fit_structural
from allocation.calibration_lifts import Lift
from causal.world_params import CLUSTERS

LOOP_AS_IT_IS = [[0.5, {"prior_on": "marginal_return", "shape_prior": "meridian"}]]


class StructuralEnsembleLoop(DailyLoop):
    """The averaged daily loop with its structural side as several weighted fits."""

    def __init__(self, structural: Sequence[Sequence], **kwargs) -> None:
        super().__init__(average_models=True, **kwargs)
        self.structural = [(float(w), dict(opts)) for w, opts in structural]

    def _recalibrate(self, day: int, setting: Setting, context: dict) -> dict:
        self.average_models = False  # the response model's weekly calibration alone
        try:
            response = super()._recalibrate(day, setting, context)
        finally:
            self.average_models = True
        frame = context["frame"]()
        parts, weights = [response], [1.0 - sum(w for w, _ in self.structural)]
        for w, opts in self.structural:
            opts = dict(opts)
            if opts.pop("per_cluster", False):
                parts.append(_per_cluster_curves(setting, frame, day, self.lifts_, opts))
            else:
                model = fit_structural(setting, frame, day, self.lifts_, n_draws=60, options=opts)
                parts.append(expected_cluster_curves(model.to_curves(), setting))
            weights.append(w)
        return average_curves(parts, setting, weights=weights)


def _per_cluster_curves(
    setting: Setting, frame: pd.DataFrame, day: int, lifts: Sequence[Lift], options: dict
) -> dict:
    """The structural model fitted on each cluster's markets alone (its own shapes, no pooling across
    clusters), with only the lifts wholly inside the cluster."""
    w = setting.world
    lines = []
    for c in range(len(CLUSTERS)):
        geos = set(np.asarray(w.geos)[w.cluster_of == c])
        if not geos:
            continue
        own = [lf for lf in lifts if set(lf.treated) <= geos]
        model = fit_structural(
            setting, frame[frame["geo"].isin(geos)], day, own, n_draws=60, options=options
        )
        lines += model.to_curves()["channels"]
    return expected_cluster_curves({"channels": lines}, setting)


@contextlib.contextmanager
def panel_holdout(tail: int) -> Iterator[None]:
    """Every lift's treated cells (window plus ``tail`` days) out of the structural panel likelihood.

    The cells' rows of the projected design are zeroed and the per-cluster Gram matrices rebuilt,
    right after the fit builds them (its first use of the lifts); the fixed effects were projected out
    with the cells in, a second-order difference for a diagnostic.
    """
    original = structural_inference.StructuralInference._query_bound_channels

    def held_out(self, lifts=()):
        T, G = self._T, self._G
        index = {g: i for i, g in enumerate(self.geos_)}
        X = self._X.reshape(T, G, -1)
        n_out = 0
        for lf in lifts:
            end = pd.Timestamp(lf.end) + pd.Timedelta(days=tail)
            rows = np.flatnonzero((self.dates_ >= pd.Timestamp(lf.start)) & (self.dates_ <= end))
            cols = [index[g] for g in lf.treated if g in index]
            X[np.ix_(rows, cols)] = 0.0
            n_out += len(rows) * len(cols)
        rows_c = self._row_clusters()
        gram = np.zeros_like(self._gram)
        for c in range(self._C):
            Xc = self._X[rows_c == c].astype(float)
            gram[c] = Xc.T @ Xc
        self._gram, self._dof = gram, self._dof - n_out
        return original(self, lifts)

    structural_inference.StructuralInference._query_bound_channels = held_out
    try:
        yield
    finally:
        structural_inference.StructuralInference._query_bound_channels = original


@contextlib.contextmanager
def learning_jitter(loop: DailyLoop, sd: float, seed: int) -> Iterator[None]:
    """The loop's learning panel with every line spread by weekly, budget-neutral market multipliers.

    Only the runs made with the loop's own test list (the panel its fits and readouts see) are
    jittered; the runs that score the plan are not.
    """
    original = Setting.run

    def run(self, plan, cuts=()):
        if cuts is not loop.tests_:
            return original(self, plan, cuts)
        w = self.world
        spend = self.with_tests(self.to_geos(plan), cuts)
        rng = np.random.default_rng([seed, 99])
        weeks = -(-self.days // 7)
        for ch in w.channels:
            m = np.exp(rng.normal(0.0, sd, (weeks, w.n_geos)))
            for c in range(len(CLUSTERS)):
                sel = w.cluster_of == c
                if sel.any():
                    mean = (m[:, sel] * w.size[sel]).sum(axis=1, keepdims=True) / w.size[sel].sum()
                    m[:, sel] /= mean
            spend[ch][self.start : self.start + self.days] *= np.repeat(m, 7, axis=0)[: self.days]
        return w.run(spend=spend)

    Setting.run = run
    try:
        yield
    finally:
        Setting.run = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_options(ap)
    ap.add_argument("--structural", default=json.dumps(LOOP_AS_IT_IS))
    ap.add_argument("--holdout-tail", type=int, default=None)
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--planned-bias", type=float, default=PLANNED_BIAS)
    ap.add_argument("--test-share", type=float, default=1 / 3)
    args = ap.parse_args()
    started = time.perf_counter()
    world = build_world(args)
    bias = {
        ch: (args.planned_bias if scale == PLANNED_BIAS else scale)
        for ch, scale in confounding_prior(world).items()
    }
    loop = StructuralEnsembleLoop(
        json.loads(args.structural), bias_scale=bias, test_share=args.test_share
    )
    with contextlib.ExitStack() as scopes:
        if args.holdout_tail is not None:
            scopes.enter_context(panel_holdout(args.holdout_tail))
        if args.jitter:
            scopes.enter_context(learning_jitter(loop, args.jitter, args.seed))
        result = backtest(
            world, days=args.days, seed=args.seed, policies=[StatusQuo(), loop, Oracle()]
        )
    captured = result.summary_table.loc["daily loop", "share_of_oracle_gain"]
    print(
        f"seed {args.seed} structural {args.structural} holdout-tail {args.holdout_tail} "
        f"jitter {args.jitter} planned-bias {args.planned_bias} test-share {args.test_share:.2f}: "
        f"daily loop captures {captured:.1%} of the oracle's gain over the status quo at equal "
        f"spend ({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
