"""Output files written all or nothing: a failed command leaves no partial file behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from causal.errors import DataError


def _default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def _finite(obj: Any) -> Any:
    """JSON has no NaN: non-finite floats become null rather than invalid JSON."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_finite(obj), indent=2, default=_default, allow_nan=False) + "\n"


class OutputSet:
    """Files staged in temporary names and moved into place only when the command succeeds."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def path(self, target: str | Path) -> Path:
        """A temporary path to write ``target``'s content to."""
        target = Path(target)
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.exists():
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DataError(f"{target}: cannot create folder {parent} ({exc.strerror})") from exc
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=parent)
        os.close(fd)
        self._staged.append((Path(tmp), target))
        return Path(tmp)

    def write_text(self, target: str | Path, text: str) -> None:
        self.path(target).write_text(text, encoding="utf-8")

    def write_json(self, target: str | Path, obj: Any) -> None:
        self.write_text(target, dumps(obj))

    def commit(self) -> None:
        # mkstemp creates 0600 files; give outputs the ordinary permissions the umask allows.
        umask = os.umask(0)
        os.umask(umask)
        for tmp, target in self._staged:
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, target)
        self._staged.clear()

    def discard(self) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()


@contextmanager
def outputs() -> Iterator[OutputSet]:
    """Stage outputs; move them into place on success, delete them on any failure."""
    staged = OutputSet()
    try:
        yield staged
    except BaseException:
        staged.discard()
        raise
    staged.commit()
