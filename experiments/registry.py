"""The experiment registry: a calendar of geo tests, their conflicts, lifecycle and readouts.

Teams run many geo tests a quarter. The registry keeps them in one embedded
database (the same one as the allocation audit trail; see
:mod:`experiments.store`) and enforces three rules:

1. **No contamination.** A test occupies its treated geos from its first day
   to its last day *plus a washout* (carryover: adstock keeps a channel's
   effect alive for days after spend returns to normal). Registering or
   starting a test whose treated geos are occupied by another non-cancelled
   test at an overlapping time is refused, naming the other test, unless the
   overlap is explicitly allowed; the allowance is recorded. A read-out test
   still occupies its geos until its washout ends, because the carryover is
   physical; a cancelled test frees them.
2. **Pre-registration.** The readout settings (outcome, estimator, confidence,
   seed, pre-period, test period, control geos) are fixed at registration.
   A readout with other settings, of geos that are not one of the test's
   cells, or a second readout of a cell, is stored as *exploratory* with the
   list of its deviations, shown as such, and never used for calibration.
3. **Lifecycle.** ``designed -> running -> read_out``, and ``designed`` or
   ``running -> cancelled``; any other transition is refused with the reason.

Read-out experiments feed calibration through :func:`calibration_lifts`, one
readout.json-format dict per cell, with its interval, channel and spend change.

The washout convention follows the carryover argument of Vaver & Koehler
(2011), "Measuring Ad Effectiveness Using Geo Experiments", Google Inc.: a
geo's response to a spend change persists after the change ends, so a second
test in the same geos must wait until that persistence has decayed.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from causal.errors import ConfigError, DataError, LiftlabWarning
from causal.panel import parse_date as parse_panel_date
from experiments import store

WASHOUT_DAYS = 14
STATUSES = ("designed", "running", "read_out", "cancelled")
# Statuses whose tests occupy their geos (window plus washout).
OCCUPYING = ("designed", "running", "read_out")
DEFAULT_ESTIMATOR = "sc"
DEFAULT_CONFIDENCE = 0.9
LOCK = "registry"
WHAT = "registry database"

# A test hook: seconds to sleep between the conflict check and the insert, to widen the race
# window in the concurrent-writers test (it proves the lock, not luck, keeps tests apart).
_RACE_PAUSE_ENV = "LIFTLAB_REGISTRY_RACE_PAUSE"


class ConflictError(ConfigError):
    """A test would share treated geos with another live test at an overlapping time."""

    def __init__(self, message: str, conflicts: Sequence[Conflict] = ()) -> None:
        super().__init__(message)
        self.conflicts = list(conflicts)


class ControlContaminationWarning(LiftlabWarning):
    """A test's pre-registered control geos are treated by another test at the same time."""


# -- schema ------------------------------------------------------------------------------------
meta = sa.MetaData()

