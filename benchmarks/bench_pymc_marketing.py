"""PyMC-Marketing's geo MMM with its lift-test calibration, side by side with liftlab.

On the weekly worlds of ``benchmarks/study_structural.py`` (the daily world summed
to weeks, the experiments run inside it and read out on the daily panel by
``experiments.readout.read_out``), in one process on the same data:

* liftlab: the study's adapter (``fit_contributions``), i.e. today's
  ``ResponseModel`` + ``calibrate`` or the ``StructuralModel`` (``--model``);
* PyMC-Marketing (``pymc_marketing.mmm.multidimensional.MMM``): geometric
  adstock (``l_max`` 8 weeks) and logistic saturation per channel, yearly
  Fourier seasonality (2 modes), ``launch`` and ``competitor_price`` as
  controls, its default priors and scaling, the same lifts entered by
  ``add_lift_test_measurements``; NUTS with its default sampler, 2 chains x 500
  draws after 500 tuning steps, chains one after the other (``cores=1``: the
  machine's two cores are shared). ``--level national`` (default) fits the
  weekly panel summed over geos, the model's classic input (one lift row per
  lift, :func:`national_lift_row`); ``--level geo`` fits ``dims=("geo",)`` on
  the weekly geo panel (one lift row per treated geo, :func:`lift_rows`), which
  on 50 geos x 104 weeks did not finish within 20 minutes on this shared
  machine.

Per channel: total contribution over the panel against the truth (ratio),
90% interval coverage, and each fit's wall time (build + sampling for
PyMC-Marketing, pytensor's C compilation included).

Run: ``nice -n 10 python benchmarks/bench_pymc_marketing.py [--worlds 3] [--level national|geo] [--write-docs]``.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_structural import (  # noqa: E402
    CONFIDENCE,
    DEFAULT_MODEL,
    DOC,
    MODELS,
    WORLDS,
    WorldSpec,
    experiments,
    fit_contributions,
    fold_error,
    markdown,
    read_lifts,
    write_section,
)

from allocation.calibration import Lift  # noqa: E402
from causal.panel import load_panel  # noqa: E402
from causal.world import World  # noqa: E402
from causal.world_io import to_weekly  # noqa: E402

CONTROLS = ["launch", "competitor_price"]
SAMPLING = {"chains": 2, "draws": 500, "tune": 500, "cores": 1}


def lift_rows(lift: Lift, weekly: pd.DataFrame) -> pd.DataFrame:
    """One lift as PyMC-Marketing's lift-test table, one row per treated geo, per week.

    PyMC-Marketing models a lift as ``saturation(x + delta_x) - saturation(x)``
    for a steady spend ``x`` per period. The readout gives the total spend
    change and incremental signups over ``W`` weeks in ``n`` geos; they are
    spread over the geos by each geo's share of the spend change's size (its
    counterfactual spend), per week. The lift's sd is spread so the ``n``
    rows together carry one measurement's information: ``sigma_g = sd * share_g
    * sqrt(n) / W``.
    """
    col = f"spend_{lift.channel}"
    window = weekly[(weekly["date"] >= lift.start) & (weekly["date"] <= lift.end)]
    pre = weekly[weekly["date"] < lift.start].groupby("geo")[col].apply(lambda s: s.tail(8).mean())
    geos = list(lift.treated)
    weeks = window["date"].nunique()
    share = pre.loc[geos] / pre.loc[geos].sum()
    observed = window[window["geo"].isin(geos)].groupby("geo")[col].sum().loc[geos] / weeks
    delta_x = lift.spend_delta * share / weeks
    return pd.DataFrame(
        {
            "geo": geos,
            "channel": col,
            "x": (observed - delta_x).to_numpy(),
            "delta_x": delta_x.to_numpy(),
            "delta_y": (lift.incremental * share / weeks).to_numpy(),
            "sigma": (lift.sd * share * np.sqrt(len(geos)) / weeks).to_numpy(),
        }
    )


def national_lift_row(lift: Lift, national: pd.DataFrame) -> pd.DataFrame:
    """One lift as one row of a national model: per-week national spend change and lift."""
    col = f"spend_{lift.channel}"
    window = national[(national["date"] >= lift.start) & (national["date"] <= lift.end)]
    weeks = len(window)
    delta_x = lift.spend_delta / weeks
    return pd.DataFrame(
        {
            "channel": [col],
            "x": [window[col].mean() - delta_x],
            "delta_x": [delta_x],
            "delta_y": [lift.incremental / weeks],
            "sigma": [lift.sd / weeks],
        }
    )


def national(weekly: pd.DataFrame) -> pd.DataFrame:
    """The weekly geo panel summed over geos (controls averaged): PyMC-Marketing's classic input."""
    summed = ["signups", *[c for c in weekly if c.startswith("spend_")]]
    out = weekly.groupby("date")[summed].sum().join(weekly.groupby("date")[CONTROLS].mean())
    return out.reset_index()


