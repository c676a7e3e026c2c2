"""Pre-registration: how a readout departs from the settings a test registered.

A test's readout settings (outcome, estimator, confidence, seed, pre-period,
test period, control geos) are fixed when it is registered. :func:`compare`
finds the cell a readout reads and lists, one phrase each, every setting that
differs; a readout with any deviation is exploratory and never used for
calibration.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from causal.errors import DataError
from experiments.registry.validation import parse_date

if TYPE_CHECKING:
    from experiments.registry.records import RegisteredExperiment

__all__ = ["compare"]


def _period(value: Any, role: str) -> tuple[date | None, date | None] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise DataError(f"readout {role} {value!r} must be [first_date, last_date]")
    return (
        parse_date(value[0], f"readout {role} start") if value[0] is not None else None,
        parse_date(value[1], f"readout {role} end") if value[1] is not None else None,
    )


def compare(
    exp: RegisteredExperiment, result: dict, settings: dict
) -> tuple[str | None, list[str], dict]:
    """Which cell a readout reads, how it departs from the pre-registration, and the settings used."""
    treated = [str(g) for g in result["treated"]]
    outside = [g for g in treated if g not in set(exp.treated)]
    if outside:
        raise DataError(
            f"readout of '{exp.name}' treats geo '{outside[0]}', which is not in the test "
            f"(treated: {', '.join(exp.treated)})"
        )
    ch = result.get("channel")
    if ch is not None and exp.channel is not None and ch != exp.channel:
        raise DataError(
            f"readout of '{exp.name}' is for channel '{ch}', but the test moves '{exp.channel}'"
        )
    deviations: list[str] = []
    cell = next((c for c, gs in exp.cells.items() if set(gs) == set(treated)), None)
    if cell is None:
        deviations.append(f"treated geos {', '.join(treated)} are not one cell of the test")
    used = {
        "outcome": result.get("outcome", settings.get("outcome")),
        "estimator": result["estimator"],
        "confidence": float(result["confidence"]),
        "seed": settings.get("seed", result.get("seed")),
        "pre_period": result.get("pre_period"),
        "test_period": result["test_period"],
        "control": result.get("control"),
    }
    if "control_rule" in settings:
        used["control_rule"] = settings["control_rule"]
    if used["outcome"] is not None and used["outcome"] != exp.outcome:
        deviations.append(f"outcome {used['outcome']} instead of {exp.outcome}")
    if used["estimator"] != exp.estimator:
        deviations.append(f"estimator {used['estimator']} instead of {exp.estimator}")
    if abs(used["confidence"] - exp.confidence) > 1e-9:
        deviations.append(f"confidence {used['confidence']:g} instead of {exp.confidence:g}")
    if used["seed"] is not None and int(used["seed"]) != exp.seed:
        deviations.append(f"seed {used['seed']} instead of {exp.seed}")
    test = _period(used["test_period"], "test_period")
    if test != (exp.start, exp.end):
        deviations.append(f"test period {test[0]} to {test[1]} instead of {exp.start} to {exp.end}")
    if exp.pre_period is not None:
        pre = _period(used["pre_period"], "pre_period")
        want = (exp.pre_start, exp.pre_end or exp.start - timedelta(days=1))
        # A pre-registered open start ("start of data") accepts any first date.
        if pre is None or pre[1] != want[1] or (want[0] is not None and pre[0] != want[0]):
            shown = f"{pre[0]} to {pre[1]}" if pre else "the readout default"
            deviations.append(
                f"pre-period {shown} instead of {want[0] or 'start of data'} to {want[1]}"
            )
    control = used["control"]
    if exp.control is not None:
        if control is None or set(map(str, control)) != set(exp.control):
            deviations.append("control geos differ from the pre-registered control")
    elif control is not None:
        inside = sorted(set(map(str, control)) & set(exp.treated))
        if inside:
            deviations.append(f"control includes treated geo(s) of the test: {', '.join(inside)}")
    return cell, deviations, used
