"""Fit + calibration speed and credit against the truth: the structural model and the older regression.

1. ``--case default`` (the default run does every part): causal.world.World(seed=0) (50 geos, 730 days,
   five channels) with two experiments run inside the world from 2025-02-03 on disjoint geos (CTV go-dark
   in 12 geos for 6 weeks, branded-search go-dark in 19 geos for 8 weeks), each read out by
   experiments.readout.read_out (synthetic control). Both models fit the same panel and lifts in this
   process: ``StructuralModel`` (default of ``liftlab calibrate``) and ``ResponseModel`` + ``calibrate``
   (``--model regression``); wall time and contribution / truth per channel.
2. ``--case 50`` and ``--case 190``: fit + calibration time and peak resident memory (ru_maxrss of a fresh
   process) of 50 geos x 730 days x 5 channels and 190 geos x 730 days x 8 channels (the world's five,
   partnerships and two extra upper-funnel channels, ``World(extra_channels=2)``), one CTV lift each.
3. ``--case worlds``: no lift, brand_queries observed, seeds 0-3 at 50 x 730 daily and the same worlds
   summed to weeks: total contribution / truth per channel and whether the 90% interval holds the truth.

Run with ``OMP_NUM_THREADS=2 python benchmarks/bench_calibrate.py`` (figures in docs/calibration.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import pandas as pd

from allocation.calibration import Lift, calibrate
from allocation.response_model import ResponseModel
from allocation.structural import StructuralModel
from causal.panel import load_panel
from causal.world import CLUSTERS, Experiment, World


def scenario(seed: int = 0):
    world = World(seed=seed)
    g = world.geos
    ctv_geos = tuple(g[2::4])
    others = [x for x in g if x not in ctv_geos]
    bs_geos = tuple(others[::2])
    exps = [
        Experiment("ctv", ctv_geos, "2025-02-03", "2025-03-16", 0.0, name="ctv go-dark"),
        Experiment(
            "brand_search", bs_geos, "2025-02-03", "2025-03-30", 0.0, name="brand_search go-dark"
        ),
    ]
    panel, truth = world.simulate(exps)
    return load_panel(panel), truth, exps, [x for x in g if x not in ctv_geos + bs_geos]


def readout_lifts(panel, exps, control):
    from experiments.readout import read_out

    lifts = []
    for e in exps:
        r = read_out(
            panel,
            list(e.geos),
            (e.start, e.end),
            control=control,
            channel=e.channel,
            seed=0,
            placebos=False,
        )
        lifts.append(Lift.from_dict(r.to_dict(), e.name))
    return lifts


def clusters_of(world: World) -> dict[str, str]:
    return {g: CLUSTERS[c] for g, c in zip(world.geos, world.cluster_of)}


def default_case() -> None:
    panel, truth, exps, control = scenario()
    world = World(seed=0)
    lifts = readout_lifts(panel, exps, control)
    controls = ["launch", "competitor_price"]
    t0 = time.perf_counter()
    model = StructuralModel(controls=controls, clusters=clusters_of(world)).fit(panel, lifts)
    t_struct = time.perf_counter() - t0
    t0 = time.perf_counter()
    reg = ResponseModel(controls=controls, clusters=clusters_of(world)).fit(panel)
    result = calibrate(reg, lifts)
    t_reg = time.perf_counter() - t0
    print(f"default world, 2 readout lifts: structural {t_struct:.1f} s, regression {t_reg:.1f} s")
    for lf, t in zip(lifts, truth["experiments"]):
        print(
            f"lift {lf.name}: readout {lf.incremental:,.0f} [{lf.incremental_ci[0]:,.0f}, "
            f"{lf.incremental_ci[1]:,.0f}], truth {t['true_incremental']:,.0f}"
        )
    c = model.contributions_.set_index("channel")
    print(
        f"{'channel':<16} {'truth':>10} {'structural':>11} {'ratio':>6} {'90% interval':>24} "
        f"{'regression':>11} {'ratio':>6}"
    )
    for ch, tr in truth["contributions"].items():
        a, r = c.loc[ch, "total"], result.channels.loc[ch, "contribution_after"]
        print(
            f"{ch:<16} {tr:>10,.0f} {a:>11,.0f} {a / tr:>6.2f} {c.loc[ch, 'lo']:>11,.0f}-{c.loc[ch, 'hi']:<11,.0f}"
            f" {r:>11,.0f} {r / tr:>6.2f}"
        )


def size_case(n_geos: int) -> None:
    big = n_geos > 50
    # Eight channels at scale: the world's five, partnerships and two extra upper-funnel channels.
    world = World(n_geos, 730, seed=1, partnerships=big, extra_channels=2 if big else 0)
    channels = list(world.channels)[: 5 if not big else 8]
    e = Experiment(
        "ctv", tuple(world.geos[::4]), "2025-03-03", "2025-04-13", 0.0, name="ctv go-dark"
    )
    df, truth = world.simulate([e])
    t = truth["experiments"][0]
    inc = t["true_incremental"]
    lift = Lift.from_dict(
        {
            "channel": "ctv",
            "treated": t["geos"],
            "test_period": [t["start"], t["end"]],
            "incremental": inc,
            "incremental_ci": [inc * 1.2, inc * 0.8] if inc < 0 else [inc * 0.8, inc * 1.2],
            "confidence": 0.9,
            "spend_delta": t["spend_delta"],
        },
        "ctv lift",
    )
    panel = load_panel(df)
    t0 = time.perf_counter()
    model = StructuralModel(
        channels=channels, controls=["launch", "competitor_price"], clusters=clusters_of(world)
    ).fit(panel, [lift])
    curves = model.to_curves()
    wall = time.perf_counter() - t0
    size = len(json.dumps(curves)) / 1e6
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{n_geos} geos x 730 days x {len(channels)} channels, 1 lift: fit + calibration + curves {wall:.1f} s, "
        f"peak RSS {rss:.0f} MB, curves.json {size:.1f} MB, {len(curves['channels'])} lines"
    )


def worlds_case() -> None:
    rows = []
    for seed in range(4):
        world = World(50, 730, seed=seed)
        df, truth = world.simulate()
        for freq in ("day", "week"):
            d = df
            if freq == "week":
                d = df.assign(date=pd.to_datetime(df["date"]).dt.to_period("W-SUN").dt.start_time)
                cols = [c for c in df.columns if c not in ("date", "geo")]
                agg = {c: ("mean" if c in ("launch", "competitor_price") else "sum") for c in cols}
                d = d.groupby(["date", "geo"], as_index=False).agg(agg)
                full = d.groupby("date")["geo"].transform("size") == len(world.geos)
                # Only whole weeks: the first and last may be cut.
                days = pd.to_datetime(df["date"]).dt.to_period("W-SUN").dt.start_time.value_counts()
                whole = set(days[days == 7 * len(world.geos)].index)
                d = d[full & d["date"].isin(whole)]
            t0 = time.perf_counter()
            model = StructuralModel(
                controls=["launch", "competitor_price"], clusters=clusters_of(world)
            ).fit(load_panel(d))
            wall = time.perf_counter() - t0
            c = model.contributions_.set_index("channel")
            for ch, tr in truth["contributions"].items():
                if freq == "week":
                    # The truth over the weeks kept: scale by their share of signups.
                    tr = tr * d["signups"].sum() / df["signups"].sum()
                rows.append(
                    {
                        "seed": seed,
                        "freq": freq,
                        "channel": ch,
                        "ratio": c.loc[ch, "total"] / tr,
                        "covered": bool(c.loc[ch, "lo"] <= tr <= c.loc[ch, "hi"]),
                        "seconds": wall,
                    }
                )
    out = pd.DataFrame(rows)
    print(
        out.pivot_table(index=["seed", "freq"], columns="channel", values="ratio")
        .round(2)
        .to_string()
    )
    print(
        f"within 2x: {((out.ratio >= 0.5) & (out.ratio <= 2)).mean():.0%} of {len(out)} (world, channel) pairs; "
        f"90% interval holds the truth: {out.covered.mean():.0%}; ratio range {out.ratio.min():.2f}-"
        f"{out.ratio.max():.2f}; mean fit {out.groupby(['seed', 'freq']).seconds.first().mean():.1f} s"
    )
    print(
        out.groupby("channel")
        .agg(min_ratio=("ratio", "min"), max_ratio=("ratio", "max"), coverage=("covered", "mean"))
        .round(2)
        .to_string()
    )


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=["all", "default", "50", "190", "worlds"], default="all")
    case = parser.parse_args().case
    if case == "all":
        for c in ("default", "50", "190", "worlds"):
            subprocess.run([sys.executable, __file__, "--case", c], check=True)
    elif case == "default":
        default_case()
    elif case == "worlds":
        worlds_case()
    else:
        size_case(int(case))


if __name__ == "__main__":
    main()
