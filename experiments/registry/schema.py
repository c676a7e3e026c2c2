"""The registry's tables and the constants of its rules.

Five tables on the shared store (:mod:`experiments.store`): one row per test,
one per treated geo, one per accepted overlap, one per readout and one per
event of a test's history. Dates are compared in Python, not SQL, so that
SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_ESTIMATOR",
    "LOCK",
    "OCCUPYING",
    "STATUSES",
    "WASHOUT_DAYS",
    "WHAT",
    "events_table",
    "experiments_table",
    "geos_table",
    "meta",
    "overlaps_table",
    "readouts_table",
]

#: Days after a test's end during which its treated geos stay occupied (carryover).
WASHOUT_DAYS = 14
STATUSES = ("designed", "running", "read_out", "cancelled")
#: Statuses whose tests occupy their geos (window plus washout).
OCCUPYING = ("designed", "running", "read_out")
DEFAULT_ESTIMATOR = "sc"
DEFAULT_CONFIDENCE = 0.9
#: The writer-lock row of :data:`experiments.store.locks` every registry writer takes.
LOCK = "registry"
#: What the database is called in messages.
WHAT = "registry database"

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

# Overlaps a test's owner accepted (allow_overlap), per other test.
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