def fit_pymc(
    weekly: pd.DataFrame, lifts: Sequence[Lift], seed: int = 0, level: str = "national"
) -> tuple[pd.DataFrame, float]:
    """PyMC-Marketing's MMM (geo or national) with the lifts; per-channel contribution and seconds."""
    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.multidimensional import MMM

    geo = level == "geo"
    data = weekly if geo else national(weekly)
    channels = [c for c in data if c.startswith("spend_")]
    keys = ["date", "geo"] if geo else ["date"]
    X = data[[*keys, *channels, *CONTROLS]].assign(date=pd.to_datetime(data["date"]))
    y = data["signups"].astype(float).rename("signups")
    t0 = time.perf_counter()
    mmm = MMM(
        date_column="date",
        channel_columns=channels,
        target_column="signups",
        adstock=GeometricAdstock(l_max=8),
        saturation=LogisticSaturation(),
        control_columns=CONTROLS,
        yearly_seasonality=2,
        dims=("geo",) if geo else None,
    )
    mmm.build_model(X, y)
    if lifts:
        rows = [lift_rows(lf, weekly) if geo else national_lift_row(lf, data) for lf in lifts]
        mmm.add_lift_test_measurements(pd.concat(rows, ignore_index=True))
    mmm.add_original_scale_contribution_variable(var=["channel_contribution"])
    mmm.fit(X, y, progressbar=False, random_seed=seed, **SAMPLING)
    seconds = time.perf_counter() - t0
    draws = mmm.idata.posterior["channel_contribution_original_scale"].sum(dim=["date", *keys[1:]])
    draws = draws.stack(sample=("chain", "draw")).transpose("sample", "channel").to_numpy()
    a = (1 - CONFIDENCE) / 2
    out = pd.DataFrame(
        {
            "total": draws.mean(axis=0),
            "lo": np.quantile(draws, a, axis=0),
            "hi": np.quantile(draws, 1 - a, axis=0),
        },
        index=[c[len("spend_") :] for c in channels],
    )
    divergences = int(mmm.idata.sample_stats["diverging"].sum())
    out.attrs["divergences"] = divergences
    return out, seconds


