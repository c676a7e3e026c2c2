"""Output files written all or nothing: a failed command leaves no partial file behind.

Every file a command writes goes through :func:`outputs`: it is written to a
temporary ``.NAME.XXXX.part`` file beside its target and moved into place with
``os.replace`` (atomic on POSIX) only when the whole command has succeeded; on
any failure, including a target that cannot be written at all (an empty name,
a path under a regular file or under ``/proc``, a name too long), every
temporary file is deleted and the error is one line naming the target.
Database URLs are masked in everything written as text, so a password given
on the command line never reaches a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from allocation.json_values import to_json
from causal.errors import DataError
from experiments.store import mask_url


def dumps(obj: Any) -> str:
    """Indented JSON without NaN, with any database password masked."""
    return mask_url(to_json(obj)) + "\n"


def _os_error(target: Path, exc: OSError) -> DataError:
    return DataError(f"{target}: cannot write ({exc.strerror or exc})")


class OutputSet:
    """Files staged in temporary names and moved into place only when the command succeeds."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def path(self, target: str | Path) -> Path:
        """A temporary path to write ``target``'s content to."""
        if str(target).strip() == "":
            raise DataError("an output file name is empty")
        target = Path(target)
        parent = target.parent if str(target.parent) else Path(".")
        try:
            if target.is_dir():
                raise DataError(f"{target}: is a folder; give a file name")
            if parent.exists() and not parent.is_dir():
                raise DataError(f"{target}: {parent} is a file, not a folder")
            if not parent.exists():
                try:
                    parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise DataError(
                        f"{target}: cannot create folder {parent} ({exc.strerror or exc})"
                    ) from None
            # A short temporary name: the target's own may be at the file system's limit.
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".part", dir=parent)
        except OSError as exc:
            raise _os_error(target, exc) from None
        os.close(fd)
        self._staged.append((Path(tmp), target))
        return Path(tmp)

    def write_text(self, target: str | Path, text: str) -> None:
        """Stage ``text`` (database passwords masked) as ``target``."""
        tmp = self.path(target)
        try:
            tmp.write_text(mask_url(text), encoding="utf-8")
        except OSError as exc:
            raise _os_error(Path(target), exc) from None

    def write_json(self, target: str | Path, obj: Any) -> None:
        self.write_text(target, dumps(obj))

    def write_bytes(self, target: str | Path, data: bytes) -> None:
        tmp = self.path(target)
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise _os_error(Path(target), exc) from None

    def commit(self) -> None:
        """Move every staged file into place; a failure deletes the temporary files left."""
        # Every target is checked before the first one moves, so a doomed commit replaces nothing.
        for _, target in self._staged:
            if target.is_dir():
                self.discard()
                raise DataError(f"{target}: is a folder; give a file name")
        # mkstemp creates 0600 files; give outputs the ordinary permissions the umask allows.
        umask = os.umask(0)
        os.umask(umask)
        try:
            for tmp, target in self._staged:
                os.chmod(tmp, 0o666 & ~umask)
                os.replace(tmp, target)
        except OSError as exc:
            self.discard()
            raise _os_error(target, exc) from None
        self._staged.clear()

    def discard(self) -> None:
        for tmp, _ in self._staged:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
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
