"""``liftlab demo``: the whole story on a simulated world whose truth is known.

Design a branded-search go-dark test and a CTV test on the history, run both
inside the world, read them out, calibrate the response curves on the lifts,
allocate the budget under the 15% weekly guardrail, and compare every step with
the world's truth. Each step runs the same subcommand a user would run, so the
demo's files are exactly what those commands write.

Every file is written through the atomic writer (:mod:`allocation.cli.outputs`),
so a killed demo leaves whole files or none, never a truncated panel. A folder
that already holds a demo's registry (``liftlab.db``) is refused before
anything runs: registering the same tests again would fail half-way, after
the design files had been rewritten.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import click
import pandas as pd

from allocation.cli.options import currency_option
from allocation.cli.outputs import dumps, outputs
from causal.errors import ConfigError
from causal.world import Experiment, World

BRAND_WINDOW = ("2025-10-01", "2025-11-25")  # eight weeks: branded search's true effect is small
CTV_WINDOW = ("2025-10-01", "2025-10-28")  # four weeks
HISTORY_END = "2025-09-30"
NEXT_WINDOW = (
    "2025-12-01",
    "2025-12-28",
)  # the third test, chosen by value of information: four weeks


def _step(n: int, total: int, text: str) -> float:
    click.echo(f"[{n}/{total}] {text}", err=True)
    return time.perf_counter()


def _run(args: list[str]) -> None:
    # Imported here: the group imports this module while registering its commands.
    from allocation.cli.main import cli

    cli.main(args=args, prog_name="liftlab", standalone_mode=False)


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for every file and report.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the world and of every random draw.",
)
@click.option(
    "--n-jobs",
    default=1,
    show_default=True,
    type=int,
    help="Parallel workers for the design search.",
)
@currency_option  # passed to the steps whose commands take it (design); the others show "currency units"
def command(out_dir: str, seed: int, n_jobs: int, currency: str | None) -> None:
    """Run design, readout, calibration and allocation end to end on a simulated world."""
    out = Path(out_dir)
    if (out / "liftlab.db").exists():
        raise ConfigError(
            f"--out {out} already holds a demo (its registry {out / 'liftlab.db'}): "
            "choose a new folder, or delete that one first"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    total_steps = 9
    started = time.perf_counter()
    money = ["--currency", currency] if currency else []

    _step(1, total_steps, "simulating the world's history")
    world = World(seed=seed)
    history = world.panel()
    history = history[history["date"] <= HISTORY_END]
    with outputs() as files:
        history.to_csv(files.path(out / "history.csv"), index=False)
        # Market clusters come from a mapping file, as a user's would (not from market names).
        world.clusters().to_csv(files.path(out / "clusters.csv"), index=False)

    _step(2, total_steps, "designing the branded-search go-dark test")
    _run(
        [
            "design",
            "--data",
            str(out / "history.csv"),
            "--out",
            str(out / "design_brand_search.json"),
            "--report",
            str(out / "design_brand_search.html"),
            "--treated",
            "12..20",
            "--durations",
            "56",
            "--effect-sizes",
            "0,0.005,0.01,0.015,0.02,0.03",
            "--seed",
            str(seed),
            "--n-jobs",
            str(n_jobs),
            *money,
        ]
    )
    brand_design = json.loads((out / "design_brand_search.json").read_text())

    _step(3, total_steps, "designing the CTV test on the remaining markets")
    _run(
        [
            "design",
            "--data",
            str(out / "history.csv"),
            "--out",
            str(out / "design_ctv.json"),
            "--report",
            str(out / "design_ctv.html"),
            "--treated",
            "4..8",
            "--durations",
            "28",
            "--exclude",
            ",".join(brand_design["treated"]),
            "--effect-sizes",
            "0,0.02,0.04,0.06,0.08,0.1",
            "--seed",
            str(seed),
            "--n-jobs",
            str(n_jobs),
            *money,
        ]
    )
    ctv_design = json.loads((out / "design_ctv.json").read_text())

    _step(4, total_steps, "registering both tests and running them inside the world")
    db = str(out / "liftlab.db")
    experiments = [
        Experiment(
            "brand_search",
            tuple(brand_design["treated"]),
            *BRAND_WINDOW,
            0.0,
            name="brand_search_go_dark",
        ),
        Experiment("ctv", tuple(ctv_design["treated"]), *CTV_WINDOW, 0.0, name="ctv_go_dark"),
    ]
    # Both tests run at once, so neither may use the other's markets as controls.
    busy = {g for e in experiments for g in e.geos}
    control = ",".join(g for g in world.geos if g not in busy)
    for e in experiments:
        # Pre-registration fixes the readout settings before any test data exist.
        _run(
            [
                "registry",
                "add",
                e.name,
                "--db",
                db,
                "--design",
                str(out / f"design_{e.channel}.json"),
                "--channel",
                e.channel,
                "--start",
                e.start,
                "--end",
                e.end,
                "--control",
                control,
                "--seed",
                str(seed),
            ]
        )
        _run(["registry", "start", e.name, "--db", db])
    panel, truth = world.simulate(experiments)
    with outputs() as files:
        panel.to_csv(files.path(out / "panel.csv"), index=False)
        files.write_text(out / "truth.json", dumps(truth))

    _step(5, total_steps, "reading out both tests (pre-registered readouts, with reports)")
    readouts = {}
    for e in experiments:
        path = out / f"readout_{e.channel}.json"
        _run(
            [
                "readout",
                "--data",
                str(out / "panel.csv"),
                "--treated",
                ",".join(e.geos),
                "--start",
                e.start,
                "--end",
                e.end,
                "--control",
                control,
                "--channel",
                e.channel,
                "--out",
                str(path),
                "--report",
                str(out / f"readout_{e.channel}.html"),
                "--seed",
                str(seed),
            ]
        )
        readouts[e.channel] = json.loads(path.read_text())
        _run(["registry", "readout", e.name, "--db", db, "--data", str(out / "panel.csv")])
    _run(
        [
            "registry",
            "calendar",
            "--db",
            db,
            "--out",
            str(out / "calendar.png"),
            "--report",
            str(out / "calendar.html"),
        ]
    )

    _step(6, total_steps, "calibrating response curves on the registry's lifts")
    _run(
        [
            "calibrate",
            "--data",
            str(out / "panel.csv"),
            "--registry",
            db,
            "--out",
            str(out / "curves.json"),
            "--report",
            str(out / "curves.html"),
            "--clusters",
            str(out / "clusters.csv"),
            "--seed",
            str(seed),
        ]
    )
    curves = json.loads((out / "curves.json").read_text())

    _step(7, total_steps, "allocating the budget under the 15% weekly guardrail")
    budget = sum(float(c.get("current_spend") or 0.0) for c in curves["channels"])
    _run(
        [
            "allocate",
            "--curves",
            str(out / "curves.json"),
            "--budget",
            f"{budget:.2f}",
            "--max-change",
            "0.15",
            "--out",
            str(out / "plan.json"),
            "--report",
            str(out / "plan.html"),
            "--audit-db",
            db,
        ]
    )
    plan = json.loads((out / "plan.json").read_text())

    _step(
        8, total_steps, "choosing a third test by the value of its information, and registering it"
    )
    _run(
        [
            "propose-tests",
            "--curves",
            str(out / "curves.json"),
            "--data",
            str(out / "history.csv"),
            "--out",
            str(out / "proposals.json"),
            "--report",
            str(out / "proposals.html"),
            "--registry",
            db,
            "--start",
            NEXT_WINDOW[0],
            "--durations",
            "28",
            "--register",
            "next_test",
            "--seed",
            str(seed),
        ]
    )
    best = json.loads((out / "proposals.json").read_text())["best"]
    third = Experiment(
        best["channel"],
        tuple(best["markets"]),
        *NEXT_WINDOW,
        float(best["intensity"]),
        name="next_test",
    )
    _run(["registry", "start", third.name, "--db", db])

    _step(9, total_steps, "running it, reading it out and calibrating on all three lifts")
    panel_after, truth_after = world.simulate([*experiments, third])
    with outputs() as files:
        panel_after.to_csv(files.path(out / "panel_after.csv"), index=False)
        files.write_text(out / "truth_after.json", dumps(truth_after))
    path = out / f"readout_{third.name}.json"
    _run(
        [
            "readout",
            "--data",
            str(out / "panel_after.csv"),
            "--treated",
            ",".join(third.geos),
            "--start",
            third.start,
            "--end",
            third.end,
            "--channel",
            third.channel,
            "--out",
            str(path),
            "--report",
            str(out / f"readout_{third.name}.html"),
            "--seed",
            str(seed),
        ]
    )
    readouts[third.name] = json.loads(path.read_text())
    _run(["registry", "readout", third.name, "--db", db, "--data", str(out / "panel_after.csv")])
    _run(
        [
            "calibrate",
            "--data",
            str(out / "panel_after.csv"),
            "--registry",
            db,
            "--out",
            str(out / "curves_after.json"),
            "--report",
            str(out / "curves_after.html"),
            "--clusters",
            str(out / "clusters.csv"),
            "--seed",
            str(seed),
        ]
    )
    curves_after = json.loads((out / "curves_after.json").read_text())

    figures = _export_figures(out)
    click.echo(
        _summary(
            truth_after,
            readouts,
            curves,
            plan,
            time.perf_counter() - started,
            out,
            best=best,
            curves_after=curves_after,
        )
    )
    click.echo(f"{figures} report figures also written as PNG files in {out / 'figures'}/")


def _export_figures(out: Path) -> int:
    """Write each report's inline figures as PNG files, for slides and documents."""
    folder = out / "figures"
    count = 0
    with outputs() as files:
        for report in sorted(out.glob("*.html")):
            uris = re.findall(
                r"data:image/png;base64,([A-Za-z0-9+/=]+)", report.read_text(encoding="utf-8")
            )
            for i, data in enumerate(uris, start=1):
                files.write_bytes(folder / f"{report.stem}_{i}.png", base64.b64decode(data))
                count += 1
    return count


