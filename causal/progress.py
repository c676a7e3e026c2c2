"""Progress bars for long steps: shown on a terminal, silent when piped, in CI or in tests.

One wrapper around tqdm so that every long loop (design search, model fit,
backtest, demo) reports the same way. tqdm's ``disable=None`` already hides
the bar when stderr is not a terminal; ``CI`` or ``LIFTLAB_PROGRESS=0`` in the
environment hide it on a terminal too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def enabled() -> bool:
    """Whether progress bars are drawn: stderr is a terminal and neither CI nor LIFTLAB_PROGRESS=0 is set."""
    if os.environ.get("LIFTLAB_PROGRESS", "").strip() == "0" or os.environ.get("CI"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(
    iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """Iterate over ``iterable`` with a progress bar named ``desc`` (on stderr, when :func:`enabled`)."""
    if not enabled():
        yield from iterable
        return
    bar = tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        yield from bar
    finally:
        bar.close()


class Steps:
    """A bar over named steps of a workflow (``with Steps(["fit", "plan"], desc="demo") as s: s.next("fit")``)."""

    def __init__(self, names: list[str], *, desc: str) -> None:
        self.names = list(names)
        self.desc = desc
        self._bar = None

    def __enter__(self) -> Steps:
        if enabled():
            self._bar = tqdm(
                total=len(self.names),
                desc=self.desc,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
                bar_format="{desc}: {n}/{total} {postfix} [{elapsed}]",
            )
        return self

    def next(self, name: str) -> None:
        """Mark the start of step ``name`` (the previous one is done)."""
        if self._bar is not None:
            if self._bar.postfix:
                self._bar.update(1)
            self._bar.set_postfix_str(name)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
