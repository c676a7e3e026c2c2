"""Is a readout's early-window term calibrated? (issue 13: the daily series' information on carryover)

On simulated worlds with known truth, go-dark tests are read out as a user would
(``experiments.readout.read_out``, synthetic control, conformal interval); each readout's
``early`` block (``experiments.readout_windows.early_window``) says: given the total ``T``, the
first week's incremental ``E`` is normal with mean ``E[E] + slope (T - E[T])`` and sd
``sd_given_total``. With the world's true daily incremental of the same test, the standardised
error ``z = ((E - slope T) - (E* - slope T*)) / sd_given_total`` should be standard normal: 90% of
``|z|`` within 1.645. The total's own 90% interval is scored beside it.

Then the structural model is fitted with and without the early terms (``early_windows``) on the same
panel and lifts,
and each lifted channel's posterior mean carryover (adstock decay) is compared with the world's.

    python benchmarks/study_early_window.py [--seeds 0-7] [--weekly] [--days 728]

Figures: docs/calibration.md, "The readout's first week".
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import numpy as np
import pandas as pd
from study_structural import read_lifts

from allocation.structural import StructuralModel
from causal.panel import load_panel
from causal.world import Experiment, World
from causal.world_io import to_weekly
from experiments.readout_windows import EARLY_PERIODS

# (channel, geo offset of g[offset::4], weeks); the fourth quarter of the markets are the donors.
TESTS = (("ctv", 2, 6), ("programmatic", 0, 4), ("brand_search", 1, 4))


def tests_of(world: World) -> tuple[list[Experiment], list[str]]:
    g = world.geos
    start = world.dates[0] + pd.Timedelta(days=7 * int(0.55 * (world.n_days // 7)))
    exps = []
    for ch, offset, weeks in TESTS:
        end = (start + pd.Timedelta(days=7 * weeks - 1)).date().isoformat()
        exps.append(Experiment(ch, tuple(g[offset::4]), start.date().isoformat(), end, 0.0))
    return exps, list(g[3::4])


def true_daily(world: World, e: Experiment) -> np.ndarray:
    """The test's true incremental signups per day of its window, treated markets summed."""
    base, run = world.run(), world.run({e.channel: world._multipliers([e])[e.channel]})
    rows, cols = world._window(e), world._geo_positions(e.geos)
    return (run.signups[np.ix_(rows, cols)] - base.signups[np.ix_(rows, cols)]).sum(axis=1)


def run_seed(seed: int, weekly: bool, days: int = 728) -> tuple[list[dict], list[dict]]:
    world = World(50, days, seed=seed)
    exps, control = tests_of(world)
    observed, _ = world.simulate(exps)
    daily = load_panel(observed)
    scores, decays = [], []
    lifts = read_lifts(daily, exps, control)
    for e, lift in zip(exps, lifts):
        early = lift.early
        truth = true_daily(world, e)
        r_ = EARLY_PERIODS["day"]
        true_d = truth[:r_].sum() - early.slope_on_total * truth.sum()
        obs_d = early.incremental - early.slope_on_total * lift.incremental
        lo, hi = lift.incremental_ci
        scores.append(
            {
                "seed": seed,
                "channel": e.channel,
                "days": len(truth),
                "z_early": (obs_d - true_d) / early.sd_given_total,
                "early_share_true": truth[:r_].sum() / truth.sum(),
                "early_share_read": early.incremental / lift.incremental,
                "total_covered": bool(lo <= truth.sum() <= hi),
            }
        )
    panel = load_panel(to_weekly(observed)[0]) if weekly else daily
    clusters = dict(zip(world.clusters()["geo"], world.clusters()["cluster"]))
    for use in (False, True):
        ls = lifts if use else [dataclasses.replace(lf, early=None) for lf in lifts]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = StructuralModel(clusters=clusters, seed=seed, early_windows=use).fit(panel, ls)
        for k, ch in enumerate(m.channels_):
            if ch not in {e.channel for e in exps}:
                continue
            dec = np.array([m.grid_[ch][j].decay for j in m.draws_["shape"][:, k]])
            true_dec = float(np.mean(world.params[ch]["decay"]))
            decays.append(
                {
                    "seed": seed,
                    "channel": ch,
                    "early_terms": use,
                    "decay_mean": float(dec.mean()),
                    "decay_true": true_dec,
                    "abs_error": abs(float(dec.mean()) - true_dec),
                    "covered": bool(np.quantile(dec, 0.05) <= true_dec <= np.quantile(dec, 0.95)),
                }
            )
    return scores, decays


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-7")
    ap.add_argument("--weekly", action="store_true", help="fit the model on the weekly sums")
    ap.add_argument("--days", type=int, default=728, help="days of the world (tests start at 55%%)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    scores, decays = [], []
    for seed in parse_seeds(args.seeds):
        s, d = run_seed(seed, args.weekly, args.days)
        scores += s
        decays += d
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    sc = pd.DataFrame(scores)
    de = pd.DataFrame(decays)
    pd.set_option("display.width", 200)
    print(sc.round(3).to_string(index=False))
    inside = float((sc["z_early"].abs() <= 1.645).mean())
    print(
        f"\nearly-window term: |z| <= 1.645 in {inside:.0%} of {len(sc)} readouts (nominal 90%); "
        f"mean z {sc['z_early'].mean():+.2f}, sd {sc['z_early'].std():.2f}; "
        f"total's 90% interval covers {sc['total_covered'].mean():.0%}"
    )
    by = de.groupby(["channel", "early_terms"]).agg(
        decay_mean=("decay_mean", "mean"),
        decay_true=("decay_true", "mean"),
        mean_abs_error=("abs_error", "mean"),
        covered=("covered", "mean"),
    )
    print(
        "\nposterior mean carryover (decay) of the lifted channels, without / with the early terms:"
    )
    print(by.round(3).to_string())
    print(f"\nwall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
