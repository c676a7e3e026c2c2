"""Reading a JSON input file with one-line errors that name the file (curves, constraints, calendars, plans)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from causal.errors import DataError


def read_json(path: str | Path, what: str) -> Any:
    """The parsed content of ``path``; a missing, unreadable or malformed file is a :class:`DataError`
    naming the file, ``what`` it should have been, and the line and column of a syntax error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
