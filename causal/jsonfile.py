"""The one JSON reader of liftlab: strict, with one-line errors that name the file, line and column.

Every JSON input of liftlab (curves, constraints, launch calendars, plans,
designs, lifts) is read here. Python's ``json`` module accepts three things
that are not JSON and would each change a result without a word: ``NaN``,
``Infinity`` and ``-Infinity`` (a lift of ``Infinity`` gives curves with
``beta: null``), and a key given twice in one object (the last one silently
wins). All three are refused here, naming where they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from causal.errors import DataError


class _StrictError(ValueError):
    """A value that is valid for Python's parser but not JSON (raised inside the parser's hooks)."""


def _no_constant(name: str) -> Any:
    raise _StrictError(f"{name} is not a JSON number (write a finite number or null)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _StrictError(f"key '{key}' appears twice in one object")
        out[key] = value
    return out


def _position(text: str, needle: str) -> tuple[int, int]:
    """Line and column (1-based) of the first ``needle`` in ``text``, or (0, 0)."""
    at = text.find(needle)
    if at < 0:
        return 0, 0
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def loads(text: str, source: str = "<JSON>") -> Any:
    """Parse ``text`` strictly (no NaN or Infinity, no repeated key); errors name ``source``, line and column."""
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except _StrictError as exc:
        msg = str(exc)
        needle = msg.split(" ", 1)[0] if not msg.startswith("key") else f'"{msg.split(chr(39))[1]}"'
        if msg.startswith("key"):
            # The second occurrence is the one refused.
            first = text.find(needle)
            line, col = _position(text[first + 1 :], needle) if first >= 0 else (0, 0)
            if first >= 0 and line:
                line += text.count("\n", 0, first + 1)
                if line == text.count("\n", 0, first) + 1:
                    col += first + 1 - (text.rfind("\n", 0, first) + 1)
        else:
            line, col = _position(text, needle)
        where = f"line {line}, column {col}: " if line else ""
        raise DataError(f"{source}: not valid JSON ({where}{msg})") from None
    except RecursionError:
        raise DataError(f"{source}: not valid JSON (nested too deeply)") from None


def read_json(path: str | Path, what: str) -> Any:
    """The parsed content of ``path``, read strictly (see :func:`loads`).

    A missing, unreadable or malformed file is a :class:`DataError` naming the
    file, ``what`` it should have been, and the line and column at fault.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None
    return loads(text, str(path))
