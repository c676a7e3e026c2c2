"""The registry's records: a registered test, its readouts, a conflict between tests.

Read-only snapshots of the database, returned by :class:`~experiments.registry.Registry`.
They follow liftlab's result protocol: ``summary()`` returns a
:class:`causal.summary.Summary`, ``to_dict()`` plain JSON values and
``plot(ax=None)`` draws on the axes given and returns ``(fig, ax)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from causal.errors import ConfigError, LiftlabWarning
from causal.summary import Summary

__all__ = [
    "Conflict",
    "ConflictError",
    "ControlContaminationWarning",
    "ReadoutRecord",
    "RegisteredExperiment",
    "iso",
]


class ConflictError(ConfigError):
    """A test would share treated geos with another live test at an overlapping time."""

    def __init__(self, message: str, conflicts: Sequence[Conflict] = ()) -> None:
        super().__init__(message)
        self.conflicts = list(conflicts)


class ControlContaminationWarning(LiftlabWarning):
    """A test's pre-registered control geos are treated by another test at the same time."""


@dataclass(frozen=True)
class Conflict:
    """Another live test sharing treated geos with a test at an overlapping time."""

    other: str
    status: str
    geos: tuple[str, ...]
    start: date
    end: date
    washout_days: int

    def describe(self) -> str:
        shown = ", ".join(self.geos[:8]) + (
            f" and {len(self.geos) - 8} more" if len(self.geos) > 8 else ""
        )
        return (
            f"test '{self.other}' ({self.status}, {self.start} to {self.end} "
            f"plus a {self.washout_days}-day washout) in geos {shown}"
        )


