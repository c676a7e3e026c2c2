"""Self-contained HTML reports: one look for design, readout, curves and plan.

A report renders result objects through an autoescaped Jinja2 template and
never recomputes a statistic. Figures are inlined as PNG data URIs; a figure
that fails to draw is replaced by a visible message rather than dropped.
"""

from __future__ import annotations

import base64
import io
import math
import re
import traceback
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt
import pandas as pd
from markupsafe import Markup

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("allocation.cli", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


def fmt_fixed(x: float | None, digits: int = 0) -> str:
    """A report's figure with fixed decimals: ``12345.6`` -> ``12,346``; None or NaN -> an em dash.

    (``causal.summary.fmt_number`` chooses the significant digits itself, for text summaries.)
    """
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    return f"{x:,.{digits}f}"


def fmt_pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    return f"{100 * x:.{digits}f}%"


#: Currency of the money being formatted; None: not given (amounts are "currency units").
_CURRENCY: ContextVar[str | None] = ContextVar("liftlab_currency", default=None)
DEFAULT_MONEY_UNIT = "currency units"
_UNSET = object()


def check_currency(value: str | None) -> str | None:
    """A currency as the reports show it: a 3-letter code (upper-cased) or a short symbol.

    ``"eur"`` -> ``"EUR"``; ``"€"``, ``"$"``, ``"R$"`` are kept. Anything else
    (a word, digits, spaces, markup) raises :class:`ValueError` naming the value.
    """
    if value is None:
        return None
    text = value.strip()
    if len(text) == 3 and text.isascii() and text.isalpha():
        return text.upper()
    # A symbol: at most three characters, one of them a currency sign (Unicode category Sc).
    if (
        1 <= len(text) <= 3
        and any(unicodedata.category(ch) == "Sc" for ch in text)
        and all(ch.isalpha() or unicodedata.category(ch) == "Sc" for ch in text)
    ):
        return text
    raise ValueError(
        f"'{value}' is not a 3-letter currency code (EUR, USD) or a currency symbol (€, $)"
    )


@contextmanager
def currency_context(currency: str | None) -> Iterator[str | None]:
    """Format every amount inside the block in ``currency`` (validated by :func:`check_currency`)."""
    token = _CURRENCY.set(check_currency(currency))
    try:
        yield _CURRENCY.get()
    finally:
        _CURRENCY.reset(token)


def money_unit() -> str:
    """The currency being formatted, or ``"currency units"`` when none was given."""
    return _CURRENCY.get() or DEFAULT_MONEY_UNIT


def money_label(label: str) -> str:
    """A money column's header: ``"investment"`` -> ``"investment (currency units)"`` when no
    currency is set (the cells then carry none); unchanged when the cells carry the currency."""
    return label if _CURRENCY.get() else f"{label} ({DEFAULT_MONEY_UNIT})"


def fmt_money(
    x: float | None, digits: int = 2, currency: str | None | object = _UNSET, *, unit: bool = False
) -> str:
    """An amount: ``EUR 1,234.50`` or ``€1,234.50`` in the current currency (:func:`currency_context`,
    or ``currency``); with none set, ``1,234.50`` (``1,234.50 currency units`` with ``unit=True``,
    for a figure shown without a labelled column)."""
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    cur = _CURRENCY.get() if currency is _UNSET else check_currency(currency)  # type: ignore[arg-type]
    body = f"{x:,.{digits}f}"
    if cur is None:
        return f"{body} {DEFAULT_MONEY_UNIT}" if unit else body
    sign, body = ("-", body[1:]) if body.startswith("-") else ("", body)
    return f"{sign}{cur} {body}" if cur.isalpha() else f"{sign}{cur}{body}"


def fmt_auto(x: float | None, sig: int = 3) -> str:
    """A readable number at any scale, never in e-notation: ``90720.4`` -> ``90,720``,
    ``3.14159`` -> ``3.14``, ``0.0012345`` -> ``0.00123``."""
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    if x == 0:
        return "0"
    if x in (float("inf"), float("-inf")):
        return "∞" if x > 0 else "-∞"
    magnitude = math.floor(math.log10(abs(x)))
    digits = max(sig - 1 - magnitude, 0)
    return f"{x:,.{digits}f}"


def period_name(freq: str) -> str:
    """``"D"`` -> ``"day"``, ``"W-SUN"`` -> ``"week"``, ``"MS"`` -> ``"month"``: a panel frequency's period."""
    names = {
        "D": "day",
        "B": "business day",
        "W": "week",
        "M": "month",
        "Q": "quarter",
        "Y": "year",
        "A": "year",
        "H": "hour",
    }
    key = freq.strip().upper()[:1] if freq else ""
    if key not in names:
        raise ValueError(f"no period name for the frequency '{freq}'")
    return names[key]


def per_period(freq: str) -> str:
    """``"W-SUN"`` -> ``"per week"``."""
    return "per " + period_name(freq)


def per_spend_label(outcome: str, per: float = 1000, currency: str | None | object = _UNSET) -> str:
    """The unit of an outcome-per-spend ratio, said in words: ``"signups per 1,000 spent"``
    (``"signups per EUR 1,000 spent"`` with a currency); never "ROAS"."""
    return f"{outcome} per {fmt_money(per, 0, currency)} spent"


def fmt_per_spend(
    ratio: float | None,
    outcome: str,
    per: float = 1000,
    sig: int = 3,
    currency: str | None | object = _UNSET,
) -> str:
    """An outcome-per-unit-of-spend ratio scaled to ``per`` and labelled:
    ``0.0123`` -> ``"12.3 signups per 1,000 spent"``."""
    if ratio is None or (isinstance(ratio, float) and ratio != ratio):
        return "—"
    return f"{fmt_auto(ratio * per, sig)} {per_spend_label(outcome, per, currency)}"


_ENV.filters.update(num=fmt_fixed, pct=fmt_pct, money=fmt_money, auto=fmt_auto)


_NUMERIC = re.compile(
    r"^[\s+\-−–—]*[\d.,]+(e[+-]?\d+)?\s*%?$|^\d{4}-\d{2}-\d{2}$|^—$|^$", re.IGNORECASE
)


def grid_edge_warning(identification: dict) -> str | None:
    """The warning for channels whose curvature sits at the edge of the structural model's shape grid
    (curves.json ``identification.<channel>.half_saturation_at_grid_edge``), or None."""
    edges = {
        ch: v.get("half_saturation_at_grid_edge")
        for ch, v in sorted(identification.items())
        if v.get("half_saturation_at_grid_edge")
    }
    if not edges:
        return None
    return (
        "The curvature of "
        + ", ".join(f"{ch} ({e['share']:.0%} of draws)" for ch, e in edges.items())
        + " sits at the edge of the model's shape grid: its marginal return is not pinned down by "
        "the panel, and plans that move its spend follow that return; a heavy-up or half-cut test "
        "measures it (liftlab propose-tests)."
    )


def _is_numeric_column(values: Sequence[str]) -> bool:
    # Numbers (ranges of them, "1,234 – 5,678"; with a standard error, "3.5% ± 0.8%"; amounts in the
    # current currency, "EUR 1,234") align right and never wrap; words align left.
    cur = _CURRENCY.get()

    def bare(part: str) -> str:
        part = part.strip()
        if cur and cur in part:
            part = part.replace(cur, "", 1)
        return part

    parts = [bare(p) for v in values for r in v.split(" – ") for p in r.split(" ± ")]
    return all(_NUMERIC.match(p) for p in parts) and any(v != "—" for v in values)


def _table_html(frame: pd.DataFrame) -> str:
    """An HTML table whose text columns align left and numeric columns right (numbers never wrap)."""
    esc = jinja2.utils.markupsafe.escape
    cells = [
        [("—" if v is None or (isinstance(v, float) and v != v) else str(v)) for v in frame[c]]
        for c in frame.columns
    ]
    numeric = [_is_numeric_column(col) for col in cells]
    head = "".join(
        f"<th class='{'n' if n else 't'}'>{esc(str(c))}</th>"
        for c, n in zip(frame.columns, numeric)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{'n' if n else 't'}'>{esc(col[i])}</td>" for col, n in zip(cells, numeric)
        )
        + "</tr>"
        for i in range(len(frame))
    )
    return f"<div class='tblwrap'><table class='tbl'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


