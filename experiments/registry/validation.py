"""Validation at the registry's edge: names, geo lists, dates, estimators, statuses and design.json.

Everything a caller passes to :class:`~experiments.registry.Registry` is checked
here once and converted to one internal form (tuples of geo ids, dates); the
service and the queries then trust it. A wrong value is a
:class:`~causal.errors.DataError` or :class:`~causal.errors.ConfigError` naming
the key, geo or date at fault.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from causal.errors import ConfigError, DataError
from causal.panel import parse_date as parse_panel_date
from experiments.registry.schema import STATUSES

__all__ = [
    "check_cells",
    "check_estimator",
    "check_name",
    "check_statuses",
    "design_defaults",
    "jsonable",
    "parse_date",
]


def parse_date(value: str | date | datetime | None, role: str) -> date | None:
    """``YYYY-MM-DD`` (or a date) -> date, by the one date rule of :func:`causal.panel.parse_date`.

    A time of day or a UTC offset is refused, naming ``role``, as everywhere else.
    """
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    return parse_panel_date(value, role).date()


def check_name(name: str) -> str:
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


def check_cells(
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


def check_estimator(name: str) -> str:
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


def check_statuses(status: str | Sequence[str] | None) -> list[str]:
    if status is None:
        return []
    statuses = [status] if isinstance(status, str) else list(status)
    for s in statuses:
        if s not in STATUSES:
            raise ConfigError(f"status '{s}' is unknown (choose from {', '.join(STATUSES)})")
    return statuses


def jsonable(obj: Any) -> Any:
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
