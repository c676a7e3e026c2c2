"""liftlab's design search against meridian-geox's, on meridian-geox's own example data, in one process.

1. meridian-geox (``meridian_geox.run_design``, PyPI) with its defaults for a
   14-day test: stratified sampling of ``n_candidates`` treated sets (100,000),
   out-of-sample R2 screen, TBR MDE of the best 100 (``n_ranked_candidates``).
2. liftlab at a comparable configuration: the same test length, the treated-set
   sizes meridian-geox's ranked designs have, as many stratified candidates
   (``n_prescreen``) scored by the vectorised screen over every search window,
   then the readout itself simulated on the best 20 (4 windows) and the best 5
   (all search windows), and the recommended design measured on the held-out
   windows. Runs alternate (meridian, liftlab, meridian, ...); the first run of
   each includes JAX compilation and imports. Peak memory is the largest
   resident set seen while a run is going (sampled every 10 ms) minus the one
   before it started.
3. Each tool's pick, its claimed MDE, and the detection rate of liftlab's own
   readout at that MDE on the held-out windows (the latest third of the 14-day
   windows, which chose neither liftlab's design nor, apart from meridian's last
   14 days, meridian's).
4. Growth: liftlab's search time on 50, 114, 200 and 400 geos (the example data
   cut down, or extended with rescaled, re-noised copies of its geos), treated
   sets scaled with the number of geos.

Run: nice -n 10 python benchmarks/bench_design_meridian.py [--repeats 2] [--n-candidates 100000]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from causal.panel import load_panel  # noqa: E402
from experiments.design import design_experiment, evaluate_design  # noqa: E402

EFFECTS = [0.0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03]


def example_csv() -> Path:
    import meridian_geox

    return Path(meridian_geox.__file__).parent / "data" / "example_design_data_single_cell.csv"


class PeakRSS:
    """Largest resident set size while the block runs, minus the one at its start (bytes)."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())
        self.delta = self.peak - self.base


def run_meridian(df: pd.DataFrame, n_candidates: int, days: int) -> dict:
    import meridian_geox as mg

    cfg = mg.DesignConfig(
        experiment_duration=datetime.timedelta(days=days), n_candidates=n_candidates
    )
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        ds = mg.run_design(df, cfg, mg.Constraints())
        t = time.perf_counter() - t0
    m = ds.design_metrics
    best = ds.designs[str(m.iloc[0]["design_id"])].designs["cell_1"]
    return {
        "time": t,
        "mem": mem.delta,
        "treated": sorted(best.treatment_geos),
        "mde": float(best.minimum_detectable_effect),
        "sizes": (int(m["treatment_geo_count"].min()), int(m["treatment_geo_count"].max())),
        "n_candidates": n_candidates,
        "n_ranked": cfg.n_ranked_candidates,
    }


def run_liftlab(panel, sizes: tuple[int, int], n_candidates: int, days: int, n_jobs: int) -> dict:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        r = design_experiment(
            panel,
            n_treated=sizes,
            durations=(days,),
            method="screen",
            n_prescreen=n_candidates,
            n_prescreen_keep=20,
            n_finalists=5,
            greedy_rounds=0,
            effect_sizes=EFFECTS,
            n_jobs=n_jobs,
        )
        t = time.perf_counter() - t0
    b = r.best
    return {
        "time": t,
        "mem": mem.delta,
        "treated": list(b.treated),
        "mde": b.mde,
        "mde_se": b.power.mde_se,
        "power": b.power.mde_power,
        "power_se": b.power.power_se,
        "search_mde": r.search_cells[0].mde,
        "held_out": r.held_out,
        "result": r,
    }


