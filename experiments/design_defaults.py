"""Design settings that fit the history given: test lengths, pre-periods and window counts.

A design simulates the readout on historical windows, each with a pre-period
before it, so the test lengths worth simulating depend on how long the panel
is and on its frequency. :func:`choose_settings` keeps the usual test lengths
of the frequency (2 to 4 weeks of days, 4 to 8 weeks, 2 or 3 months) that
leave at least :data:`MIN_WINDOWS` windows with a pre-period of four test
lengths, falls back to shorter tests on short histories, and says what it
chose and why. Explicit requests are kept as given and checked: a test the
history cannot hold is a :class:`~causal.errors.ConfigError` naming the
shortfall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from causal.errors import ConfigError

#: Fewest historical windows a default test length must leave.
MIN_WINDOWS = 10
#: Usual test lengths per period (what a user would try first), and shorter ones for short histories.
PREFERRED = {"day": (14, 21, 28), "week": (4, 6, 8), "month": (2, 3), "year": (1,)}
FALLBACK = {"day": (10, 7), "week": (3, 2), "month": (1,), "year": ()}
#: Shortest pre-period of a simulated window, in periods (four weeks of days, two months of weeks, ...).
PRE_FLOOR = {"day": 28, "week": 8, "month": 6, "year": 3}


def pre_floor(period: str) -> int:
    """Shortest pre-period of a simulated window for panels of this period."""
    return PRE_FLOOR.get(period, 28)


def min_pre_periods(duration: int, period: str, estimator_min: int = 3) -> int:
    """Shortest pre-period of a window: four test lengths, at least the period's floor and the estimator's own."""
    return max(int(estimator_min), 4 * int(duration), pre_floor(period))


def n_admissible(n_periods: int, duration: int, min_pre: int) -> int:
    """How many window starts a test of ``duration`` periods has after ``min_pre`` periods of pre-period."""
    return max(0, n_periods - duration - min_pre + 1)


@dataclass
class SimulationPlan:
    """The windows a design is simulated on: test lengths, pre-periods and window counts.

    What :func:`choose_settings` chose, for the record and the printed summary.

    Attributes
    ----------
    period : str
        ``day``, ``week``, ``month`` or ``year``.
    period_days : float
        Calendar days per period (1, 7, about 30.4, about 365.2).
    durations : list of int
        Test lengths, in periods.
    min_pre : dict
        Shortest pre-period per test length, in periods.
    n_windows : int
        Windows simulated per finalist (at most the admissible ones of each length).
    admissible : dict
        Admissible window starts per test length.
    chosen : dict
        For each setting, ``"default"`` or ``"given"``.
    notes : list of str
        Why the defaults are what they are (e.g. longer tests left out).
    """

    period: str
    period_days: float
    durations: list[int]
    min_pre: dict[int, int]
    n_windows: int
    admissible: dict[int, int]
    chosen: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def days(self, duration: int) -> int:
        """A test length in calendar days (INTERFACE's ``duration_days``)."""
        return int(round(duration * self.period_days))

    def describe(self) -> str:
        """One line: what was chosen, and whether by default or as given."""
        lens = ", ".join(
            f"{d} {self.period}s ({self.admissible[d]} windows, pre-period >= {self.min_pre[d]})"
            for d in self.durations
        )
        src = "default" if self.chosen.get("durations") == "default" else "given"
        text = f"test lengths ({src}): {lens}; up to {self.n_windows} windows simulated per design"
        return text + ("" if not self.notes else "; " + "; ".join(self.notes))

    def to_dict(self) -> dict:
        return {
            "period": self.period,
            "period_days": self.period_days,
            "durations": list(self.durations),
            "min_pre": {str(k): v for k, v in self.min_pre.items()},
            "n_windows": self.n_windows,
            "admissible": {str(k): v for k, v in self.admissible.items()},
            "chosen": dict(self.chosen),
            "notes": list(self.notes),
        }


def period_days(dates) -> float:
    """Median calendar days between consecutive dates (1 for daily, 7 for weekly panels)."""
    d = np.diff(np.asarray(dates, dtype="datetime64[D]").astype(np.int64))
    return float(np.median(d)) if len(d) else 1.0


def choose_settings(
    n_periods: int,
    period: str,
    *,
    durations: Sequence[int] | None = None,
    n_windows: int | None = None,
    min_pre: int | None = None,
    estimator_min: int = 3,
    days_per_period: float = 1.0,
) -> SimulationPlan:
    """Test lengths, pre-periods and window counts for a panel of ``n_periods`` periods.

    Parameters
    ----------
    n_periods : int
        Length of the history.
    period : str
        ``day``, ``week``, ``month`` or ``year`` (:attr:`causal.panel.Panel.period_name`).
    durations : sequence of int, optional
        Test lengths asked for, in periods; default: the usual lengths of the
        period that leave at least :data:`MIN_WINDOWS` windows.
    n_windows : int, optional
        Windows per design asked for (default 30, or all admissible when fewer).
    min_pre : int, optional
        Shortest pre-period asked for (default :func:`min_pre_periods`).
    estimator_min : int, default=3
        The readout estimator's own shortest pre-period.
    days_per_period : float, default=1.0

    Raises
    ------
    ConfigError
        A test length asked for that the history cannot hold, more windows
        asked for than any test length has, or a history too short for any
        default test length; the message names the shortfall.
    """
    chosen = {
        "durations": "default" if durations is None else "given",
        "n_windows": "default" if n_windows is None else "given",
        "min_pre": "default" if min_pre is None else "given",
    }

    def pre(d: int) -> int:
        return int(min_pre) if min_pre is not None else min_pre_periods(d, period, estimator_min)

    notes: list[str] = []
    if durations is not None:
        lens = sorted({int(d) for d in durations})
        if not lens or lens[0] < 1:
            raise ConfigError(f"test lengths must be positive integers, got {list(durations)}")
        for d in lens:
            if n_admissible(n_periods, d, pre(d)) < 1:
                raise ConfigError(
                    f"a test of {d} {period}s needs at least {pre(d) + d} {period}s of history "
                    f"({pre(d)} to fit on), but the panel has {n_periods}; ask for shorter durations "
                    f"or leave them out to let the design choose"
                )
    else:
        usable = [
            d
            for d in PREFERRED.get(period, (14, 21, 28))
            if n_admissible(n_periods, d, pre(d)) >= MIN_WINDOWS
        ]
        left_out = [d for d in PREFERRED.get(period, ()) if d not in usable]
        if not usable:
            usable = [
                d
                for d in FALLBACK.get(period, ())
                if n_admissible(n_periods, d, pre(d)) >= MIN_WINDOWS
            ][:1]
        if not usable:
            shortest = min(PREFERRED.get(period, (14,)) + FALLBACK.get(period, ()))
            need = pre(shortest) + shortest + MIN_WINDOWS - 1
            raise ConfigError(
                f"the panel has {n_periods} {period}s; the shortest default test ({shortest} {period}s) needs "
                f"{need} for {MIN_WINDOWS} historical windows with {pre(shortest)} {period}s of pre-period each"
            )
        if left_out:
            need = {d: pre(d) + d + MIN_WINDOWS - 1 for d in left_out}
            notes.append(
                "left out "
                + ", ".join(
                    f"{d} {period}s (needs {need[d]} {period}s of history)" for d in left_out
                )
            )
        lens = sorted(usable)
    admissible = {d: n_admissible(n_periods, d, pre(d)) for d in lens}
    if n_windows is not None:
        if int(n_windows) < 1:
            raise ConfigError(f"windows per design must be at least 1, got {n_windows}")
        most = max(admissible.values())
        if int(n_windows) > most:
            d = max(admissible, key=admissible.get)
            raise ConfigError(
                f"{n_windows} windows per design asked for, but a test of {d} {period}s on {n_periods} {period}s "
                f"of history has {most} (ask for at most {most}, or a shorter test)"
            )
        nw = int(n_windows)
    else:
        nw = 30
    return SimulationPlan(
        period,
        float(days_per_period),
        lens,
        {d: pre(d) for d in lens},
        nw,
        admissible,
        chosen,
        notes,
    )
