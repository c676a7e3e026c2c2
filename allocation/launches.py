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

    def check(self, curves: CurveSet) -> LaunchCalendar:
        """Refuse a launch in a market the curves do not have (it would silently change nothing)."""
        markets = {c.market for c in curves}
        for i, ev in enumerate(self.launches):
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
            try:
                ev = Launch(
                    int(e["day"]),
                    e.get("market"),
                    float(e.get("strength", 0.5)),
                    int(e.get("pre_days", 7)),
                    int(e.get("post_days", 7)),
                )
            except (TypeError, ValueError) as exc:
                raise DataError(f"{where}: {exc}") from None
            if ev.strength < 0 or ev.pre_days < 0 or ev.post_days < 0:
                raise DataError(f"{where}: strength, pre_days and post_days must be >= 0")
            launches.append(ev)
        conv = data.get("conversion")
        return cls(
            launches,
            tuple(data.get("awareness", AWARENESS)),
            None if conv is None else tuple(conv),
            source,
        )

    @classmethod
    def load(cls, path: str | Path) -> LaunchCalendar:
        return cls.from_dict(read_json(path, "launch calendar"), source=str(path))
