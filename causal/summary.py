"""The one summary type every result's ``summary()`` returns, and the number format it uses.

Every result object in liftlab (readouts, designs, calibrations, plans, backtests, proposals)
follows one protocol, modelled on statsmodels' results:

* ``summary()`` returns a :class:`Summary`: it prints as plain text, renders as HTML in a notebook
  and keeps its tables for code that wants them;
* ``to_dict()`` returns plain JSON-ready values;
* ``plot(ax=None)`` draws on the given axes (or a new figure) and returns ``(fig, ax)``; it never
  calls ``plt.show()``;
* ``conf_int(confidence=None)`` gives intervals at the fitted level unless another is asked for.

Numbers in a summary are written for a reader (:func:`fmt_number`): ``90,720`` and ``0.0123``,
never ``9.072e+04``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


def fmt_number(x: Any, digits: int = 3) -> str:
    """A number as a reader writes it: thousands separators, no exponent for everyday magnitudes.

    >>> fmt_number(90720.4)
    '90,720'
    >>> fmt_number(0.012345)
    '0.0123'
    >>> fmt_number(-3.5)
    '-3.5'
    >>> fmt_number(None)
    '-'
    """
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 999.5:
        return f"{v:,.0f}"
    if a < 1e-6:
        return f"{v:.{digits}g}"
    # `digits` significant digits, trailing zeros dropped: 3.5, 12.3, 999, 0.0123
    decimals = max(digits - 1 - math.floor(math.log10(a)), 0)
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_frame(df: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as text with every number through :func:`fmt_number`."""
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_numeric_dtype(shown[col]) and not pd.api.types.is_bool_dtype(shown[col]):
            shown[col] = [fmt_number(v, digits) for v in shown[col]]
    return shown.to_string()


@dataclass
class Summary:
    """A printable summary: plain text, HTML in notebooks, and the tables it was built from.

    Parameters
    ----------
    text : str
        What ``print(result.summary())`` shows.
    tables : mapping of str to DataFrame, optional
        The tables behind the text, for code (``summary.tables["channels"]``).

    Examples
    --------
    >>> s = Summary("Readout: +1,234 signups")
    >>> print(s)
    Readout: +1,234 signups
    >>> "1,234" in s._repr_html_()
    True
    """

    text: str
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"

    def __contains__(self, item: str) -> bool:
        return item in self.text

    def splitlines(self) -> list[str]:
        return self.text.splitlines()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tables": {k: v.to_dict(orient="split") for k, v in self.tables.items()},
        }