def grown(df: pd.DataFrame, n_geos: int, seed: int = 0) -> pd.DataFrame:
    """The example data with ``n_geos`` geos: a subset, or extra geos copied from existing ones,
    rescaled (log-normal, sd 0.3) and with 5% independent daily noise."""
    geos = sorted(df["location"].unique(), key=str)
    if n_geos <= len(geos):
        return df[df["location"].isin(geos[:n_geos])].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    wide = df.pivot(index="date", columns="location", values="conversions")
    extra = {}
    for k in range(n_geos - len(geos)):
        src = wide[geos[k % len(geos)]].to_numpy()
        extra[f"x{k:03d}"] = (
            src * np.exp(rng.normal(0, 0.3)) * (1 + 0.05 * rng.standard_normal(len(src)))
        )
    wide = pd.concat([wide, pd.DataFrame(extra, index=wide.index)], axis=1)
    out = wide.stack().rename("conversions").reset_index()
    out.columns = ["date", "location", "conversions"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n-candidates", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--growth", default="50,114,200,400")
    ap.add_argument(
        "--growth-meridian", action="store_true", help="time meridian-geox in the growth table too"
    )
    args = ap.parse_args()

    df = pd.read_csv(example_csv(), parse_dates=["date"])
    df["location"] = df["location"].astype(str)
    panel = load_panel(df.drop(columns=["spend"]), y="conversions", geo_col="location")
    print(
        f"data: {example_csv().name}, {panel.wide().shape[1]} geos x {panel.wide().shape[0]} days"
    )

    print("\n== 1-2. the searches, alternating ==")
    mer, lif = [], []
    for i in range(args.repeats):
        mer.append(run_meridian(df, args.n_candidates, args.days))
        m = mer[-1]
        print(
            f"run {i + 1} meridian-geox: {m['time']:.1f} s, peak +{m['mem'] / 1e6:.0f} MB; picked {len(m['treated'])} "
            f"geos, MDE {m['mde']:.2%} ({m['n_candidates']} candidates, {m['n_ranked']} fully scored; ranked "
            f"designs have {m['sizes'][0]}..{m['sizes'][1]} treated geos)"
        )
        lif.append(run_liftlab(panel, mer[0]["sizes"], args.n_candidates, args.days, args.n_jobs))
        x = lif[-1]
        print(
            f"run {i + 1} liftlab:      {x['time']:.1f} s, peak +{x['mem'] / 1e6:.0f} MB; picked {len(x['treated'])} "
            f"geos, MDE {x['mde']:.2%} +- {x['mde_se'] or float('nan'):.2%} on held-out windows "
            f"(power {x['power']:.2f} +- {x['power_se']:.2f}; {x['search_mde']:.2%} on the search windows)"
        )
    ratios = [m["time"] / x["time"] for m, x in zip(mer, lif)]
    print(
        "ratio meridian-geox / liftlab search time: "
        + ", ".join(f"{r:.1f}x" for r in ratios)
        + f" (median {statistics.median(ratios):.1f}x; first run includes JAX compilation)"
    )
    print(
        f"peak memory: meridian-geox +{max(m['mem'] for m in mer) / 1e6:.0f} MB, "
        f"liftlab +{max(x['mem'] for x in lif) / 1e6:.0f} MB"
    )

    print("\n== 3. each pick re-measured by liftlab's readout on the held-out windows ==")
    m, x = mer[0], lif[0]
    rows = []
    for label, treated, claimed in (
        ("meridian-geox", m["treated"], m["mde"]),
        ("liftlab", x["treated"], x["mde"]),
    ):
        grid = sorted({0.0, round(claimed, 6), *EFFECTS})
        ev = evaluate_design(panel, treated, args.days, effect_sizes=grid, claim_share=1 / 3)
        p = ev.power.power_at(claimed)
        rows.append(
            (
                label,
                len(treated),
                claimed,
                p,
                ev.power.rate_se(p),
                ev.power.false_positive_rate,
                ev.power.false_positive_rate_se,
                ev.mde,
                ev.power.n_windows,
            )
        )
    print(
        f"{'tool':<14} {'treated':>7} {'claimed MDE':>11} {'power there':>14} {'FPR':>12} {'liftlab MDE':>11} {'windows':>7}"
    )
    for r in rows:
        print(
            f"{r[0]:<14} {r[1]:>7} {r[2]:>11.2%} {r[3]:>8.2f}+-{r[4]:.2f} {r[5]:>6.2f}+-{r[6]:.2f} "
            f"{'—' if r[7] is None else f'{r[7]:.2%}':>11} {r[8]:>7}"
        )

    print(
        "\n== 4. growth with the number of geos (liftlab"
        + (" and meridian-geox" if args.growth_meridian else "")
        + ") =="
    )
    base_lo, base_hi = mer[0]["sizes"]
    for n in (int(g) for g in args.growth.split(",")):
        d = grown(df.drop(columns=["spend"]), n)
        p = load_panel(d, y="conversions", geo_col="location")
        sizes = (max(2, round(base_lo * n / 114)), max(2, round(base_hi * n / 114)))
        x = run_liftlab(p, sizes, args.n_candidates, args.days, args.n_jobs)
        line = f"{n:>4} geos, {sizes[0]}..{sizes[1]} treated: liftlab {x['time']:.1f} s (+{x['mem'] / 1e6:.0f} MB)"
        if args.growth_meridian:
            mm = run_meridian(d, args.n_candidates, args.days)
            line += f"; meridian-geox {mm['time']:.1f} s (+{mm['mem'] / 1e6:.0f} MB), ratio {mm['time'] / x['time']:.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
