r"""The title-launch calendar of a daily plan: which days and markets a launch lifts, and how much.

A launch of strength :math:`k` on day :math:`L` in a market scales demand: on the
``pre_days`` days before it the response of *awareness* channels (``ctv``,
``programmatic``, ``social`` by default) is worth :math:`1 + k` (audiences primed
for the title convert later on what they saw), and from the launch day the
response of *conversion* channels (names containing ``search`` by default) is
worth :math:`1 + k e^{-(t - L)/\tau}` with :math:`\tau` = ``post_days / 2``, for
``post_days`` days (the organic interest that search harvests). The plan then
moves spend toward awareness before a launch and toward search after it
(:func:`allocation.daily_plan.plan_days`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from allocation.curves import CurveSet
from causal.errors import DataError
from causal.jsonfile import read_json

AWARENESS = ("ctv", "programmatic", "social")


@dataclass
class Launch:
    """One title launch: the day (index from the plan's first day), market (None: all), strength."""

    day: int
    market: str | None = None
    strength: float = 0.5
    pre_days: int = 7
    post_days: int = 7


@dataclass
class LaunchCalendar:
    """Title launches, and which channels build awareness and which convert.

    Parameters
    ----------
    launches : list of Launch
    awareness : tuple of str
        Channels whose response before a launch is scaled up.
    conversion : tuple of str or None
        Channels whose response after a launch is scaled up; ``None``: names containing ``search``.
    """

    launches: list[Launch] = field(default_factory=list)
    awareness: tuple[str, ...] = AWARENESS
    conversion: tuple[str, ...] | None = None
    source: str = "launch calendar"

    def check(self, curves: CurveSet, days: int | None = None) -> LaunchCalendar:
        """Refuse a launch that would silently change nothing in a plan of ``days`` days on ``curves``.

        That is a launch in a market the curves do not have, or (given ``days``) one whose
        ``pre_days`` before and ``post_days`` from its day reach no day ``0 .. days - 1`` of the plan.
        """
        markets = {c.market for c in curves}
        for i, ev in enumerate(self.launches):
            if days is not None and (ev.day - ev.pre_days >= days or ev.day + ev.post_days <= 0):
                raise DataError(
                    f"{self.source}: launches[{i}] key 'day' {ev.day} is outside the {days}-day "
                    f"horizon (days 0 to {days - 1}, counted from the plan's first day): with "
                    f"pre_days {ev.pre_days} and post_days {ev.post_days} it reaches no day of the plan"
                )
            if ev.market is not None and ev.market not in markets:
                known = (
                    ", ".join(sorted(str(m) for m in markets if m is not None))
                    or "none (one market, null)"
                )
                raise DataError(
                    f"{self.source}: launches[{i}] key 'market' is {ev.market!r}, not a market of "
                    f"{curves.source} (markets: {known})"
                )
        return self

    def is_conversion(self, name: str) -> bool:
        return name in self.conversion if self.conversion is not None else "search" in name

    def multipliers(self, curves: CurveSet, days: int) -> np.ndarray:
        """Demand multiplier per line and day, shape ``(lines, days)``."""
        m = np.ones((len(curves), days))
        t = np.arange(days)
        for ev in self.launches:
            pre = (t >= ev.day - ev.pre_days) & (t < ev.day)
            tau = max(ev.post_days / 2.0, 1e-9)
            post = (t >= ev.day) & (t < ev.day + ev.post_days)
            post_boost = np.where(post, ev.strength * np.exp(-(t - ev.day) / tau), 0.0)
            for i, c in enumerate(curves):
                if ev.market is not None and c.market != ev.market:
                    continue
                if c.name in self.awareness:
                    m[i] += np.where(pre, ev.strength, 0.0)
                elif self.is_conversion(c.name):
                    m[i] += post_boost
        return m

    def shifted(self, days: int) -> LaunchCalendar:
        """The same calendar seen ``days`` later (for a re-plan)."""
        return LaunchCalendar(
            [
                Launch(e.day - days, e.market, e.strength, e.pre_days, e.post_days)
                for e in self.launches
            ],
            self.awareness,
            self.conversion,
            self.source,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "launches": [vars(e) for e in self.launches],
            "awareness": list(self.awareness),
            "conversion": None if self.conversion is None else list(self.conversion),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<calendar>") -> LaunchCalendar:
        if isinstance(data, list):
            data = {"launches": data}
        if not isinstance(data, dict) or not isinstance(data.get("launches"), list):
            raise DataError(
                f'{source}: expected {{"launches": [{{"day": 10, "market": "US", "strength": 0.5}}]}}'
            )
        launches = []
        for i, e in enumerate(data["launches"]):
            where = f"{source}: launches[{i}]"
            if not isinstance(e, dict) or "day" not in e:
                raise DataError(
                    f"{where}: needs key 'day' (index of the launch day from the plan's first day)"
                )
            unknown = set(e) - {"day", "market", "strength", "pre_days", "post_days"}
            if unknown:
                raise DataError(f"{where}: unknown key '{sorted(unknown)[0]}'")
            market = e.get("market")
            if market is not None and not isinstance(market, str):
                raise DataError(
                    f"{where}: key 'market' must be a string or null, got {json.dumps(market)}"
                )
            ev = Launch(
                _whole(e["day"], where, "day"),
                market,
                _number(e.get("strength", 0.5), where, "strength"),
                _whole(e.get("pre_days", 7), where, "pre_days", nonneg=True),
                _whole(e.get("post_days", 7), where, "post_days", nonneg=True),
            )
            launches.append(ev)
        return cls(
            launches,
            _names(data, "awareness", source, AWARENESS),
            _names(data, "conversion", source, None),
            source,
        )

    @classmethod
    def load(cls, path: str | Path) -> LaunchCalendar:
        return cls.from_dict(read_json(path, "launch calendar"), source=str(path))


def _whole(v: Any, where: str, key: str, *, nonneg: bool = False) -> int:
    """A whole number of days (10 or 10.0, not 10.5, "10" or true), >= 0 if ``nonneg``."""
    ok = not isinstance(v, bool) and (
        isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v.is_integer())
    )
    if not ok:
        raise DataError(f"{where}: key '{key}' must be a whole number of days, got {json.dumps(v)}")
    if nonneg and v < 0:
        raise DataError(f"{where}: key '{key}' must be >= 0, got {json.dumps(v)}")
    return int(v)


def _number(v: Any, where: str, key: str) -> float:
    """A finite number >= 0 (a launch's strength), not a string or a boolean."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise DataError(f"{where}: key '{key}' must be a finite number >= 0, got {json.dumps(v)}")
    return float(v)


def _names(
    data: dict, key: str, source: str, default: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    """The channel names of ``awareness`` or ``conversion``: a list of strings (or null: the default)."""
    v = data.get(key)
    if v is None:
        return default
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise DataError(
            f"{source}: key '{key}' must be a list of channel names or null, got {json.dumps(v)}"
        )
    return tuple(v)
