"""Python values as JSON: numpy numbers and arrays, dates, and no NaN (JSON has none).

One conversion for every file liftlab writes (``allocation/cli/outputs.py``) and for the
workflows that hand a result on as the file would hold it (``allocation/workflows/demo.py``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)``: numpy integers, floats and arrays; anything with ``isoformat``."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def finite(obj: Any) -> Any:
    """JSON has no NaN: non-finite floats become null rather than invalid JSON."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def to_json(obj: Any, *, indent: int | None = 2) -> str:
    """Indented JSON text of ``obj``, without NaN."""
    return json.dumps(finite(obj), indent=indent, default=json_default, allow_nan=False)


def as_json_value(obj: Any) -> Any:
    """``obj`` as a JSON file would give it back: plain dicts, lists, floats, strings and None."""
    return json.loads(to_json(obj, indent=None))