@dataclass
class Section:
    """One block of a report: a heading, optional prose, tables and figures."""

    title: str
    text: str = ""
    html: list[Markup] = field(default_factory=list)

    def table(
        self,
        frame: pd.DataFrame,
        *,
        caption: str = "",
        index: bool = False,
        collapsed: bool = False,
    ) -> Section:
        """Add a table; format numbers before passing them (strings are shown as given).

        ``collapsed``: a long table folded under its caption (a click opens it), so it does
        not push the rest of the report out of sight.
        """
        html = _table_html(frame.reset_index() if index else frame)
        esc = jinja2.utils.markupsafe.escape
        if collapsed:
            label = esc(caption or f"{len(frame)} rows")
            html = f"<details><summary class='caption'>{label} ({len(frame)} rows)</summary>{html}</details>"
        elif caption:
            html = f"<p class='caption'>{esc(caption)}</p>" + html
        self.html.append(Markup(html))
        return self

    def figure(
        self,
        draw: Callable[[], plt.Figure],
        *,
        caption: str = "",
        png_path: str | Path | None = None,
    ) -> Section:
        """Add a figure drawn by ``draw()``; a failure shows as a visible notice."""
        try:
            fig = draw()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
            if png_path is not None:
                fig.savefig(png_path, format="png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            img = f"<figure><img src='{uri}' alt='{jinja2.utils.markupsafe.escape(caption or self.title)}'>"
            if caption:
                img += f"<figcaption>{jinja2.utils.markupsafe.escape(caption)}</figcaption>"
            self.html.append(Markup(img + "</figure>"))
        except Exception as exc:  # a broken figure must be visible, never silently dropped
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.html.append(
                Markup(
                    f"<p class='figfail'>Figure could not be drawn: {jinja2.utils.markupsafe.escape(detail)}</p>"
                )
            )
        return self

    def paragraph(self, text: str) -> Section:
        self.html.append(Markup("<p>") + text + Markup("</p>"))
        return self


@dataclass
class Report:
    """A report: title, warnings, headline figures (label, value), sections and numbered notes.

    ``warnings`` (or :meth:`warn`) are shown first, in a box above the headline:
    what a reader must know before trusting a number (an untested channel, a
    p-value and an interval that disagree...). The callers decide the texts; no
    warnings, no box. ``currency`` (a code or symbol, see :func:`check_currency`)
    is named in the header and used by the template's ``money`` filter; amounts
    formatted before :meth:`render` take it from :func:`currency_context`.
    """

    title: str
    subtitle: str = ""
    headline: Sequence[tuple[str, str]] = ()
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    currency: str | None = None

    def __post_init__(self) -> None:
        self.currency = check_currency(self.currency)
        self.warnings = list(self.warnings)

    def warn(self, text: str) -> Report:
        """Add a warning to the box at the top (shown in the order added; repeats shown once)."""
        if text and text not in self.warnings:
            self.warnings.append(text)
        return self

    def section(self, title: str, text: str = "") -> Section:
        s = Section(title, text)
        self.sections.append(s)
        return s

    def render(self) -> str:
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        # The header names the currency only when the caller says the report shows money in it.
        with currency_context(self.currency or _CURRENCY.get()):
            return _ENV.get_template("report.html").render(
                report=self, created=created, currency=self.currency
            )
