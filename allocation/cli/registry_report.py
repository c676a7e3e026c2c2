"""The ``liftlab registry calendar`` HTML report: rendered from the registry's records, never recomputed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from allocation.cli.report import Report
from experiments.registry import plot_calendar

__all__ = ["calendar_report"]


def calendar_report(experiments: Sequence[Any], frame: pd.DataFrame) -> str:
    """HTML of the calendar: the chart, one row per test, and the rules as notes.

    Parameters
    ----------
    experiments : sequence of RegisteredExperiment
        Every test of the registry (the table's rows are those in ``frame``).
    frame : DataFrame
        :meth:`experiments.registry.Registry.calendar`'s table.
    """
    exps = {e.name: e for e in experiments}
    tests = frame.drop_duplicates("experiment")
    counts = tests["status"].value_counts()
    report = Report(
        "Experiment calendar",
        subtitle=f"{len(tests)} tests in {frame['geo'].nunique()} markets, "
        f"{frame['start'].min()} to {frame['occupied_until'].max()}",
        headline=[
            ("tests", str(len(tests))),
            ("running", str(int(counts.get("running", 0)))),
            ("designed", str(int(counts.get("designed", 0)))),
            ("read out", str(int(counts.get("read_out", 0)))),
            ("markets", str(frame["geo"].nunique())),
        ],
    )
    report.section(
        "Tests by market",
        "One lane per market; a bar per test over its window; hatched: designed, "
        "not started; dotted: the washout after the end, when the market stays busy.",
    ).figure(lambda: plot_calendar(frame)[0], caption="Calendar of geo tests")
    rows = []
    for t in tests.itertuples(index=False):
        e = exps[t.experiment]
        n_expl = sum(r.exploratory for r in e.readouts)
        rows.append(
            {
                "test": e.name,
                "status": e.status,
                "channel": e.channel or "—",
                "start": str(e.start),
                "end": str(e.end),
                "busy until": str(e.occupied_until),
                "cells": "; ".join(f"{c}: {', '.join(g)}" for c, g in e.cells.items()),
                "estimator": e.estimator,
                "confidence": f"{e.confidence:.0%}",
                "readouts": f"{len(e.readouts) - n_expl} pre-registered, {n_expl} exploratory",
                "overlaps allowed": ", ".join(o["other"] for o in e.overlaps) or "—",
            }
        )
    report.section("Tests").table(pd.DataFrame(rows))
    report.notes.append(
        "A test occupies its treated markets from its first day to its last day plus the washout; "
        "registering or starting a test on occupied markets is refused unless the overlap is "
        "explicitly allowed, and allowed overlaps are listed."
    )
    report.notes.append(
        "Readouts with settings other than the pre-registered ones are exploratory and are not "
        "used for calibration."
    )
    return report.render()