def run_world(spec: WorldSpec, model: str, level: str = "national") -> tuple[list[dict], dict]:
    world = World(spec.n_geos, spec.n_days, seed=spec.seed, **spec.options)
    clusters = dict(zip(world.clusters()["geo"], world.clusters()["cluster"]))
    exps, control = experiments(world, spec.lifts)
    observed, _ = world.simulate(exps)
    truth = world.true_contributions(experiments=exps)
    lifts = read_lifts(load_panel(observed), exps, control)
    weekly = to_weekly(observed)[0]
    ours = fit_contributions(model, load_panel(weekly), lifts, clusters)
    theirs, pymc_s = fit_pymc(weekly, lifts, level=level)
    rows = []
    for name, table in (("liftlab", ours.contributions), ("PyMC-Marketing", theirs)):
        for ch in world.channels:
            est = table.loc[ch]
            rows.append(
                {
                    "world": spec.name,
                    "method": name,
                    "channel": ch,
                    "lifted": ch in spec.lifts,
                    "truth": truth[ch],
                    "estimate": float(est["total"]),
                    "ratio": float(est["total"]) / truth[ch],
                    "covered": bool(est["lo"] <= truth[ch] <= est["hi"]),
                }
            )
    summary = {
        "world": spec.name,
        "lifts": ", ".join(spec.lifts),
        "liftlab_s": ours.seconds,
        "pymc_s": pymc_s,
        "pymc_divergences": theirs.attrs["divergences"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    return rows, summary


def report(df: pd.DataFrame, worlds: pd.DataFrame, model: str, level: str = "national") -> str:
    df = df.assign(fold=fold_error(df["ratio"]))
    cell = df.apply(
        lambda r: f"{r['ratio']:.2f}{'' if r['covered'] else '*'}{' (L)' if r['lifted'] else ''}",
        axis=1,
    )
    table = df.assign(cell=cell).pivot(index=["world", "method"], columns="channel", values="cell")
    table = table[list(dict.fromkeys(df["channel"]))]
    err = df.groupby(["world", "method"])["fold"].agg(
        mean_abs_log=lambda f: float(np.mean(np.log(f))), worst=lambda f: float(np.max(f))
    )
    table = table.join(
        err.rename(columns={"mean_abs_log": "mean abs log ratio", "worst": "worst fold"}).round(2)
    )
    cov = df.groupby("method")["covered"].mean()
    mal = df.groupby("method")["fold"].apply(lambda f: float(np.mean(np.log(f))))
    w = worlds.assign(ratio=(worlds["pymc_s"] / worlds["liftlab_s"]).round(0))
    lines = [
        f"liftlab model: `{model}` on the weekly geo panel. PyMC-Marketing {_version()}: "
        + (
            "`multidimensional.MMM(dims=('geo',))` on the weekly geo panel, "
            if level == "geo"
            else "`multidimensional.MMM()` on the weekly panel summed over geos (national), "
        )
        + f"GeometricAdstock(l_max=8), LogisticSaturation, yearly_seasonality=2, controls {', '.join(CONTROLS)}, "
        f"default priors; lifts by `add_lift_test_measurements`; NUTS {SAMPLING['chains']} chains x "
        f"{SAMPLING['draws']} draws after {SAMPLING['tune']} tuning steps, cores={SAMPLING['cores']}.",
        "",
        "Estimated / true total contribution (`*` 90% interval misses the truth, `(L)` lifted channel):",
        "",
        markdown(table),
        "",
        "| method | mean abs log ratio (all pairs) | 90% coverage |",
        "| --- | --- | --- |",
        *[f"| {m} | {mal[m]:.2f} | {cov[m]:.0%} |" for m in mal.index],
        "",
        "Wall time per world (liftlab: fit + calibration; PyMC-Marketing: build + sampling):",
        "",
        markdown(
            w[
                [
                    "world",
                    "lifts",
                    "liftlab_s",
                    "pymc_s",
                    "ratio",
                    "pymc_divergences",
                    "peak_rss_mb",
                ]
            ].round({"liftlab_s": 2, "pymc_s": 1, "peak_rss_mb": 0}),
            index=False,
        ),
        "",
    ]
    return "\n".join(lines)


def _version() -> str:
    import pymc_marketing

    return pymc_marketing.__version__


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL)
    parser.add_argument(
        "--worlds", type=int, default=3, help="how many of the study's weekly worlds"
    )
    parser.add_argument(
        "--level",
        choices=["national", "geo"],
        default="national",
        help="PyMC-Marketing on the national sum (default) or the geo panel",
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    specs = [s for s in WORLDS if s.weekly][: args.worlds]
    rows, worlds = [], []
    for spec in specs:
        r, s = run_world(spec, args.model, args.level)
        rows += r
        worlds.append(s)
        print(
            f"  {spec.name}: liftlab {s['liftlab_s']:.2f} s, PyMC-Marketing {s['pymc_s']:.0f} s",
            flush=True,
        )
        # Each world's ratios as soon as it is done, so a run stopped later keeps them.
        for row in r:
            print(
                f"    {row['method']:15s} {row['channel']:16s} {row['ratio']:.2f}"
                f"{'' if row['covered'] else '*'}",
                flush=True,
            )
    body = report(pd.DataFrame(rows), pd.DataFrame(worlds), args.model, args.level)
    print(body)
    if args.write_docs:
        write_section(
            DOC,
            f"pymc-{args.level}",
            f"## Side by side with PyMC-Marketing, {args.level} "
            f"(`benchmarks/bench_pymc_marketing.py --level {args.level}`)\n\n" + body,
            "Structural response model: credit against the truth",
        )


if __name__ == "__main__":
    main()