def _credit(curves: dict) -> dict[str, list[float]]:
    """Each channel's credit over the panel, before and after calibration, summed over its lines."""
    credit: dict[str, list[float]] = {}
    for c in curves["channels"]:
        contrib = c.get("contribution") or {}
        agg = credit.setdefault(c["name"], [0.0, 0.0])
        agg[0] += float(contrib.get("uncalibrated") or 0.0)
        agg[1] += float(contrib.get("calibrated") or 0.0)
    return credit


def _summary(
    truth: dict,
    readouts: dict,
    curves: dict,
    plan: dict,
    seconds: float,
    out: Path,
    *,
    best: dict,
    curves_after: dict,
) -> str:
    lines = [
        "",
        "liftlab demo — what the tests, the curves and the plan say, against the world's truth",
        "",
    ]
    lines.append("Tests (treated markets, test window):")
    by_name = {e.get("name") or e["channel"]: e for e in truth["experiments"]}
    by_channel = {e["channel"]: e for e in truth["experiments"] if e.get("name") != "next_test"}
    for ch, r in readouts.items():
        t = by_name["next_test"] if ch == "next_test" else by_channel[ch]
        ch = f"{r.get('channel')} (3rd)" if ch == "next_test" else ch
        lo, hi = r["incremental_ci"]
        cpi = r.get("cost_per_incremental")
        lines.append(
            f"  {ch:<13} total signups {r['observed']:>10,.0f}   incremental {r['incremental']:>8,.0f} "
            f"[{lo:,.0f}, {hi:,.0f}]   true {t['true_incremental']:>8,.0f}   p={r['p_value']:.3f}"
            + (f"   cost per incremental {cpi:,.2f}" if cpi is not None else "")
        )
    lines += [
        "",
        f"Third test, chosen by the value of its information: {best['label']} "
        f"(value of information {best['value']:,.0f}, cost {best['cost']:,.0f} signups)",
    ]
    lines += [
        "",
        "Credit over the whole panel (signups; x = times the truth):",
        f"  {'channel':<16}{'no lift':>12}{'2 lifts':>12}{'3 lifts':>12}{'truth':>12}"
        f"{'x, 2 lifts':>12}{'x, 3 lifts':>12}",
    ]
    two, three = _credit(curves), _credit(curves_after)
    for ch, (before, after) in two.items():
        true = truth["contributions"].get(ch, float("nan"))
        final = three.get(ch, [float("nan")] * 2)[1]
        lines.append(
            f"  {ch:<16}{before:>12,.0f}{after:>12,.0f}{final:>12,.0f}{true:>12,.0f}"
            f"{after / true:>12.2f}{final / true:>12.2f}"
        )
    lines += ["", f"Recommended daily budget shift (guardrail 15%, status {plan['status']}):"]
    frame = pd.DataFrame(plan["lines"])
    by = frame.groupby("name")[["current_spend", "spend", "incremental"]].sum()
    for ch, row in by.iterrows():
        change = row["spend"] - row["current_spend"]
        pct = change / row["current_spend"] if row["current_spend"] else float("nan")
        lines.append(
            f"  {ch:<16} {row['current_spend']:>12,.0f} -> {row['spend']:>12,.0f}  ({pct:+.1%})"
        )
    lines.append(f"  expected incremental signups per day: {plan['total_incremental']:,.0f}")
    lines += ["", f"Files and reports in {out}/ (done in {seconds:.0f} s)"]
    return "\n".join(lines)
