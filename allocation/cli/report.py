"""Self-contained HTML reports: one look for design, readout, curves and plan.

A report renders result objects through an autoescaped Jinja2 template and
never recomputes a statistic. Figures are inlined as PNG data URIs; a figure
that fails to draw is replaced by a visible message rather than dropped.
"""

from __future__ import annotations

import base64
import io
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from markupsafe import Markup  # noqa: E402

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("allocation.cli", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


def fmt_number(x: float | None, digits: int = 0) -> str:
    """``12345.6`` -> ``12,346``; None or NaN -> an em dash."""
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    return f"{x:,.{digits}f}"


def fmt_pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    return f"{100 * x:.{digits}f}%"


def fmt_money(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    return f"{x:,.{digits}f}"


_ENV.filters.update(num=fmt_number, pct=fmt_pct, money=fmt_money)


_NUMERIC = re.compile(r"^[\s+\-−–—]*[\d.,]+(e[+-]?\d+)?\s*%?$|^\d{4}-\d{2}-\d{2}$|^—$|^$", re.IGNORECASE)


def _is_numeric_column(values: Sequence[str]) -> bool:
    # Numbers (and ranges of them, "1,234 – 5,678") align right; words align left.
    return all(_NUMERIC.match(part) for v in values for part in v.split(" – ")) and any(v != "—" for v in values)


def _table_html(frame: pd.DataFrame) -> str:
    """An HTML table whose text columns align left and numeric columns right (numbers never wrap)."""
    esc = jinja2.utils.markupsafe.escape
    cells = [[("—" if v is None or (isinstance(v, float) and v != v) else str(v)) for v in frame[c]]
             for c in frame.columns]
    numeric = [_is_numeric_column(col) for col in cells]
    head = "".join(f"<th class='{'n' if n else 't'}'>{esc(str(c))}</th>" for c, n in zip(frame.columns, numeric))
    body = "".join(
        "<tr>" + "".join(f"<td class='{'n' if n else 't'}'>{esc(col[i])}</td>" for col, n in zip(cells, numeric)) + "</tr>"
        for i in range(len(frame)))
    return f"<div class='tblwrap'><table class='tbl'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


@dataclass
class Section:
    """One block of a report: a heading, optional prose, tables and figures."""

    title: str
    text: str = ""
    html: list[Markup] = field(default_factory=list)

    def table(self, frame: pd.DataFrame, *, caption: str = "", index: bool = False) -> Section:
        """Add a table; format numbers before passing them (strings are shown as given)."""
        html = _table_html(frame.reset_index() if index else frame)
        if caption:
            html = f"<p class='caption'>{jinja2.utils.markupsafe.escape(caption)}</p>" + html
        self.html.append(Markup(html))
        return self

    def figure(self, draw: Callable[[], plt.Figure], *, caption: str = "", png_path: str | Path | None = None) -> Section:
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
            self.html.append(Markup(f"<p class='figfail'>Figure could not be drawn: {jinja2.utils.markupsafe.escape(detail)}</p>"))
        return self

    def paragraph(self, text: str) -> Section:
        self.html.append(Markup("<p>") + text + Markup("</p>"))
        return self


@dataclass
class Report:
    """A report: title, headline figures (label, value), sections and numbered notes."""

    title: str
    subtitle: str = ""
    headline: Sequence[tuple[str, str]] = ()
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def section(self, title: str, text: str = "") -> Section:
        s = Section(title, text)
        self.sections.append(s)
        return s

    def render(self) -> str:
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return _ENV.get_template("report.html").render(report=self, created=created)