experiments_table = sa.Table(
    "registry_experiments",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("channel", sa.String(100)),
    sa.Column("outcome", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("pre_start", sa.Date),
    sa.Column("pre_end", sa.Date),
    sa.Column("estimator", sa.String(40), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("washout_days", sa.Integer, nullable=False),
    sa.Column("control", sa.Text),  # JSON list, or NULL: every geo outside the test
    sa.Column("design", sa.Text),  # design.json content, JSON
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per treated geo: a geo belongs to one cell of a test.
geos_table = sa.Table(
    "registry_geos",
    meta,
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("registry_experiments.id"), primary_key=True
    ),
    sa.Column("geo", sa.String(100), primary_key=True),
    sa.Column("cell", sa.String(100), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

# Overlaps a test's owner accepted (--allow-overlap), per other test.
overlaps_table = sa.Table(
    "registry_overlaps",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("registry_experiments.id"), nullable=False
    ),
    sa.Column("other", sa.String(200), nullable=False),
    sa.Column("geos", sa.Text, nullable=False),  # JSON list
    sa.Column("at", sa.String(20), nullable=False),  # "add" or "start"
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

readouts_table = sa.Table(
    "registry_readouts",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("registry_experiments.id"), nullable=False
    ),
    sa.Column("cell", sa.String(100)),
    sa.Column("exploratory", sa.Boolean, nullable=False),
    sa.Column("deviations", sa.Text, nullable=False),  # JSON list of strings
    sa.Column("settings", sa.Text, nullable=False),  # JSON: the settings actually used
    sa.Column("result", sa.Text, nullable=False),  # readout.json content
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

events_table = sa.Table(
    "registry_events",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("registry_experiments.id"), nullable=False
    ),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


# -- records -----------------------------------------------------------------------------------
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

    def to_dict(self) -> dict:
        """readout.json plus ``experiment``, ``cell``, ``exploratory``, ``deviations``, ``readout_id``."""
        return {
            **self.result,
            "experiment": self.experiment,
            "cell": self.cell,
            "exploratory": self.exploratory,
            "deviations": list(self.deviations),
            "readout_id": self.id,
            "recorded_at": _iso(self.created_at),
        }


@dataclass(frozen=True)
class Experiment:
    """A registered geo test.

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
        _require_status(self, action, tuple(allowed))

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
            "created_at": _iso(self.created_at),
        }

    def summary(self) -> str:
        """A short text description: window, cells, settings, readouts (exploratory marked)."""
        lines = [
            f"experiment {self.name}  [{self.status}]",
            f"  channel     {self.channel or '-'}",
            f"  test window {self.start} to {self.end} ({(self.end - self.start).days + 1} days), "
            f"geos occupied until {self.occupied_until} ({self.washout_days}-day washout)",
        ]
        for cell, geos in self.cells.items():
            lines.append(f"  cell {cell:<6} {', '.join(geos)}")
        lines.append(
            f"  control     {', '.join(self.control) if self.control is not None else 'every other geo not in an overlapping test'}"
        )
        pre = self.pre_period
        lines.append(
            f"  pre-registered: outcome {self.outcome}, estimator {self.estimator}, confidence {self.confidence:g}, "
            f"seed {self.seed}, pre-period {(pre[0] or 'start of data') + ' to ' + pre[1] if pre else 'readout default'}"
        )
        for o in self.overlaps:
            lines.append(
                f"  overlap allowed with {o['other']} in {', '.join(o['geos'])} ({o['at']}): {o['reason'] or 'no reason given'}"
            )
        if not self.readouts:
            lines.append("  no readouts")
        for r in self.readouts:
            res = r.result
            ci = res.get("incremental_ci") or [None, None]
            lines.append(
                f"  readout #{r.id} {r.label:<14} cell {r.cell or '-'}: incremental {_num(res.get('incremental'))} "
                f"[{_num(ci[0])}, {_num(ci[1])}] at {res.get('confidence')}, lift {_pct(res.get('lift'))}, "
                f"estimator {res.get('estimator')}"
            )
            for d in r.deviations:
                lines.append(f"      deviation: {d}")
        return "\n".join(lines)


def _num(x: Any) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _iso(x: datetime | date | None) -> str | None:
    return None if x is None else x.isoformat()


def _now() -> datetime:
    return datetime.now(UTC)


# -- validation at the edge ---------------------------------------------------------------------
def parse_date(value: str | date | datetime | None, role: str) -> date | None:
    """``YYYY-MM-DD`` (or a date) -> date, by the one date rule of :func:`causal.panel.parse_date`.

    A time of day or a UTC offset is refused, naming ``role``, as everywhere else.
    """
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    return parse_panel_date(value, role).date()


def _check_name(name: str) -> str:
    name = str(name).strip()
    if not name or len(name) > 200 or any(c in name for c in "\n\r\t"):
        raise ConfigError(f"experiment name '{name}' must be 1 to 200 characters on one line")
    return name


def _clean_geos(geos: Iterable[Any], role: str) -> list[str]:
    out = []
    for g in geos:
        text = str(g).strip()
        if not text or "," in text:
            raise DataError(f"{role} geo '{g}' is not a geo id (empty or containing a comma)")
        out.append(text)
    return out


def _check_cells(
    cells: Mapping[str, Sequence[str]] | Sequence[str], control: Sequence[str] | None
) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...] | None]:
    if isinstance(cells, Mapping):
        raw = dict(cells)
    elif isinstance(cells, str):
        raw = {"A": cells.split(",")}
    else:
        raw = {"A": list(cells)}
    if not raw:
        raise DataError("the test has no cells: give treated geos")
    out: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for cell, geos in raw.items():
        cell = str(cell).strip()
        if not cell:
            raise DataError("a cell has an empty name")
        if isinstance(geos, str):
            geos = geos.split(",")
        clean = _clean_geos(geos, f"cell {cell} treated")
        if not clean:
            raise DataError(f"cell {cell} has no treated geos")
        for g in clean:
            if g in seen:
                where = (
                    "twice in cell " + cell if seen[g] == cell else f"in cells {seen[g]} and {cell}"
                )
                raise DataError(f"treated geo '{g}' is given {where}")
            seen[g] = cell
        out[cell] = tuple(clean)
    ctrl = None
    if control is not None:
        ctrl_list = _clean_geos(control, "control")
        if not ctrl_list:
            raise DataError("the control geo list is empty")
        dup = {g for g in ctrl_list if ctrl_list.count(g) > 1}
        if dup:
            raise DataError(f"control geo '{sorted(dup)[0]}' is given twice")
        both = [g for g in ctrl_list if g in seen]
        if both:
            raise DataError(f"geo '{both[0]}' is both treated (cell {seen[both[0]]}) and a control")
        ctrl = tuple(ctrl_list)
    return out, ctrl


def _check_estimator(name: str) -> str:
    from causal.base import ESTIMATOR_PATHS

    if name not in ESTIMATOR_PATHS:
        raise ConfigError(
            f"estimator '{name}' is unknown (choose from {', '.join(ESTIMATOR_PATHS)})"
        )
    return name


def _design_geos(value: Any, key: str) -> list[str]:
    """A design's list of geo ids; a string, a number or a nested value is refused, naming ``key``."""
    if not isinstance(value, list) or not value:
        raise DataError(
            f"design key '{key}' must be a non-empty list of geo ids, got {type(value).__name__}"
        )
    for g in value:
        if isinstance(g, bool) or not isinstance(g, (str, int)) or not str(g).strip():
            raise DataError(f"design key '{key}' holds {g!r}, which is not a geo id")
    return [str(g).strip() for g in value]


def design_defaults(design: Mapping[str, Any]) -> dict[str, Any]:
    """Registration settings a design.json implies: cells, control, estimator, outcome, duration, confidence.

    A design's ``cells`` may be a list of ``{"name", "treated"}`` or a mapping
    of cell name to geos; otherwise its ``treated`` list is cell ``A``. Every
    key used is type-checked: a wrong type is a :class:`DataError` naming the
    key, never a value converted into something else (a string of geo ids is
    not a list of its characters).
    """
    if not isinstance(design, Mapping):
        raise DataError(f"a design must be a JSON object, got {type(design).__name__}")
    out: dict[str, Any] = {}
    cells = design.get("cells")
    if isinstance(cells, Mapping) and cells:
        out["cells"] = {str(k): _design_geos(v, f"cells.{k}") for k, v in cells.items()}
    elif isinstance(cells, list) and cells:
        out["cells"] = {}
        for i, c in enumerate(cells):
            if not isinstance(c, Mapping) or "treated" not in c:
                raise DataError(f"design cell {i + 1} has no 'treated' list")
            name = c.get("name")
            if name is not None and not isinstance(name, (str, int)) or isinstance(name, bool):
                raise DataError(
                    f"design key 'cells[{i}].name' must be a string, got {type(name).__name__}"
                )
            label = str(name or chr(ord("A") + i))
            if label in out["cells"]:
                raise DataError(f"design cell '{label}' appears twice")
            out["cells"][label] = _design_geos(c["treated"], f"cells[{i}].treated")
    elif cells not in (None, [], {}):
        raise DataError(
            f"design key 'cells' must be a list or an object, got {type(cells).__name__}"
        )
    elif design.get("treated") is not None:
        out["cells"] = {"A": _design_geos(design["treated"], "treated")}
    if design.get("control") is not None:
        out["control"] = _design_geos(design["control"], "control")
    for key in ("estimator", "outcome"):
        value = design.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise DataError(f"design key '{key}' must be a non-empty string, got {value!r}")
        if value:
            out[key] = value.strip()
    days = design.get("duration_days")
    if days is not None:
        if (
            isinstance(days, bool)
            or not isinstance(days, (int, float))
            or not math.isfinite(days)
            or days != int(days)
            or days < 1
        ):
            raise DataError(
                f"design key 'duration_days' must be a whole number of days >= 1, got {days!r}"
            )
        out["duration_days"] = int(days)
    alpha = design.get("alpha")
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise DataError(f"design key 'alpha' must be a number between 0 and 1, got {alpha!r}")
        # A two-sided test at alpha reports a (1 - alpha) interval: the same decision rule.
        out["confidence"] = 1.0 - float(alpha)
    return out


# -- the registry ----------------------------------------------------------------------------
class Registry:
    """The experiment registry in a database (SQLite file by default, any SQLAlchemy URL).

    Parameters
    ----------
    db : str or path, optional
        A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``) or
        an SQLite file path; default the ``LIFTLAB_DB`` environment variable,
        else ``liftlab.db`` in the current folder.
    create : bool, default=True
        Create the SQLite file and the tables if missing. With False, a
        missing SQLite file is an error (reading a registry that is not there
        is more likely a typo than an empty calendar).
    """

    def __init__(self, db: str | os.PathLike | None = None, *, create: bool = True) -> None:
        self.url = store.resolve_url(db)
        self.engine = store.open_engine(self.url, create=create, what=WHAT)
        if create:
            store.ensure_schema(self.engine, meta, lock_names=(LOCK,), what=WHAT)
        elif not store.has_tables(self.engine, meta, what=WHAT):
            # A read creates nothing: a database without the registry's tables has no tests.
            self.engine.dispose()
            raise DataError(
                f"{WHAT} {store.describe(self.engine)} has no registered tests "
                "(register one first with `liftlab registry add`)"
            )

    def __repr__(self) -> str:
        return f"Registry({store.mask_url(self.url)!r})"

    def close(self) -> None:
        """Close the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writers ---------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        *,
        cells: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
        start: str | date,
        end: str | date | None = None,
        channel: str | None = None,
        control: Sequence[str] | None = None,
        pre_period: tuple[str | date | None, str | date | None] | None = None,
        estimator: str | None = None,
        confidence: float | None = None,
        seed: int = 0,
        outcome: str | None = None,
        washout_days: int = WASHOUT_DAYS,
        design: Mapping[str, Any] | None = None,
        allow_overlap: bool = False,
        reason: str = "",
        note: str = "",
        known_geos: Sequence[str] | None = None,
    ) -> Experiment:
        """Register a test as ``designed``, refusing it if it conflicts with a live test.

        Settings not given come from ``design`` (its cells or treated geos,
        control, estimator, outcome, ``duration_days`` for ``end``, and
        ``1 - alpha`` for the confidence), else the defaults (``sc``, 0.9).

        Raises
        ------
        ConflictError
            If a non-cancelled test occupies one of the treated geos at an
            overlapping time (window plus washout on both sides) and
            ``allow_overlap`` is False. The message names the other test.
        DataError, ConfigError
            Bad geo lists, dates or settings; an existing name.
        """
        name = _check_name(name)
        from_design = design_defaults(design) if design else {}
        cells = cells if cells is not None else from_design.get("cells")
        if cells is None:
            raise DataError(
                f"experiment '{name}': no treated geos (give cells/treated or a design with 'treated')"
            )
        control = control if control is not None else from_design.get("control")
        cells_, control_ = _check_cells(cells, control)
        if known_geos is not None:
            known = set(known_geos)
            for g in [*(g for gs in cells_.values() for g in gs), *(control_ or ())]:
                if g not in known:
                    raise DataError(f"experiment '{name}': geo '{g}' is not in the panel")
        start_ = parse_date(start, "start")
        if end is None:
            if "duration_days" not in from_design:
                raise ConfigError(
                    f"experiment '{name}': give an end date or a design with duration_days"
                )
            end_ = start_ + timedelta(days=from_design["duration_days"] - 1)
        else:
            end_ = parse_date(end, "end")
        if end_ < start_:
            raise DataError(f"experiment '{name}': end {end_} is before start {start_}")
        pre_start = pre_end = None
        if pre_period is not None:
            pre_start = parse_date(pre_period[0], "pre-period start")
            pre_end = (
                parse_date(pre_period[1], "pre-period end")
                if pre_period[1] is not None
                else start_ - timedelta(days=1)
            )
            if pre_end >= start_:
                raise DataError(
                    f"experiment '{name}': pre-period end {pre_end} is not before the test start {start_}"
                )
            if pre_start is not None and pre_start > pre_end:
                raise DataError(
                    f"experiment '{name}': pre-period start {pre_start} is after its end {pre_end}"
                )
        estimator_ = _check_estimator(
            estimator or from_design.get("estimator") or DEFAULT_ESTIMATOR
        )
        confidence_ = float(
            confidence
            if confidence is not None
            else from_design.get("confidence", DEFAULT_CONFIDENCE)
        )
        if not 0.5 <= confidence_ < 1.0:
            raise ConfigError(f"experiment '{name}': confidence {confidence_} must be in [0.5, 1)")
        washout_days = int(washout_days)
        if washout_days < 0:
            raise ConfigError(f"experiment '{name}': washout_days {washout_days} must be >= 0")
        outcome_ = outcome or from_design.get("outcome") or "signups"
        treated = {g for gs in cells_.values() for g in gs}

        with store.transaction(self.engine, write=True, lock=LOCK, what=WHAT) as conn:
            if conn.execute(
                sa.select(experiments_table.c.id).where(experiments_table.c.name == name)
            ).first():
                raise ConfigError(
                    f"experiment '{name}' is already registered (choose another name)"
                )
            conflicts = _find_conflicts(conn, treated, start_, end_, washout_days)
            _race_pause()
            if conflicts and not allow_overlap:
                raise _conflict_error(f"cannot register '{name}'", conflicts)
            now = _now()
            exp_id = conn.execute(
                experiments_table.insert().values(
                    name=name,
                    channel=channel,
                    outcome=outcome_,
                    status="designed",
                    start_date=start_,
                    end_date=end_,
                    pre_start=pre_start,
                    pre_end=pre_end,
                    estimator=estimator_,
                    confidence=confidence_,
                    seed=int(seed),
                    washout_days=washout_days,
                    control=json.dumps(list(control_)) if control_ is not None else None,
                    design=json.dumps(dict(design), default=str) if design else None,
                    note=note,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            conn.execute(
                geos_table.insert(),
                [
                    {"experiment_id": exp_id, "geo": g, "cell": cell, "position": i}
                    for i, (cell, g) in enumerate((c, g) for c, gs in cells_.items() for g in gs)
                ],
            )
            _record_overlaps(conn, exp_id, conflicts, "add", reason)
            _event(
                conn,
                exp_id,
                "add",
                f"registered {start_} to {end_}, cells "
                + "; ".join(f"{c}: {','.join(g)}" for c, g in cells_.items()),
            )
            if control_ is not None:
                _warn_contaminated_controls(conn, name, exp_id, set(control_), start_, end_)
        return self.get(name)

    def start(self, name: str, *, allow_overlap: bool = False, reason: str = "") -> Experiment:
        """``designed -> running``, re-checking conflicts the test's owner has not accepted.

        A test registered later with ``allow_overlap`` accepted the overlap for
        itself only; starting the earlier test then needs this owner's
        ``allow_overlap`` too.
        """
        with store.transaction(self.engine, write=True, lock=LOCK, what=WHAT) as conn:
            row = _row(conn, name)
            _require_status(row, "start", ("designed",))
            treated = {g for g, _ in _geos_of(conn, row.id)}
            accepted = {
                o.other
                for o in conn.execute(
                    sa.select(overlaps_table.c.other).where(
                        overlaps_table.c.experiment_id == row.id
                    )
                )
            }
            conflicts = [
                c
                for c in _find_conflicts(
                    conn, treated, row.start_date, row.end_date, row.washout_days, exclude_id=row.id
                )
                if c.other not in accepted
            ]
            if conflicts and not allow_overlap:
                raise _conflict_error(f"cannot start '{name}'", conflicts)
            _record_overlaps(conn, row.id, conflicts, "start", reason)
            _set_status(conn, row.id, "running", "start", "started")
        return self.get(name)

    def cancel(self, name: str, *, reason: str = "") -> Experiment:
        """``designed`` or ``running -> cancelled``; the test's geos are free again."""
        with store.transaction(self.engine, write=True, lock=LOCK, what=WHAT) as conn:
            row = _row(conn, name)
            _require_status(row, "cancel", ("designed", "running"))
            _set_status(conn, row.id, "cancelled", "cancel", reason or "cancelled")
        return self.get(name)

    def record_readout(
        self, name: str, result: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
    ) -> ReadoutRecord:
        """Store a readout (readout.json content) of a running or read-out test.

        The readout is compared with the pre-registration; any difference (or
        a second readout of a cell) makes it exploratory. When every cell has
        its pre-registered readout, the test becomes ``read_out``.

        Parameters
        ----------
        name : str
        result : dict
            readout.json: at least ``treated``, ``test_period``, ``estimator``,
            ``confidence``, ``incremental`` and ``incremental_ci``.
        settings : dict, optional
            Settings used that readout.json does not carry (``seed``, and
            ``control_rule`` when the control was the registry's default).

        Raises
        ------
        DataError
            If the readout treats geos outside the test, or moves another channel.
        ConfigError
            If the test is not running or read out.
        """
        result = _jsonable(dict(result))
        for key in (
            "treated",
            "test_period",
            "estimator",
            "confidence",
            "incremental",
            "incremental_ci",
        ):
            if key not in result:
                raise DataError(f"readout of '{name}' has no '{key}' key (is it a readout.json?)")
        with store.transaction(self.engine, write=True, lock=LOCK, what=WHAT) as conn:
            row = _row(conn, name)
            _require_status(row, "read out", ("running", "read_out"))
            exp = self._load(conn, row)
            cell, deviations, used = _compare(exp, result, dict(settings or {}))
            if cell is not None and not deviations and cell in exp.confirmatory():
                first = exp.confirmatory()[cell]
                deviations.append(
                    f"repeat of pre-registered readout #{first.id} of cell {cell} (only the first counts)"
                )
            exploratory = bool(deviations)
            now = _now()
            rid = conn.execute(
                readouts_table.insert().values(
                    experiment_id=row.id,
                    cell=cell,
                    exploratory=exploratory,
                    deviations=json.dumps(deviations),
                    settings=json.dumps(used, default=str),
                    result=json.dumps(result),
                    created_at=now,
                )
            ).inserted_primary_key[0]
            _event(
                conn,
                row.id,
                "readout",
                f"readout #{rid} of cell {cell or '-'}"
                + (
                    " (exploratory: " + "; ".join(deviations) + ")"
                    if exploratory
                    else " (pre-registered)"
                ),
            )
            done = set(exp.confirmatory()) | (
                {cell} if cell is not None and not exploratory else set()
            )
            if row.status == "running" and done >= set(exp.cells):
                _set_status(
                    conn, row.id, "read_out", "read_out", "every cell read out as pre-registered"
                )
        rec = next(r for r in self.get(name).readouts if r.id == rid)
        return rec

    def run_readout(
        self,
        name: str,
        panel: Any,
        *,
        cell: str | None = None,
        estimator: str | None = None,
        confidence: float | None = None,
        pre_period: tuple[str, str] | None = None,
        control: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[ReadoutRecord]:
        """Read out a test's cells on ``panel`` with its pre-registered settings and store the results.

        Any setting given here that differs from the pre-registration makes
        the readout exploratory. With no pre-registered control, the control
        is every panel geo outside this test and outside every other
        non-cancelled test whose occupied window overlaps this test's window
        (their geos are contaminated donors).

        Uses :func:`experiments.readout.read_out`.
        """
        try:
            from experiments.readout import read_out
        except ModuleNotFoundError as exc:
            if exc.name == "experiments.readout":
                raise ConfigError(
                    "the readout module (experiments/readout.py) is not available"
                ) from exc
            raise
        from causal.panel import Panel, load_panel

        exp = self.get(name)
        exp.require_status("read out", ("running", "read_out"))
        if not isinstance(panel, Panel):
            panel = load_panel(panel, y=exp.outcome)
        cells = [cell] if cell is not None else list(exp.cells)
        for c in cells:
            if c not in exp.cells:
                raise ConfigError(
                    f"experiment '{name}' has no cell '{c}' (cells: {', '.join(exp.cells)})"
                )
        control_rule = None
        if control is None and exp.control is None:
            busy = self._busy_except(exp)
            mine = set(exp.treated)
            control = [g for g in panel.geos if g not in mine and g not in busy]
            control_rule = "registry default: every geo outside the test" + (
                f" and outside overlapping tests ({len(busy & set(panel.geos))} geos excluded)"
                if busy
                else ""
            )
        elif control is None:
            control = list(exp.control)
        pre = pre_period if pre_period is not None else exp.pre_period
        used_seed = exp.seed if seed is None else int(seed)
        computed = []
        for c in cells:
            res = read_out(
                panel,
                list(exp.cells[c]),
                exp.test_period,
                pre_period=pre,
                control=list(control),
                estimator=estimator or exp.estimator,
                confidence=confidence if confidence is not None else exp.confidence,
                channel=exp.channel,
                seed=used_seed,
            )
            computed.append(res.to_dict() if hasattr(res, "to_dict") else dict(res))
        records = []
        for res in computed:
            settings = {"seed": used_seed, "outcome": panel.y}
            if control_rule:
                settings["control_rule"] = control_rule
            records.append(self.record_readout(name, res, settings=settings))
        return records

    # -- readers ---------------------------------------------------------------------------------
    def get(self, name: str) -> Experiment:
        """The experiment called ``name``, with its readouts and history."""
        with store.transaction(self.engine, what=WHAT) as conn:
            return self._load(conn, _row(conn, name))

    def list(
        self, *, status: str | Sequence[str] | None = None, channel: str | None = None
    ) -> list[Experiment]:
        """Registered experiments by start date, optionally of some statuses or one channel."""
        statuses = _check_statuses(status)
        with store.transaction(self.engine, what=WHAT) as conn:
            q = sa.select(experiments_table).order_by(
                experiments_table.c.start_date, experiments_table.c.name
            )
            if statuses:
                q = q.where(experiments_table.c.status.in_(statuses))
            if channel:
                q = q.where(experiments_table.c.channel == channel)
            return [self._load(conn, row) for row in conn.execute(q).all()]

    def conflicts(
        self,
        geos: Iterable[str],
        start: str | date,
        end: str | date,
        *,
        washout_days: int = WASHOUT_DAYS,
        exclude: str | None = None,
    ) -> list[Conflict]:
        """Live tests that a test treating ``geos`` from ``start`` to ``end`` would conflict with."""
        start_, end_ = parse_date(start, "start"), parse_date(end, "end")
        with store.transaction(self.engine, what=WHAT) as conn:
            exclude_id = _row(conn, exclude).id if exclude else None
            return _find_conflicts(
                conn, set(geos), start_, end_, int(washout_days), exclude_id=exclude_id
            )

    def busy_geos(
        self, start: str | date, end: str | date, *, washout_days: int = WASHOUT_DAYS
    ) -> set[str]:
        """Geos a new test from ``start`` to ``end`` could not treat: occupied by live tests."""
        start_, end_ = parse_date(start, "start"), parse_date(end, "end")
        if end_ < start_:
            raise DataError(f"end {end_} is before start {start_}")
        with store.transaction(self.engine, what=WHAT) as conn:
            return {
                g
                for c in _find_conflicts(conn, None, start_, end_, int(washout_days))
                for g in c.geos
            }

    def calibration_lifts(self) -> list[dict]:
        """The pre-registered readout of every cell of every read-out test, as readout.json dicts.

        Each dict also has ``experiment``, ``cell``, ``readout_id``; its
        ``channel`` is the test's when the readout left it null.
        """
        out = []
        for exp in self.list(status="read_out"):
            firsts = exp.confirmatory()
            for cell in exp.cells:
                rec = firsts.get(cell)
                if rec is None:
                    continue
                d = rec.to_dict()
                if d.get("channel") is None:
                    d["channel"] = exp.channel
                out.append(d)
        return out

    def calendar(
        self,
        *,
        start: str | date | None = None,
        end: str | date | None = None,
        include_cancelled: bool = False,
    ) -> Any:
        """One row per (test, treated geo): the table behind the calendar chart.

        Columns: ``experiment``, ``cell``, ``geo``, ``channel``, ``status``,
        ``start``, ``end``, ``occupied_until`` (dates). Tests wholly outside
        [start, end] are left out.
        """
        import pandas as pd

        lo, hi = parse_date(start, "calendar start"), parse_date(end, "calendar end")
        rows = []
        for exp in self.list():
            if exp.status == "cancelled" and not include_cancelled:
                continue
            if (lo and exp.occupied_until < lo) or (hi and exp.start > hi):
                continue
            for cell, geos in exp.cells.items():
                for g in geos:
                    rows.append(
                        {
                            "experiment": exp.name,
                            "cell": cell,
                            "geo": g,
                            "channel": exp.channel,
                            "status": exp.status,
                            "start": exp.start,
                            "end": exp.end,
                            "occupied_until": exp.occupied_until,
                        }
                    )
        cols = ["experiment", "cell", "geo", "channel", "status", "start", "end", "occupied_until"]
        return pd.DataFrame(rows, columns=cols)

    # -- internals -------------------------------------------------------------------------------
    def _busy_except(self, exp: Experiment) -> set[str]:
        with store.transaction(self.engine, what=WHAT) as conn:
            row = _row(conn, exp.name)
            found = _find_conflicts(conn, None, exp.start, exp.end, 0, exclude_id=row.id)
        return {g for c in found for g in c.geos}

    def _load(self, conn: Connection, row: Any) -> Experiment:
        cells: dict[str, list[str]] = {}
        for g, cell in _geos_of(conn, row.id):
            cells.setdefault(cell, []).append(g)
        overlaps = [
            {
                "other": o.other,
                "geos": json.loads(o.geos),
                "at": o.at,
                "reason": o.reason,
                "created_at": _iso(o.created_at),
            }
            for o in conn.execute(
                sa.select(overlaps_table)
                .where(overlaps_table.c.experiment_id == row.id)
                .order_by(overlaps_table.c.id)
            )
        ]
        readouts = [
            ReadoutRecord(
                r.id,
                row.name,
                r.cell,
                bool(r.exploratory),
                tuple(json.loads(r.deviations)),
                json.loads(r.settings),
                json.loads(r.result),
                r.created_at,
            )
            for r in conn.execute(
                sa.select(readouts_table)
                .where(readouts_table.c.experiment_id == row.id)
                .order_by(readouts_table.c.id)
            )
        ]
        events = [
            {"action": e.action, "detail": e.detail, "at": _iso(e.created_at)}
            for e in conn.execute(
                sa.select(events_table)
                .where(events_table.c.experiment_id == row.id)
                .order_by(events_table.c.id)
            )
        ]
        return Experiment(
            name=row.name,
            channel=row.channel,
            cells={k: tuple(v) for k, v in cells.items()},
            control=tuple(json.loads(row.control)) if row.control else None,
            start=row.start_date,
            end=row.end_date,
            pre_start=row.pre_start,
            pre_end=row.pre_end,
            outcome=row.outcome,
            estimator=row.estimator,
            confidence=float(row.confidence),
            seed=int(row.seed),
            washout_days=int(row.washout_days),
            status=row.status,
            design=json.loads(row.design) if row.design else None,
            note=row.note or "",
            overlaps=overlaps,
            readouts=readouts,
            events=events,
            created_at=row.created_at,
        )


# -- helpers inside a transaction ---------------------------------------------------------------
def _race_pause() -> None:
    pause = float(os.environ.get(_RACE_PAUSE_ENV, "0") or 0)
    if pause > 0:
        import time

        time.sleep(pause)


def _row(conn: Connection, name: str | None) -> Any:
    row = conn.execute(
        sa.select(experiments_table).where(experiments_table.c.name == str(name).strip())
    ).first()
    if row is None:
        known = [
            r.name
            for r in conn.execute(
                sa.select(experiments_table.c.name).order_by(experiments_table.c.id.desc()).limit(6)
            )
        ]
        hint = (
            f" (registered: {', '.join(known)}{', ...' if len(known) == 6 else ''})"
            if known
            else " (the registry is empty)"
        )
        raise DataError(f"unknown experiment '{name}'{hint}")
    return row


def _geos_of(conn: Connection, exp_id: int) -> list[tuple[str, str]]:
    q = (
        sa.select(geos_table.c.geo, geos_table.c.cell)
        .where(geos_table.c.experiment_id == exp_id)
        .order_by(geos_table.c.position)
    )
    return [(r.geo, r.cell) for r in conn.execute(q)]


_TRANSITION_HINTS = {
    "designed": "it has not started: run `liftlab registry start {name}` first",
    "running": "it is running",
    "read_out": "it has been read out",
    "cancelled": "it was cancelled",
}


def _require_status(row: Any, action: str, allowed: tuple[str, ...]) -> None:
    if row.status not in allowed:
        hint = _TRANSITION_HINTS[row.status].format(name=row.name)
        raise ConfigError(
            f"cannot {action} experiment '{row.name}': it is {row.status}, "
            f"and only a {' or '.join(allowed)} test can be; {hint}"
        )


def _set_status(conn: Connection, exp_id: int, status: str, action: str, detail: str) -> None:
    now = _now()
    conn.execute(
        experiments_table.update()
        .where(experiments_table.c.id == exp_id)
        .values(status=status, updated_at=now)
    )
    _event(conn, exp_id, action, detail)


def _event(conn: Connection, exp_id: int, action: str, detail: str) -> None:
    conn.execute(
        events_table.insert().values(
            experiment_id=exp_id, action=action, detail=detail, created_at=_now()
        )
    )


def _find_conflicts(
    conn: Connection,
    geos: set[str] | None,
    start: date,
    end: date,
    washout_days: int,
    *,
    exclude_id: int | None = None,
) -> list[Conflict]:
    """Occupying tests whose window-plus-washout overlaps ours and that treat one of ``geos`` (None: any)."""
    q = sa.select(experiments_table).where(experiments_table.c.status.in_(OCCUPYING))
    if exclude_id is not None:
        q = q.where(experiments_table.c.id != exclude_id)
    # Dates compared in Python: date arithmetic in SQL differs between dialects.
    mine_until = end + timedelta(days=washout_days)
    candidates = [
        r
        for r in conn.execute(q)
        if r.start_date <= mine_until and start <= r.end_date + timedelta(days=r.washout_days)
    ]
    if not candidates:
        return []
    by_id = {r.id: r for r in candidates}
    gq = (
        sa.select(geos_table.c.experiment_id, geos_table.c.geo)
        .where(geos_table.c.experiment_id.in_(list(by_id)))
        .order_by(geos_table.c.experiment_id, geos_table.c.position)
    )
    shared: dict[int, list[str]] = {}
    for r in conn.execute(gq):
        if geos is None or r.geo in geos:
            shared.setdefault(r.experiment_id, []).append(r.geo)
    out = []
    for exp_id, gs in shared.items():
        r = by_id[exp_id]
        out.append(
            Conflict(r.name, r.status, tuple(gs), r.start_date, r.end_date, int(r.washout_days))
        )
    return sorted(out, key=lambda c: (c.start, c.other))


def _conflict_error(prefix: str, conflicts: list[Conflict]) -> ConflictError:
    first = conflicts[0]
    more = (
        f" (and {len(conflicts) - 1} more test{'s' if len(conflicts) > 2 else ''})"
        if len(conflicts) > 1
        else ""
    )
    return ConflictError(
        f"{prefix}: its geos overlap live {first.describe()}{more}; choose other geos or dates, "
        f"cancel '{first.other}', or allow the overlap explicitly (--allow-overlap)",
        conflicts,
    )


def _record_overlaps(
    conn: Connection, exp_id: int, conflicts: list[Conflict], at: str, reason: str
) -> None:
    for c in conflicts:
        conn.execute(
            overlaps_table.insert().values(
                experiment_id=exp_id,
                other=c.other,
                geos=json.dumps(list(c.geos)),
                at=at,
                reason=reason,
                created_at=_now(),
            )
        )
        _event(
            conn,
            exp_id,
            "allow_overlap",
            f"overlap with {c.other} in {', '.join(c.geos)} allowed"
            + (f": {reason}" if reason else ""),
        )


def _warn_contaminated_controls(
    conn: Connection, name: str, exp_id: int, control: set[str], start: date, end: date
) -> None:
    found = _find_conflicts(conn, control, start, end, 0, exclude_id=exp_id)
    if found:
        which = "; ".join(f"{', '.join(c.geos)} by test '{c.other}'" for c in found)
        warnings.warn(
            f"experiment '{name}': control geos are treated by other tests during this test ({which}); "
            f"its readout may be biased (choose other control geos)",
            ControlContaminationWarning,
            stacklevel=3,
        )


def _check_statuses(status: str | Sequence[str] | None) -> list[str]:
    if status is None:
        return []
    statuses = [status] if isinstance(status, str) else list(status)
    for s in statuses:
        if s not in STATUSES:
            raise ConfigError(f"status '{s}' is unknown (choose from {', '.join(STATUSES)})")
    return statuses


def _jsonable(obj: Any) -> Any:
    """Plain JSON types (numpy scalars, dates) so the readout can be stored and compared."""
    return json.loads(json.dumps(obj, default=_json_default, allow_nan=True))


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, date):  # datetime and pandas Timestamp too: readouts are by day
        return obj.isoformat()[:10]
    raise TypeError(f"cannot store {type(obj).__name__} in a readout")


def _period(value: Any, role: str) -> tuple[date | None, date | None] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise DataError(f"readout {role} {value!r} must be [first_date, last_date]")
    return (
        parse_date(value[0], f"readout {role} start") if value[0] is not None else None,
        parse_date(value[1], f"readout {role} end") if value[1] is not None else None,
    )


def _compare(exp: Experiment, result: dict, settings: dict) -> tuple[str | None, list[str], dict]:
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


# -- module-level functions other commands call -------------------------------------------------
def calibration_lifts(url: str | os.PathLike | None) -> list[dict]:
    """Every read-out test's pre-registered readouts, one readout.json-format dict per cell.

    Exploratory readouts and cancelled or unfinished tests are left out. Each
    dict keeps readout.json's keys (``incremental``, ``incremental_ci``,
    ``lift``, ``lift_ci``, ``confidence``, ``channel``, ``spend_delta``, ...)
    and adds ``experiment``, ``cell`` and ``readout_id``.

    Raises
    ------
    DataError
        If ``url`` names an SQLite file that does not exist.
    """
    with Registry(url, create=False) as reg:
        return reg.calibration_lifts()


def busy_geos(
    url: str | os.PathLike | None,
    start: str | date,
    end: str | date,
    *,
    washout_days: int = WASHOUT_DAYS,
) -> set[str]:
    """Geos that a new test from ``start`` to ``end`` (plus ``washout_days``) cannot treat.

    A geo is busy when a designed, running or read-out test treats it at a
    time overlapping ``[start, end + washout_days]``, counting that test's own
    washout after its end. Pass the result as ``design_experiment(...,
    exclude=...)``.
    """
    with Registry(url, create=False) as reg:
        return reg.busy_geos(start, end, washout_days=washout_days)


def plot_calendar(
    frame: Any, *, ax: Any = None, show: bool = False, title: str = "Geo tests by market"
) -> tuple[Any, Any]:
    """Draw a Gantt-like calendar: one lane per market, one bar per test, washout hatched.

    Parameters
    ----------
    frame : DataFrame
        :meth:`Registry.calendar`'s table.
    ax : matplotlib Axes, optional
    show : bool, default=False
        Call ``plt.show()``.

    Returns
    -------
    (fig, ax)
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.patches import Patch

    if frame.empty:
        raise DataError("the calendar is empty: no tests in the registry for that period")
    geos = sorted(frame["geo"].unique())
    tests = list(dict.fromkeys(frame.sort_values(["start", "experiment"])["experiment"]))
    cmap = plt.get_cmap("tab10" if len(tests) <= 10 else "tab20")
    colour = {t: cmap(i % cmap.N) for i, t in enumerate(tests)}
    if ax is None:
        fig, ax = plt.subplots(figsize=(11, max(2.5, 0.32 * len(geos) + 1.5)))
    else:
        fig = ax.figure
    lane = {g: i for i, g in enumerate(geos)}
    # Tests sharing a geo (an allowed overlap) split its lane so both stay visible.
    multi_cell = (frame.groupby("experiment")["cell"].nunique() > 1).to_dict()
    per_geo = frame.groupby("geo")["experiment"].apply(lambda s: list(dict.fromkeys(s))).to_dict()
    for r in frame.itertuples(index=False):
        slots = per_geo[r.geo]
        h = 0.8 / len(slots)
        y = lane[r.geo] - 0.4 + h * slots.index(r.experiment)
        start = mdates.date2num(pd.Timestamp(r.start))
        width = (r.end - r.start).days + 1
        hatch = "//" if r.status == "designed" else None
        alpha = 0.45 if r.status in ("designed", "cancelled") else 0.9
        ax.broken_barh(
            [(start, width)],
            (y, h),
            facecolors=colour[r.experiment],
            alpha=alpha,
            hatch=hatch,
            edgecolor="black" if r.status != "cancelled" else "grey",
            linewidth=0.4,
            linestyle="--" if r.status == "cancelled" else "-",
        )
        label = r.experiment + (f" / {r.cell}" if multi_cell.get(r.experiment) else "")
        ax.text(start + 0.5, y + h / 2, label, va="center", ha="left", fontsize=7, clip_on=True)
        wash = (r.occupied_until - r.end).days
        if wash > 0 and r.status != "cancelled":  # a cancelled test frees its markets
            ax.broken_barh(
                [(start + width, wash)],
                (y, h),
                facecolors="none",
                hatch="..",
                edgecolor=colour[r.experiment],
                linewidth=0.0,
            )
    ax.set_yticks(range(len(geos)), geos)
    ax.set_ylim(len(geos) - 0.5, -0.5)
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    ax.set_xlabel("date")
    ax.set_ylabel("market (geo)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    status_of = frame.drop_duplicates("experiment").set_index("experiment")["status"]
    handles = [
        Patch(
            facecolor=colour[t],
            edgecolor="black",
            hatch="//" if status_of[t] == "designed" else None,
            label=f"{t} ({status_of[t]})",
        )
        for t in tests
    ]
    handles.append(
        Patch(facecolor="none", edgecolor="grey", hatch="..", label="washout (carryover)")
    )
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
    )
    if show:
        plt.show()
    return fig, ax