@dataclass(frozen=True)
class ReadoutRecord:
    """One stored readout of a registered test.

    Attributes
    ----------
    id : int
    experiment : str
    cell : str or None
        The cell read out, or None when the treated geos are not one cell.
    exploratory : bool
        True when the readout departs from the pre-registered settings (see
        ``deviations``) or repeats a cell already read out.
    deviations : tuple of str
        What differs from the pre-registration, one phrase each.
    settings : dict
        The settings actually used.
    result : dict
        The readout, as readout.json.
    created_at : datetime
    """

    id: int
    experiment: str
    cell: str | None
    exploratory: bool
    deviations: tuple[str, ...]
    settings: dict
    result: dict
    created_at: datetime

    @property
    def label(self) -> str:
        return "EXPLORATORY" if self.exploratory else "pre-registered"

    def summary(self) -> Summary:
        """The readout's incremental, interval, lift and settings, and its deviations."""
        from experiments.registry.text import readout_text, readouts_frame

        return Summary(readout_text(self), {"readouts": readouts_frame([self])})

    def plot(self, ax: Any = None) -> tuple[Any, Any]:
        """The incremental outcome with its interval; returns ``(fig, ax)``, never shows."""
        from experiments.registry.plotting import plot_readouts

        return plot_readouts([self], ax=ax)

    def to_dict(self) -> dict:
        """readout.json plus ``experiment``, ``cell``, ``exploratory``, ``deviations``, ``readout_id``."""
        return {
            **self.result,
            "experiment": self.experiment,
            "cell": self.cell,
            "exploratory": self.exploratory,
            "deviations": list(self.deviations),
            "readout_id": self.id,
            "recorded_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class RegisteredExperiment:
    """A registered geo test: its window, cells, pre-registered settings, readouts and history.

    Attributes
    ----------
    name : str
    channel : str or None
        The channel whose spend the test moves.
    cells : dict of str to tuple of str
        Treated geos of each cell (one cell ``"A"`` for a two-arm test).
    control : tuple of str or None
        Pre-registered control geos; None means every geo outside the test
        (and outside tests that overlap it).
    start, end : date
        First and last day of the test, inclusive.
    pre_start, pre_end : date or None
        Pre-registered pre-period; None means the readout's default.
    outcome, estimator : str
    confidence : float
    seed : int
    washout_days : int
        Days after ``end`` during which the treated geos stay occupied.
    status : str
        ``designed``, ``running``, ``read_out`` or ``cancelled``.
    design : dict or None
        The design.json that produced the test.
    note : str
    overlaps : list of dict
        Overlaps the test's owner accepted, with the other test and reason.
    readouts : list of ReadoutRecord
    events : list of dict
        The history: action, detail, time.
    """

    name: str
    channel: str | None
    cells: dict[str, tuple[str, ...]]
    control: tuple[str, ...] | None
    start: date
    end: date
    pre_start: date | None
    pre_end: date | None
    outcome: str
    estimator: str
    confidence: float
    seed: int
    washout_days: int
    status: str
    design: dict | None = None
    note: str = ""
    overlaps: list[dict] = field(default_factory=list)
    readouts: list[ReadoutRecord] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    created_at: datetime | None = None

    @property
    def treated(self) -> list[str]:
        """Every treated geo, cell by cell."""
        return [g for geos in self.cells.values() for g in geos]

    @property
    def test_period(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()

    @property
    def pre_period(self) -> tuple[str, str] | None:
        if self.pre_start is None and self.pre_end is None:
            return None
        end = self.pre_end or (self.start - timedelta(days=1))
        return (self.pre_start.isoformat() if self.pre_start else None), end.isoformat()

    @property
    def occupied_until(self) -> date:
        """Last day the treated geos are occupied: the end plus the washout."""
        return self.end + timedelta(days=self.washout_days)

    @property
    def settings(self) -> dict:
        """The pre-registered readout settings."""
        return {
            "outcome": self.outcome,
            "estimator": self.estimator,
            "confidence": self.confidence,
            "seed": self.seed,
            "pre_period": list(self.pre_period) if self.pre_period else None,
            "test_period": list(self.test_period),
            "control": list(self.control) if self.control is not None else None,
        }

    def require_status(self, action: str, allowed: Sequence[str]) -> None:
        """Raise ConfigError naming the status and the way forward unless the status is in ``allowed``."""
        require_status(self, action, tuple(allowed))

    def confirmatory(self) -> dict[str, ReadoutRecord]:
        """The pre-registered readout of each cell read out so far."""
        out: dict[str, ReadoutRecord] = {}
        for r in self.readouts:
            if not r.exploratory and r.cell is not None and r.cell not in out:
                out[r.cell] = r
        return out

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "channel": self.channel,
            "status": self.status,
            "cells": {k: list(v) for k, v in self.cells.items()},
            "treated": self.treated,
            "control": list(self.control) if self.control is not None else None,
            "test_period": list(self.test_period),
            "washout_days": self.washout_days,
            "occupied_until": self.occupied_until.isoformat(),
            "preregistered": self.settings,
            "design": self.design,
            "note": self.note,
            "overlaps": self.overlaps,
            "readouts": [r.to_dict() for r in self.readouts],
            "events": self.events,
            "created_at": iso(self.created_at),
        }

    def summary(self) -> Summary:
        """Window, cells, pre-registered settings, allowed overlaps and readouts (exploratory marked)."""
        from experiments.registry.text import experiment_text, readouts_frame

        return Summary(experiment_text(self), {"readouts": readouts_frame(self.readouts)})

    def calendar(self) -> Any:
        """This test's rows of :meth:`Registry.calendar`'s table (one per treated geo)."""
        import pandas as pd

        rows = [
            {
                "experiment": self.name,
                "cell": cell,
                "geo": g,
                "channel": self.channel,
                "status": self.status,
                "start": self.start,
                "end": self.end,
                "occupied_until": self.occupied_until,
            }
            for cell, geos in self.cells.items()
            for g in geos
        ]
        return pd.DataFrame(rows, columns=CALENDAR_COLUMNS)

    def plot(self, ax: Any = None) -> tuple[Any, Any]:
        """The test on the calendar: a bar per treated geo over its window, its washout dotted.

        Returns ``(fig, ax)``; never shows the figure.
        """
        from experiments.registry.plotting import plot_calendar

        return plot_calendar(self.calendar(), ax=ax, title=f"Geo test {self.name}")


#: Columns of the calendar table (:meth:`Registry.calendar`).
CALENDAR_COLUMNS = [
    "experiment",
    "cell",
    "geo",
    "channel",
    "status",
    "start",
    "end",
    "occupied_until",
]

_TRANSITION_HINTS = {
    "designed": "it has not started: run `liftlab registry start {name}` first",
    "running": "it is running",
    "read_out": "it has been read out",
    "cancelled": "it was cancelled",
}


def require_status(row: Any, action: str, allowed: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``row.status`` is one of ``allowed``, naming the way forward."""
    if row.status not in allowed:
        hint = _TRANSITION_HINTS[row.status].format(name=row.name)
        raise ConfigError(
            f"cannot {action} experiment '{row.name}': it is {row.status}, "
            f"and only a {' or '.join(allowed)} test can be; {hint}"
        )


def iso(x: datetime | date | None) -> str | None:
    """ISO text of a date or time, or None."""
    return None if x is None else x.isoformat()
