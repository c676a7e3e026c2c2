"""Text of the registry's records: what ``summary()`` prints, numbers written for a reader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from causal.summary import fmt_number

if TYPE_CHECKING:  # the records import this module lazily; no cycle at run time
    from experiments.registry.records import ReadoutRecord, RegisteredExperiment


def pct(x: Any) -> str:
    """A share as a percentage with one decimal (``-3.7%``), or ``-``.

    >>> pct(-0.0371)
    '-3.7%'
    >>> pct(None)
    '-'
    """
    return "-" if x is None else f"{100 * x:.1f}%"


def readout_line(r: ReadoutRecord) -> str:
    """One readout: label, cell, incremental with its interval, lift and estimator."""
    res = r.result
    ci = res.get("incremental_ci") or [None, None]
    return (
        f"readout #{r.id} {r.label:<14} cell {r.cell or '-'}: incremental "
        f"{fmt_number(res.get('incremental'))} [{fmt_number(ci[0])}, {fmt_number(ci[1])}] "
        f"at confidence {fmt_number(res.get('confidence'))}, lift {pct(res.get('lift'))}, "
        f"estimator {res.get('estimator')}"
    )


def readout_text(r: ReadoutRecord) -> str:
    """A readout's line followed by its deviations from the pre-registration."""
    return "\n".join(
        [f"{r.experiment} {readout_line(r)}", *(f"  deviation: {d}" for d in r.deviations)]
    )


def readouts_frame(readouts: Sequence[ReadoutRecord]) -> pd.DataFrame:
    """One row per readout: id, cell, label, incremental and its interval, lift, confidence."""
    cols = ["cell", "label", "incremental", "lower", "upper", "lift", "confidence", "estimator"]
    rows = []
    for r in readouts:
        res = r.result
        ci = res.get("incremental_ci") or [None, None]
        rows.append(
            {
                "readout": r.id,
                "cell": r.cell,
                "label": r.label,
                "incremental": res.get("incremental"),
                "lower": ci[0],
                "upper": ci[1],
                "lift": res.get("lift"),
                "confidence": res.get("confidence"),
                "estimator": res.get("estimator"),
            }
        )
    return pd.DataFrame(rows, columns=["readout", *cols]).set_index("readout")


def experiment_text(exp: RegisteredExperiment) -> str:
    """Window, cells, control, pre-registered settings, allowed overlaps and readouts."""
    days = (exp.end - exp.start).days + 1
    lines = [
        f"experiment {exp.name}  [{exp.status}]",
        f"  channel     {exp.channel or '-'}",
        f"  test window {exp.start} to {exp.end} ({days} days), "
        f"geos occupied until {exp.occupied_until} ({exp.washout_days}-day washout)",
    ]
    for cell, geos in exp.cells.items():
        lines.append(f"  cell {cell:<6} {', '.join(geos)}")
    control = (
        ", ".join(exp.control)
        if exp.control is not None
        else "every other geo not in an overlapping test"
    )
    lines.append(f"  control     {control}")
    pre = exp.pre_period
    pre_text = f"{pre[0] or 'start of data'} to {pre[1]}" if pre else "readout default"
    lines.append(
        f"  pre-registered: outcome {exp.outcome}, estimator {exp.estimator}, "
        f"confidence {fmt_number(exp.confidence)}, seed {exp.seed}, pre-period {pre_text}"
    )
    for o in exp.overlaps:
        lines.append(
            f"  overlap allowed with {o['other']} in {', '.join(o['geos'])} ({o['at']}): "
            f"{o['reason'] or 'no reason given'}"
        )
    if not exp.readouts:
        lines.append("  no readouts")
    for r in exp.readouts:
        lines.append("  " + readout_line(r))
        for d in r.deviations:
            lines.append(f"      deviation: {d}")
    return "\n".join(lines)
