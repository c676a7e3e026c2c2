"""Self-contained HTML reports: one look for design, readout, curves and plan.

A report renders result objects through an autoescaped Jinja2 template and
never recomputes a statistic. Figures are inlined as PNG data URIs; a figure
that fails to draw is replaced by a visible message rather than dropped.
"""

from __future__ import annotations

import base64
import io
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


@dataclass
class Section:
    """One block of a report: a heading, optional prose, tables and figures."""

    title: str
    text: str = ""
    html: list[Markup] = field(default_factory=list)

    def table(self, frame: pd.DataFrame, *, caption: str = "", index: bool = False) -> Section:
        """Add a table; format numbers before passing them (strings are shown as given)."""
        html = frame.to_html(index=index, border=0, classes="tbl", escape=True, na_rep="—")
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
