"""The registry service: register, start, read out and cancel geo tests, and list them.

:class:`Registry` runs every rule of :mod:`experiments.registry` (no
contamination, pre-registration, lifecycle) inside one transaction of the shared
store (:mod:`experiments.store`), writers holding the registry's lock so that
a conflict check and the insert that follows it are atomic across processes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from causal.errors import ConfigError, DataError
from experiments import store
from experiments.registry.preregistration import compare
from experiments.registry.queries import (
    add_event,
    conflict_error,
    find_conflicts,
    find_row,
    geos_of,
    load_experiment,
    now,
    record_overlaps,
    set_status,
    warn_contaminated_controls,
)
from experiments.registry.records import (
    CALENDAR_COLUMNS,
    Conflict,
    ReadoutRecord,
    RegisteredExperiment,
    require_status,
)
from experiments.registry.schema import (
    DEFAULT_CONFIDENCE,
    DEFAULT_ESTIMATOR,
    LOCK,
    WASHOUT_DAYS,
    WHAT,
    experiments_table,
    geos_table,
    meta,
    overlaps_table,
    readouts_table,
)
from experiments.registry.validation import (
    check_cells,
    check_estimator,
    check_name,
    check_statuses,
    design_defaults,
    jsonable,
    parse_date,
)

__all__ = ["Registry", "busy_geos", "calibration_lifts"]


class Registry:
    """The experiment registry in a database (an SQLite file or any SQLAlchemy URL).

    Parameters
    ----------
    db : str or path
        A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``) or
        an SQLite file path. There is no default database in the library: the
        command line's default (``$LIFTLAB_DB``, else ``liftlab.db`` in the
        current folder) is applied by the ``--db`` option.

        .. versionchanged:: issue 19
           Was optional, defaulting to ``$LIFTLAB_DB`` or ``./liftlab.db``.
    create : bool, default=True
        Create the SQLite file and the tables if missing. With False, a
        missing SQLite file is an error (reading a registry that is not there
        is more likely a typo than an empty calendar).
    """

    def __init__(self, db: str | os.PathLike, *, create: bool = True) -> None:
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
    ) -> RegisteredExperiment:
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
        name = check_name(name)
        from_design = design_defaults(design) if design else {}
        cells = cells if cells is not None else from_design.get("cells")
        if cells is None:
            raise DataError(
                f"experiment '{name}': no treated geos (give cells/treated or a design with 'treated')"
            )
        control = control if control is not None else from_design.get("control")
        cells_, control_ = check_cells(cells, control)
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
        estimator_ = check_estimator(estimator or from_design.get("estimator") or DEFAULT_ESTIMATOR)
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
            conflicts = find_conflicts(conn, treated, start_, end_, washout_days)
            if conflicts and not allow_overlap:
                raise conflict_error(f"cannot register '{name}'", conflicts)
            stamp = now()
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
                    created_at=stamp,
                    updated_at=stamp,
                )
            ).inserted_primary_key[0]
            conn.execute(
                geos_table.insert(),
                [
                    {"experiment_id": exp_id, "geo": g, "cell": cell, "position": i}
                    for i, (cell, g) in enumerate((c, g) for c, gs in cells_.items() for g in gs)
                ],
            )
            record_overlaps(conn, exp_id, conflicts, "add", reason)
            add_event(
                conn,
                exp_id,
                "add",
                f"registered {start_} to {end_}, cells "
                + "; ".join(f"{c}: {','.join(g)}" for c, g in cells_.items()),
            )
            if control_ is not None:
                warn_contaminated_controls(conn, name, exp_id, set(control_), start_, end_)
        return self.get(name)

    def start(
        self, name: str, *, allow_overlap: bool = False, reason: str = ""
    ) -> RegisteredExperiment:
        """``designed -> running``, re-checking conflicts the test's owner has not accepted.

        A test registered later with ``allow_overlap`` accepted the overlap for
        itself only; starting the earlier test then needs this owner's
        ``allow_overlap`` too.
        """
        with store.transaction(self.engine, write=True, lock=LOCK, what=WHAT) as conn:
            row = find_row(conn, name)
            require_status(row, "start", ("designed",))
            treated = {g for g, _ in geos_of(conn, row.id)}
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
                for c in find_conflicts(
                    conn, treated, row.start_date, row.end_date, row.washout_days, exclude_id=row.id
                )
                if c.other not in accepted
            ]
            if conflicts and not allow_overlap:
                raise conflict_error(f"cannot start '{name}'", conflicts)
            record_overlaps(conn, row.id, conflicts, "start", reason)
            set_status(conn, row.id, "running", "start", "started")
        return self.get(name)

    def cancel(self, name: str, *, reason: str = "") -> RegisteredExperiment:
        """``designed`` or ``running -> cancelled``; the test's geos are free again."""
        with store.transaction(self.engine, write=True, lock=LOCK, what=WHAT) as conn:
            row = find_row(conn, name)
            require_status(row, "cancel", ("designed", "running"))
            set_status(conn, row.id, "cancelled", "cancel", reason or "cancelled")
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
        result = jsonable(dict(result))
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
            row = find_row(conn, name)
            require_status(row, "read out", ("running", "read_out"))
            exp = load_experiment(conn, row)
            cell, deviations, used = compare(exp, result, dict(settings or {}))
            if cell is not None and not deviations and cell in exp.confirmatory():
                first = exp.confirmatory()[cell]
                deviations.append(
                    f"repeat of pre-registered readout #{first.id} of cell {cell} (only the first counts)"
                )
            exploratory = bool(deviations)
            stamp = now()
            rid = conn.execute(
                readouts_table.insert().values(
                    experiment_id=row.id,
                    cell=cell,
                    exploratory=exploratory,
                    deviations=json.dumps(deviations),
                    settings=json.dumps(used, default=str),
                    result=json.dumps(result),
                    created_at=stamp,
                )
            ).inserted_primary_key[0]
            add_event(
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
                set_status(
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
        selection_check: bool | None = None,
    ) -> list[ReadoutRecord]:
        """Read out a test's cells on ``panel`` with its pre-registered settings and store the results.

        Returns the stored records; :meth:`run_readout_results` takes the same arguments and also
        returns each cell's :class:`experiments.readout_result.Readout` (for its report and plots).

        ``selection_check`` (default: whether the test was registered from a design or a
        proposal, i.e. a search picked its markets) widens the interval of a treated set whose
        history is calmer than random sets of its size (:mod:`experiments.readout_selection`).

        Any setting given here that differs from the pre-registration makes
        the readout exploratory. With no pre-registered control, the control
        is every panel geo outside this test and outside every other
        non-cancelled test whose occupied window overlaps this test's window
        (their geos are contaminated donors).

        Uses :func:`experiments.readout.read_out`.
        """
        pairs = self.run_readout_results(
            name,
            panel,
            cell=cell,
            estimator=estimator,
            confidence=confidence,
            pre_period=pre_period,
            control=control,
            seed=seed,
            selection_check=selection_check,
        )
        return [record for record, _ in pairs]

    def run_readout_results(
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
        selection_check: bool | None = None,
    ) -> list[tuple[ReadoutRecord, Any]]:
        """:meth:`run_readout`, returning ``(record, readout)`` per cell: the stored record and the
        :class:`experiments.readout_result.Readout` it was made from."""
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
        if selection_check is None:
            selection_check = exp.design is not None
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
                selection_check=selection_check,
            )
            computed.append(res)
        pairs = []
        for res in computed:
            settings = {"seed": used_seed, "outcome": panel.y}
            if control_rule:
                settings["control_rule"] = control_rule
            as_dict = res.to_dict() if hasattr(res, "to_dict") else dict(res)
            pairs.append((self.record_readout(name, as_dict, settings=settings), res))
        return pairs

    # -- readers ---------------------------------------------------------------------------------
    def get(self, name: str) -> RegisteredExperiment:
        """The experiment called ``name``, with its readouts and history."""
        with store.transaction(self.engine, what=WHAT) as conn:
            return load_experiment(conn, find_row(conn, name))

    def list(
        self, *, status: str | Sequence[str] | None = None, channel: str | None = None
    ) -> list[RegisteredExperiment]:
        """Registered experiments by start date, optionally of some statuses or one channel."""
        statuses = check_statuses(status)
        with store.transaction(self.engine, what=WHAT) as conn:
            q = sa.select(experiments_table).order_by(
                experiments_table.c.start_date, experiments_table.c.name
            )
            if statuses:
                q = q.where(experiments_table.c.status.in_(statuses))
            if channel:
                q = q.where(experiments_table.c.channel == channel)
            return [load_experiment(conn, row) for row in conn.execute(q).all()]

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
            exclude_id = find_row(conn, exclude).id if exclude else None
            return find_conflicts(
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
                for c in find_conflicts(conn, None, start_, end_, int(washout_days))
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
        frames = [
            exp.calendar()
            for exp in self.list()
            if (exp.status != "cancelled" or include_cancelled)
            and not ((lo and exp.occupied_until < lo) or (hi and exp.start > hi))
        ]
        if not frames:
            return pd.DataFrame(columns=CALENDAR_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    # -- internals -------------------------------------------------------------------------------
    def _busy_except(self, exp: RegisteredExperiment) -> set[str]:
        with store.transaction(self.engine, what=WHAT) as conn:
            row = find_row(conn, exp.name)
            found = find_conflicts(conn, None, exp.start, exp.end, 0, exclude_id=row.id)
        return {g for c in found for g in c.geos}


def calibration_lifts(url: str | os.PathLike) -> list[dict]:
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
    url: str | os.PathLike,
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
