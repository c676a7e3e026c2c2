"""Progress bars for long steps: shown on a terminal, silent when piped, in CI or in tests.

One rule for when a bar is drawn (:func:`enabled`: stderr is a terminal and
neither ``CI`` nor ``LIFTLAB_PROGRESS=0`` is set), used by the design search,
and one wrapper around tqdm (:func:`progress`), used by the backtest.
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
