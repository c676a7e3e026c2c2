"""The command-line chain on worlds other than the demo's, scored against the world's truth.

For each world seed: a world of ``--geos`` markets and ``--days`` days of history plus the 28-day
horizon; one CTV go-dark (``TESTED`` markets, 28 days ending ``GAP`` days before the history's
end) run inside it; then, as a user runs them, each on the previous step's files and with no flag
beyond the README's:

    liftlab readout   --data panel.csv --treated ... --start ... --end ... --channel ctv --out readout.json
    liftlab calibrate --data panel.csv --lift readout.json --clusters clusters.csv --out curves.json
    liftlab allocate  --curves curves.json --days 28 --max-change 0.15 --out plan.json

Scored on the world (``causal.world.World.run`` with the plan's spend, same draws):

* the readout against the test's true incremental;
* each channel's credit (curves.json ``contributions``) over its true contribution;
* the 28-day plan's **true** gain: media-caused signups over the horizon with the plan's daily spend
  per market and channel, minus those with each line held at its current spend (the plan's own
  status quo, the same total spend), against the gain the plan expected from its curves.

Run: python benchmarks/chain_truth.py --seeds 7-10 [--geos 30 --days 500] [--out chain.csv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from study_brand_readout import _seeds  # the same seed-range parser (0-3,7)

from causal.world import World
from causal.world_io import truth_clusters

TESTED = ("NA01", "NA02", "EM01", "EM02", "AP01", "LA01")
HORIZON = 28
GAP = 35  # days between the test's end and the history's end


def _cli(*args: str, cwd: Path) -> str:
    cli = [sys.executable, "-c", "from allocation.cli.main import main; main()"]
    # In the world's folder: allocate keeps its audit trail (liftlab.db) in the working directory.
    done = subprocess.run([*cli, *args], capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"liftlab {args[0]} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def one_world(seed: int, n_geos: int, n_days: int, folder: Path) -> dict:
    from causal.world import Experiment

    world = World(n_geos, n_days + HORIZON, seed=seed)
    end = world.dates[n_days - 1 - GAP]
    start = end - pd.Timedelta(days=27)
    test = Experiment("ctv", TESTED, start.date().isoformat(), end.date().isoformat(), 0.0)
    frame, truth = world.simulate([test])
    history_end = world.dates[n_days - 1]
    panel = frame[pd.to_datetime(frame["date"]) <= history_end]
    panel.to_csv(folder / "panel.csv", index=False)
    truth_clusters(truth).to_csv(folder / "clusters.csv", index=False)

    _cli(
        "readout", "--data", str(folder / "panel.csv"), "--treated", ",".join(TESTED),
        "--start", test.start, "--end", test.end, "--channel", "ctv",
        "--out", str(folder / "readout.json"), cwd=folder,
    )  # fmt: skip
    _cli(
        "calibrate", "--data", str(folder / "panel.csv"), "--lift", str(folder / "readout.json"),
        "--clusters", str(folder / "clusters.csv"), "--out", str(folder / "curves.json"), cwd=folder,
    )  # fmt: skip
    _cli(
        "allocate", "--curves", str(folder / "curves.json"), "--days", str(HORIZON),
        "--max-change", "0.15", "--out", str(folder / "plan.json"), cwd=folder,
    )  # fmt: skip
    readout = json.loads((folder / "readout.json").read_text())
    curves = json.loads((folder / "curves.json").read_text())
    plan = json.loads((folder / "plan.json").read_text())

    # The world with the test, history as observed, then the plan or the status quo over the horizon.
    observed = world.run(world._multipliers([test]))
    geo = {g: i for i, g in enumerate(world.geos)}
    rows = slice(n_days, n_days + HORIZON)

    def horizon_run(daily: dict[tuple[str, str], np.ndarray]):
        spend = {ch: observed.spend[ch].copy() for ch in world.channels}
        for (ch, market), x in daily.items():
            spend[ch][rows, geo[market]] = x
        return world.run(spend=spend)

    lines = plan["lines"]
    planned = {(c["name"], c["market"]): np.asarray(c["daily_spend"], float) for c in lines}
    current = {(c["name"], c["market"]): float(c["current_spend"]) for c in lines}
    flat = {k: np.full(HORIZON, v) for k, v in current.items()}
    missing = {(ch, g) for ch in world.channels for g in world.geos} - set(planned)
    if missing:
        raise RuntimeError(f"plan.json has no line for {sorted(missing)[:3]}")
    held_signups = float(horizon_run(flat).media_caused(rows).sum())
    gain = float(horizon_run(planned).media_caused(rows).sum()) - held_signups
    unc = plan["uncertainty"]  # over the horizon, from the calibration's posterior draws
    spent = sum(x.sum() for x in planned.values())
    held = sum(x.sum() for x in flat.values())

    est = curves["totals"]
    row = {
        "seed": seed,
        "readout": readout["incremental"],
        "readout_lo": readout["incremental_ci"][0],
        "readout_hi": readout["incremental_ci"][1],
        "readout_truth": truth["experiments"][0]["true_incremental"],
        "plan_true_gain": gain,
        "plan_expected_gain": unc["expected_gain"],
        "plan_gain_lo": unc["gain_interval"][0],
        "plan_gain_hi": unc["gain_interval"][1],
        "status_quo_media_signups": held_signups,
        "plan_spend_over_status_quo": spent / held,
    }
    for ch in world.channels:
        true = truth_no_channel(world, observed, ch, n_days)
        row[f"credit_{ch}"] = float(est[ch]["total"]) / true
        row[f"covered_{ch}"] = bool(est[ch]["lo"] <= true <= est[ch]["hi"])
    return row


def truth_no_channel(world: World, observed, channel: str, n_days: int) -> float:
    """A channel's true contribution over the history: signups minus those with it switched off."""
    spend = {c: s.copy() for c, s in observed.spend.items()}
    spend[channel][:] = 0.0
    off = world.run(spend=spend)
    return float(observed.signups[:n_days].sum() - off.signups[:n_days].sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="7-10")
    parser.add_argument("--geos", type=int, default=30)
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for seed in _seeds(args.seeds):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            row = one_world(seed, args.geos, args.days, Path(tmp))
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    pd.set_option("display.width", 250)
    print(df.to_string(float_format=lambda x: f"{x:,.3f}"))


if __name__ == "__main__":
    main()
