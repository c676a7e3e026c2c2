"""The experiment registry: a calendar of geo tests, their conflicts, lifecycle and readouts.

Teams run many geo tests a quarter. The registry keeps them in one database
(the same one as the allocation audit trail; see :mod:`experiments.store`) and
enforces three rules:

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

One job per module:

========================  ==========================================================
:mod:`.schema`            the tables and the constants of the rules
:mod:`.records`           :class:`RegisteredExperiment`, :class:`ReadoutRecord`,
                          :class:`Conflict` and the registry's errors
:mod:`.validation`        checks at the edge, and design.json parsing
                          (:func:`design_defaults`)
:mod:`.queries`           statements run inside one transaction
:mod:`.preregistration`   a readout compared with the registered settings
:mod:`.service`           :class:`Registry`: the lifecycle, conflict rule and readouts
:mod:`.text`              what ``summary()`` prints
:mod:`.plotting`          the calendar chart and readout intervals
========================  ==========================================================

The washout convention follows the carryover argument of Vaver & Koehler
(2011), "Measuring Ad Effectiveness Using Geo Experiments", Google Inc.: a
geo's response to a spend change persists after the change ends, so a second
test in the same geos must wait until that persistence has decayed.
"""

from experiments.registry.plotting import plot_calendar, plot_readouts
from experiments.registry.records import (
    Conflict,
    ConflictError,
    ControlContaminationWarning,
    ReadoutRecord,
    RegisteredExperiment,
)
from experiments.registry.schema import (
    DEFAULT_CONFIDENCE,
    DEFAULT_ESTIMATOR,
    OCCUPYING,
    STATUSES,
    WASHOUT_DAYS,
    events_table,
    experiments_table,
    geos_table,
    meta,
    overlaps_table,
    readouts_table,
)
from experiments.registry.service import Registry, busy_geos, calibration_lifts
from experiments.registry.validation import design_defaults, parse_date

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_ESTIMATOR",
    "OCCUPYING",
    "STATUSES",
    "WASHOUT_DAYS",
    "Conflict",
    "ConflictError",
    "ControlContaminationWarning",
    "ReadoutRecord",
    "RegisteredExperiment",
    "Registry",
    "busy_geos",
    "calibration_lifts",
    "design_defaults",
    "events_table",
    "experiments_table",
    "geos_table",
    "meta",
    "overlaps_table",
    "parse_date",
    "plot_calendar",
    "plot_readouts",
    "readouts_table",
]
