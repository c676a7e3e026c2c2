"""The demo's branded-search go-dark over many worlds: bias and 90% coverage of its readout.

For each world seed, the demo's own steps up to the readout (``allocation.workflows.demo``'s
settings): the history to ``HISTORY_END``, the branded-search design (12 to 20 markets, 56
days), the CTV design on the other markets, both tests run inside the world, and the branded
go-dark read out as the demo does (``sc``, conformal, the markets of neither test as controls),
with the selection check (the default) and without it. The truth is the world's
(:meth:`causal.world.World.experiment_truth`: treated markets' signups over the test window with
the go-dark minus without it, under the same draws).

Also, per world, ``--random`` random treated sets of the same size from the same markets, read
out over the same window on the world without the test (truth zero): the coverage an unselected
set gets, with and without the check.

For the designed go-dark it also reports the power the design claimed at the true effect
(``claimed_power``: with the registry readout's widening, or the plain curve when the check is
off) beside the readout's detection rate (``detected``).

Run: python benchmarks/study_brand_readout.py --seeds 0-12 [--random 5] [--out brand.csv]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from allocation.workflows.demo import BRAND_WINDOW, CTV_WINDOW, HISTORY_END
from causal.panel import load_panel
from causal.world import Experiment, World
from experiments.design import design_experiment
from experiments.readout import read_out


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def one_world(seed: int, n_random: int) -> list[dict]:
    """Rows for one world: the designed go-dark (with and without the check) and random sets."""
    world = World(seed=seed)
    full = world.panel()
    history = load_panel(full[full["date"] <= HISTORY_END])
    kw = dict(seed=seed, n_jobs=1)
    brand = design_experiment(
        history,
        n_treated=(12, 20),
        durations=[56],
        effect_sizes=[0, 0.005, 0.01, 0.015, 0.02, 0.03],
        **kw,
    )
    treated = list(brand.to_dict()["treated"])
    ctv = design_experiment(
        history,
        n_treated=(4, 8),
        durations=[28],
        exclude=treated,
        effect_sizes=[0, 0.02, 0.04, 0.06, 0.08, 0.1],
        **kw,
    )
    ctv_geos = list(ctv.to_dict()["treated"])
    experiments = [
        Experiment("brand_search", tuple(treated), *BRAND_WINDOW, 0.0),
        Experiment("ctv", tuple(ctv_geos), *CTV_WINDOW, 0.0),
    ]
    control = [g for g in world.geos if g not in set(treated) | set(ctv_geos)]
    frame, truth = world.simulate(experiments)
    panel = load_panel(frame)
    true_inc = truth["experiments"][0]["true_incremental"]
    rows = []
    for check in (True, False):
        r = read_out(
            panel,
            treated,
            BRAND_WINDOW,
            control=control,
            channel="brand_search",
            seed=seed,
            selection_check=check,
        )
        row = _row(seed, "designed", check, r, true_inc)
        # The design's claim for this test: the power it promised at the true effect, with the
        # widening the registry's readout applies (the default) and without it.
        p, lift = brand.best.power, abs(true_inc) / r.counterfactual
        row["claimed_power"] = p.power_at(lift) if check else p.power_at(lift * p.selection_factor)
        row["detected"] = bool(r.incremental_ci[1] < 0 or r.incremental_ci[0] > 0)
        rows.append(row)
    # Unselected sets of the same size from the same markets, on the world without the test.
    null_panel = load_panel(full)
    pool = [g for g in world.geos if g not in set(ctv_geos)]
    rng = np.random.default_rng([seed, 7])
    for _ in range(n_random):
        t = sorted(rng.choice(pool, len(treated), replace=False).tolist())
        c = [g for g in pool if g not in t]
        for check in (True, False):
            r = read_out(
                null_panel,
                t,
                BRAND_WINDOW,
                control=c,
                seed=seed,
                selection_check=check,
                placebos=False,
            )
            rows.append(_row(seed, "random", check, r, 0.0))
    return rows


def _row(seed: int, kind: str, check: bool, r, truth: float) -> dict:
    lo, hi = r.incremental_ci
    widened = next((n for n in r.notes if "calmer than" in n), None)
    factor = float(widened.rsplit("widened x", 1)[1].rstrip(".")) if widened else 1.0
    return {
        "seed": seed,
        "set": kind,
        "selection_check": check,
        "truth": truth,
        "incremental": r.incremental,
        "lo": lo,
        "hi": hi,
        "counterfactual": r.counterfactual,
        "widened": factor,
    }


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per kind of set and check: worlds, mean error, RMSE (signups and % of counterfactual), coverage."""
    df = results.copy()
    df["error"] = df["incremental"] - df["truth"]
    df["covered"] = (df["lo"] <= df["truth"]) & (df["truth"] <= df["hi"])
    df["half_width"] = (df["hi"] - df["lo"]) / 2
    df["error_pct"] = 100 * df["error"] / df["counterfactual"]
    return df.groupby(["set", "selection_check"]).agg(
        readouts=("seed", "size"),
        mean_error=("error", "mean"),
        rmse=("error", lambda x: float(np.sqrt(np.mean(x**2)))),
        rmse_pct=("error_pct", lambda x: float(np.sqrt(np.mean(x**2)))),
        mean_half_width=("half_width", "mean"),
        coverage=("covered", "mean"),
        mean_widened=("widened", "mean"),
        claimed_power=("claimed_power", "mean"),
        detected=("detected", "mean"),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0-12")
    parser.add_argument("--random", type=int, default=5, help="random sets per world")
    parser.add_argument("--out", default=None, help="CSV of every readout")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = []
    for seed in _seeds(args.seeds):
        rows += one_world(seed, args.random)
        d = rows[-2 * args.random - 2]
        print(
            f"seed {seed}: truth {d['truth']:,.0f}, readout {d['incremental']:,.0f} "
            f"[{d['lo']:,.0f}, {d['hi']:,.0f}] (widened x{d['widened']:.2f})",
            flush=True,
        )
    results = pd.DataFrame(rows)
    if args.out:
        results.to_csv(args.out, index=False)
    pd.set_option("display.width", 200)
    print(summarise(results).to_string(float_format=lambda x: f"{x:,.3f}"))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
