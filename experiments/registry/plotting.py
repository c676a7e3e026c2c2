"""Charts of the registry: the calendar of tests by market, and readouts with their intervals.

Every function draws on the axes given (or a new figure), returns ``(fig, ax)``
and never calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from causal.errors import DataError

if TYPE_CHECKING:
    from experiments.registry.records import ReadoutRecord

__all__ = ["plot_calendar", "plot_readouts"]


def plot_calendar(
    frame: Any, *, ax: Any = None, title: str = "Geo tests by market"
) -> tuple[Any, Any]:
    """Draw a Gantt-like calendar: one lane per market, one bar per test, washout hatched.

    Parameters
    ----------
    frame : DataFrame
        :meth:`Registry.calendar`'s table.
    ax : matplotlib Axes, optional
        Draw here; default a new figure sized to the number of markets.
    title : str, default="Geo tests by market"

    Returns
    -------
    (fig, ax)
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.patches import Patch

    if frame.empty:
        raise DataError("the calendar is empty: no tests in the registry for that period")
    geos = sorted(frame["geo"].unique())
    tests = list(dict.fromkeys(frame.sort_values(["start", "experiment"])["experiment"]))
    cmap = plt.get_cmap("tab10" if len(tests) <= 10 else "tab20")
    colour = {t: cmap(i % cmap.N) for i, t in enumerate(tests)}
    if ax is None:
        fig, ax = plt.subplots(figsize=(11, max(2.5, 0.32 * len(geos) + 1.5)))
    else:
        fig = ax.figure
    lane = {g: i for i, g in enumerate(geos)}
    # Tests sharing a geo (an allowed overlap) split its lane so both stay visible.
    multi_cell = (frame.groupby("experiment")["cell"].nunique() > 1).to_dict()
    per_geo = frame.groupby("geo")["experiment"].apply(lambda s: list(dict.fromkeys(s))).to_dict()
    for r in frame.itertuples(index=False):
        slots = per_geo[r.geo]
        h = 0.8 / len(slots)
        y = lane[r.geo] - 0.4 + h * slots.index(r.experiment)
        start = mdates.date2num(pd.Timestamp(r.start))
        width = (r.end - r.start).days + 1
        hatch = "//" if r.status == "designed" else None
        opacity = 0.45 if r.status in ("designed", "cancelled") else 0.9
        ax.broken_barh(
            [(start, width)],
            (y, h),
            facecolors=colour[r.experiment],
            alpha=opacity,
            hatch=hatch,
            edgecolor="black" if r.status != "cancelled" else "grey",
            linewidth=0.4,
            linestyle="--" if r.status == "cancelled" else "-",
        )
        label = r.experiment + (f" / {r.cell}" if multi_cell.get(r.experiment) else "")
        ax.text(start + 0.5, y + h / 2, label, va="center", ha="left", fontsize=7, clip_on=True)
        wash = (r.occupied_until - r.end).days
        if wash > 0 and r.status != "cancelled":  # a cancelled test frees its markets
            ax.broken_barh(
                [(start + width, wash)],
                (y, h),
                facecolors="none",
                hatch="..",
                edgecolor=colour[r.experiment],
                linewidth=0.0,
            )
    ax.set_yticks(range(len(geos)), geos)
    ax.set_ylim(len(geos) - 0.5, -0.5)
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    ax.set_xlabel("date")
    ax.set_ylabel("market (geo)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    status_of = frame.drop_duplicates("experiment").set_index("experiment")["status"]
    handles = [
        Patch(
            facecolor=colour[t],
            edgecolor="black",
            hatch="//" if status_of[t] == "designed" else None,
            label=f"{t} ({status_of[t]})",
        )
        for t in tests
    ]
    handles.append(
        Patch(facecolor="none", edgecolor="grey", hatch="..", label="washout (carryover)")
    )
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
    )
    return fig, ax


def plot_readouts(readouts: Sequence[ReadoutRecord], *, ax: Any = None) -> tuple[Any, Any]:
    """Incremental outcome of each readout with its interval; exploratory ones in grey.

    Parameters
    ----------
    readouts : sequence of ReadoutRecord
    ax : matplotlib Axes, optional

    Returns
    -------
    (fig, ax)
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from causal.summary import fmt_number

    if not readouts:
        raise DataError("no readouts to draw")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 0.5 * len(readouts) + 1.5))
    else:
        fig = ax.figure
    for i, r in enumerate(readouts):
        res = r.result
        lo, hi = res.get("incremental_ci") or (None, None)
        inc = res.get("incremental")
        colour = "grey" if r.exploratory else "#2f5fa7"
        if lo is not None and hi is not None:
            ax.hlines(i, lo, hi, color=colour, lw=2)
        if inc is not None:
            ax.plot([inc], [i], "o", color=colour)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(
        range(len(readouts)),
        [f"#{r.id} {r.experiment} / {r.cell or '-'} ({r.label})" for r in readouts],
    )
    ax.set_ylim(len(readouts) - 0.5, -0.5)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_number(v)))
    conf = {r.result.get("confidence") for r in readouts}
    level = f" at confidence {fmt_number(conf.pop())}" if len(conf) == 1 else ""
    ax.set_xlabel(f"incremental outcome over the test{level}")
    ax.set_title("Readouts of registered tests")
    ax.grid(axis="x", alpha=0.3)
    return fig, ax
