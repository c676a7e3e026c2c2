"""``liftlab demo``: the whole story on a simulated world whose truth is known.

The command calls :func:`allocation.workflows.demo.run_demo` (design two tests,
register and run them, read them out, calibrate, allocate under the 15% weekly
guardrail, choose a third test by the value of its information, run it and
calibrate again), then writes every file and report from the returned results
with the same renderers the single commands use, and prints the comparison
with the world's truth.

Every file is written through the atomic writer (:mod:`allocation.cli.outputs`),
all at once at the end, so a killed demo leaves whole files or none. A folder
that already holds a demo's registry (``liftlab.db``) is refused before
anything runs: registering the same tests again would fail half-way.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import click
import pandas as pd

from allocation.audit import AuditLog
from allocation.cli.options import currency_option, out_option, seed_option
from allocation.cli.outputs import OutputSet, dumps, outputs
from allocation.json_values import as_json_value
from allocation.workflows.demo import DemoRun, run_demo
from allocation.workflows.planning import commit_plan
from causal.errors import ConfigError
from causal.progress import enabled as progress_enabled


def _step(n: int, total: int, text: str) -> None:
    # Step headers follow the progress rule: on a terminal, not when piped, in CI or LIFTLAB_PROGRESS=0.
    if progress_enabled():
        click.echo(f"[{n}/{total}] {text}", err=True)


@click.command("demo")
@out_option("Folder for every file and report.", file=False)
@click.option(
    "--n-jobs",
    default=1,
    show_default=True,
    type=int,
    help="Parallel workers for the design search.",
)
@currency_option
@seed_option
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
    out.mkdir(parents=True, exist_ok=True)
    db = str(out / "liftlab.db")
    names = {k: str(out / f) for k, f in (
        ("history", "history.csv"), ("panel", "panel.csv"), ("panel_after", "panel_after.csv"),
        ("curves", "curves.json"), ("curves_after", "curves_after.json"),
    )}  # fmt: skip
    run = run_demo(db, seed=seed, n_jobs=n_jobs, sources=names, on_step=_step)
    figures = _write(run, out, db, currency)
    dicts = {
        "readouts": {k: as_json_value(r.to_dict()) for k, r in run.readouts.items()},
        "curves": as_json_value(run.calibration.curves),
        "curves_after": as_json_value(run.calibration_after.curves),
    }
    click.echo(
        _summary(
            as_json_value(run.truth_after),
            dicts["readouts"],
            dicts["curves"],
            run.plan.result,
            run.seconds,
            out,
            best=run.proposal_dict["best"],
            curves_after=dicts["curves_after"],
        )
    )
    click.echo(f"{figures} report figures also written as PNG files in {out / 'figures'}/")


def _write(run: DemoRun, out: Path, db: str, currency: str | None) -> int:
    """Every file and report of the run, all or nothing; returns how many figures went to PNG."""
    from allocation.cli.curves_report import render_calibration_report
    from allocation.cli.design_report import render_design_report
    from allocation.cli.plan_report import render_plan_report
    from allocation.cli.proposal_report import proposal_report
    from allocation.cli.readout_report import render_readout_report
    from allocation.cli.registry_report import calendar_report
    from experiments.registry import Registry, plot_calendar

    pages: dict[str, str] = {}
    for ch, design in run.designs.items():
        pages[f"design_{ch}.html"] = render_design_report(design, currency=currency)
    for name, r in run.readouts.items():
        pages[f"readout_{name}.html"] = render_readout_report(r, currency=currency)
    pages["curves.html"] = render_calibration_report(run.calibration, currency=currency)
    pages["curves_after.html"] = render_calibration_report(run.calibration_after, currency=currency)
    pages["plan.html"] = render_plan_report(
        run.plan, title=f"Budget plan from {out / 'curves.json'}", currency=currency
    )
    pages["proposals.html"] = proposal_report(run.proposal, currency=currency)
    registry = Registry(db, create=False)
    calendar = registry.calendar()
    pages["calendar.html"] = calendar_report(registry.list(), calendar)
    count = 0
    with outputs() as files:
        run.history.to_csv(files.path(out / "history.csv"), index=False)
        # Market clusters come from a mapping file, as a user's would (not from market names).
        run.clusters.to_csv(files.path(out / "clusters.csv"), index=False)
        run.panel.to_csv(files.path(out / "panel.csv"), index=False)
        run.panel_after.to_csv(files.path(out / "panel_after.csv"), index=False)
        files.write_text(out / "truth.json", dumps(run.truth))
        files.write_text(out / "truth_after.json", dumps(run.truth_after))
        for ch, design in run.designs.items():
            files.write_json(out / f"design_{ch}.json", design.to_dict())
        for name, r in run.readouts.items():
            files.write_json(out / f"readout_{name}.json", r.to_dict())
        files.write_json(out / "curves.json", run.calibration.curves)
        files.write_json(out / "curves_after.json", run.calibration_after.curves)
        files.write_json(out / "proposals.json", run.proposal_dict)
        _calendar_png(files, out / "calendar.png", plot_calendar, calendar)
        for page, html in pages.items():
            files.write_text(out / page, html)
            count += _figures(files, out / "figures", Path(page).stem, html)
        # plan.json last, inside its audit record: the record commits once every file is in place.
        commit_plan(
            run.plan,
            AuditLog(db),
            lambda result: (files.write_text(out / "plan.json", dumps(result)), files.commit()),
        )
    return count


def _calendar_png(files: OutputSet, path: Path, plot_calendar, frame: pd.DataFrame) -> None:
    import matplotlib.pyplot as plt

    fig, _ = plot_calendar(frame)
    fig.savefig(files.path(path), format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _figures(files: OutputSet, folder: Path, stem: str, html: str) -> int:
    """A report's inline figures as PNG files, for slides and documents."""
    uris = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    for i, data in enumerate(uris, start=1):
        files.write_bytes(folder / f"{stem}_{i}.png", base64.b64decode(data))
    return len(uris)


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
