"""A daily plan read back from its plan.json: validated before a re-plan trusts it.

Every error names the file and the key (:func:`check_previous_plan`), so a hand-edited or
truncated plan file exits 2 with one line instead of a traceback deep in the planner.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from causal.errors import DataError


def _spend_list(v: Any, where: str, key: str, *, allow_empty: bool = False) -> list[float]:
    if not isinstance(v, list) or (not v and not allow_empty):
        raise DataError(
            f"{where}: key '{key}' must be a {'' if allow_empty else 'non-empty '}list of daily spends, "
            f"got {type(v).__name__}"
        )
    for j, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x) or x < 0:
            raise DataError(
                f"{where}: key '{key}[{j}]' must be a finite spend >= 0, got {json.dumps(x)}"
            )
    return v


def check_previous_plan(
    previous: Any, source: str = "previous plan"
) -> dict[tuple[str, str | None], dict]:
    """Validate a daily plan's plan.json (a :class:`~allocation.plans.TimePlan` written out); its lines by ``(name, market)``.

    Every error names the file and the key: a top-level array, a line that is not an object
    or has no ``name``, a ``daily_spend`` that is not a list of finite spends >= 0, lines of
    different lengths, a duplicated line, a ``days`` that is not the length of the daily spends.
    """
    if not isinstance(previous, dict):
        raise DataError(
            f"{source}: expected a JSON object (a daily plan with 'lines'), got {type(previous).__name__}"
        )
    lines = previous.get("lines")
    if not isinstance(lines, list) or not lines:
        raise DataError(f"{source}: key 'lines' must be a non-empty list of a daily plan's lines")
    out: dict[tuple[str, str | None], dict] = {}
    length = None
    for i, ln in enumerate(lines):
        where = f"{source}: lines[{i}]"
        if not isinstance(ln, dict):
            raise DataError(
                f"{where}: expected an object with 'name' and 'daily_spend', got {type(ln).__name__}"
            )
        if not isinstance(ln.get("name"), str) or not ln["name"]:
            raise DataError(f"{where}: key 'name' must be a non-empty string")
        if ln.get("market") is not None and not isinstance(ln["market"], str):
            raise DataError(f"{where}: key 'market' must be a string or null")
        if "daily_spend" not in ln:
            raise DataError(
                f"{where}: no key 'daily_spend' (a daily plan's line has its spend per day)"
            )
        _spend_list(ln["daily_spend"], where, "daily_spend")
        if ln.get("history") is not None:
            _spend_list(ln["history"], where, "history", allow_empty=True)
        if length is not None and len(ln["daily_spend"]) != length:
            raise DataError(
                f"{where}: key 'daily_spend' has {len(ln['daily_spend'])} days, lines[0] has {length}"
            )
        length = len(ln["daily_spend"])
        key = (ln["name"], ln.get("market"))
        if key in out:
            raise DataError(f"{where}: duplicates line {ln['name']}/{ln.get('market')}")
        out[key] = ln
    if "days" not in previous:
        raise DataError(
            f"{source}: no key 'days' (a daily plan's number of days; its lines have {length})"
        )
    days = previous["days"]
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise DataError(
            f"{source}: key 'days' must be the plan's number of days, a whole number >= 1 "
            f"(its lines have {length} daily spends), got {json.dumps(days)}"
        )
    if days != length:
        raise DataError(
            f"{source}: key 'days' is {days} but the lines' 'daily_spend' have {length} days"
        )
    if previous.get("launch_calendar") is not None and not isinstance(
        previous["launch_calendar"], (dict, list)
    ):
        raise DataError(f"{source}: key 'launch_calendar' must be an object or null")
    if previous.get("constraints") is not None and not isinstance(previous["constraints"], dict):
        raise DataError(f"{source}: key 'constraints' must be an object")
    if previous.get("max_change") is not None:
        mc = previous["max_change"]
        if (
            isinstance(mc, bool)
            or not isinstance(mc, (int, float))
            or not np.isfinite(mc)
            or mc < 0
        ):
            raise DataError(
                f"{source}: key 'max_change' must be a finite number >= 0, got {json.dumps(mc)}"
            )
    return out


def check_same_lines(
    lines: dict[tuple[str, str | None], dict], curves: Any, plan_source: str, curves_source: str
) -> None:
    """Refuse refreshed curves whose lines are not yesterday's plan's: a line of the plan they lack
    (a re-plan would drop it), or one of theirs the plan lacks.

    ``lines`` is :func:`check_previous_plan`'s answer; ``curves`` a
    :class:`~allocation.curves.CurveSet`.
    """
    have = {(c.name, c.market) for c in curves}
    for i, (name, market) in enumerate(lines):
        if (name, market) not in have:
            label = name if market is None else f"{name}/{market}"
            raise DataError(
                f"{curves_source}: no line {label} of {plan_source} (lines[{i}]); re-plan needs the "
                "same lines as yesterday's plan"
            )
    for c in curves:
        if (c.name, c.market) not in lines:
            raise DataError(
                f"{plan_source}: no line {c.label}; re-plan needs the same lines as yesterday's plan"
            )
