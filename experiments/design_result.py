"""The results of the design search: one simulated design, and the search's recommendation.

:class:`DesignResult` is what :func:`experiments.design.design_experiment`
returns; ``to_dict()`` is design.json (the contract's keys). Both classes follow
liftlab's result protocol: ``summary()`` returns a :class:`causal.summary.Summary`
with readable numbers, ``to_dict()`` plain JSON values, ``plot(ax=None)`` returns
``(fig, ax)`` and never shows. ``alpha`` is the readout test's significance level
(its interval's confidence is ``1 - alpha``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from causal.summary import Summary, fmt_number
from experiments.design_defaults import SimulationPlan
from experiments.power import PowerResult

__all__ = ["CandidateDesign", "DesignResult"]


@dataclass
class CandidateDesign:
    """One simulated design: a treated set and test length, its power, fit and investment.

    Attributes
    ----------
    power : PowerResult
        The simulated power curve, MDE and false positive rate (with Monte-Carlo errors).
    fit : dict
        Pre-period fit of the treated average over the whole history.
    investment : float or None
        The spend change the MDE needs, when a cost prior was given.
    within_budget : bool
    rank : int
        Place in the ranking (0: unranked).
    max_false_positive_rate : float
        The cap above which the design over-rejects on history.
    null_rate : float or None
        Rejection rate with no effect on the dense null windows, when measured.
    period : str
    period_days : float
    """

    power: PowerResult
    fit: dict
    investment: float | None = None
    within_budget: bool = True
    rank: int = 0
    max_false_positive_rate: float = 1.0
    null_rate: float | None = None
    period: str = "day"
    period_days: float = 1.0

    @property
    def null_rejection_rate(self) -> float:
        """Rejection rate with no effect: on the dense null windows when measured, else the power windows'."""
        return self.power.false_positive_rate if self.null_rate is None else self.null_rate

    @property
    def calibrated(self) -> bool:
        """The readout's false positive rate on history is at most ``max_false_positive_rate``."""
        return self.null_rejection_rate <= self.max_false_positive_rate + 1e-12

    @property
    def feasible(self) -> bool:
        """Reaches the power target, within budget, and not over-rejecting on history."""
        return self.mde is not None and self.within_budget and self.calibrated

    @property
    def treated(self) -> tuple[str, ...]:
        return self.power.treated

    @property
    def duration(self) -> int:
        return self.power.duration

    @property
    def mde(self) -> float | None:
        return self.power.mde

    def summary(self) -> Summary:
        """The design in one line (treated geos, length, MDE, false positive rate, investment).

        Table ``power_curve``: the simulated power at each injected lift.
        """
        se = "" if self.power.mde_se is None else f" +- {_pct(self.power.mde_se)}"
        inv = "" if self.investment is None else f", investment {fmt_number(self.investment)}"
        text = (
            f"treat {', '.join(self.treated)} for {self.duration} {self.period}s: "
            f"MDE {_pct(self.mde)}{se}, false positive rate "
            f"{fmt_number(self.null_rejection_rate, 2)}{inv}"
            + ("" if self.feasible else " (not feasible)")
        )
        curve = pd.DataFrame({"lift": list(self.power.lifts), "power": list(self.power.power)})
        return Summary(text, {"power_curve": curve})

    def plot(self, ax: Any = None) -> tuple[Any, Any]:
        """The design's power against the injected lift; returns ``(fig, ax)``, never shows."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, PercentFormatter

        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
        ax.plot(self.power.lifts, self.power.power, marker="o", label=", ".join(self.treated))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.3g}%"))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("injected lift")
        ax.set_ylabel("power (share of windows detected)")
        ax.set_title(f"Power against lift, {self.duration} {self.period}s")
        return fig, ax

    def to_dict(self) -> dict:
        d = {
            "rank": self.rank,
            **self.power.to_dict(),
            "investment": self.investment,
            "duration_days": int(round(self.duration * self.period_days)),
            "duration_periods": int(self.duration),
            "period": self.period,
            "within_budget": self.within_budget,
            "null_rejection_rate": self.null_rejection_rate,
            "calibrated": self.calibrated,
            "feasible": self.feasible,
            "fit": self.fit,
        }
        return d


@dataclass
class DesignResult:
    """The outcome of :func:`design_experiment`; ``to_dict()`` is design.json.

    Attributes
    ----------
    outcome, estimator : str
    alpha, power_target : float
    cells : list of CandidateDesign
        The recommended design of each cell (one for a single-cell test),
        with power recomputed against the controls left by all cells.
    control : list of str
        Donor geos: every geo in no cell.
    candidates : list of CandidateDesign
        Every fully simulated design, ranked (best first).
    n_screened : int
        Candidates simulated in the screening stage.
    settings : dict
        The inputs, for the record.
    fit_series : dict
        The recommended design's pre-period fit over the whole history
        (``dates``, ``observed``, ``synthetic``), for the report.
    mde_by_duration : list of dict
        Best MDE and investment per test length.
    plan : SimulationPlan
        Test lengths, pre-periods and window counts, chosen or given.
    held_out : bool
        Whether the cells' figures were measured on windows the search did not see.
    search_cells : list of CandidateDesign
        The same designs as measured on the search's windows (their MDE there is
        biased low: the winner's curse), for comparison with ``cells``.
    """

    outcome: str
    estimator: str
    alpha: float
    power_target: float
    cells: list[CandidateDesign]
    control: list[str]
    candidates: list[CandidateDesign]
    n_screened: int
    settings: dict
    fit_series: dict = field(repr=False, default_factory=dict)
    mde_by_duration: list[dict] = field(default_factory=list)
    plan: SimulationPlan | None = None
    held_out: bool = False
    search_cells: list[CandidateDesign] = field(default_factory=list)

    @property
    def best(self) -> CandidateDesign:
        return self.cells[0]

    def to_dict(self) -> dict:
        b = self.best
        return {
            "outcome": self.outcome,
            "estimator": self.estimator,
            "alpha": self.alpha,
            "power_target": self.power_target,
            "treated": list(b.treated),
            "control": list(self.control),
            "duration_days": int(round(b.duration * b.period_days)),
            "duration_periods": int(b.duration),
            "period": b.period,
            "mde": b.mde,
            "mde_se": b.power.mde_se,
            "mde_power": b.power.mde_power,
            "power_se": b.power.power_se,
            "mde_incremental": b.power.mde_incremental,
            "selection_factor": b.power.selection_factor,
            "power_curve": b.power.to_dict()["power_curve"],
            "false_positive_rate": b.power.false_positive_rate,
            "false_positive_rate_se": b.power.false_positive_rate_se,
            "held_out": self.held_out,
            "n_windows": b.power.n_windows,
            "n_effective_windows": b.power.n_effective,
            "search_mde": self.search_cells[0].mde if self.search_cells else b.mde,
            "search_false_positive_rate": (
                self.search_cells[0].null_rejection_rate
                if self.search_cells
                else b.power.false_positive_rate
            ),
            "investment": b.investment,
            "fit": b.fit,
            "cells": [dict(c.to_dict(), cell=i + 1) for i, c in enumerate(self.cells)],
            "mde_by_duration": self.mde_by_duration,
            "candidates": [c.to_dict() for c in self.candidates],
            "n_screened": self.n_screened,
            "settings": self.settings,
        }

    def summary(self) -> Summary:
        """The recommendation, where it was measured, the power curve and the top candidates.

        Tables: ``cells`` (the recommended design of each cell) and ``candidates`` (the ranking).
        """
        b = self.best
        per = self.plan.period if self.plan is not None else "period"
        prescreened = self.settings.get("n_prescreen")
        lines = [
            f"design ({self.estimator}, test level alpha {fmt_number(self.alpha)}, power target "
            f"{self.power_target:.0%}; "
            + (f"{fmt_number(prescreened)} treated sets prescreened, " if prescreened else "")
            + f"{fmt_number(self.n_screened)} candidates screened, "
            f"{len(self.candidates)} simulated in full)",
        ]
        where = (
            f"measured on {b.power.n_windows} held-out windows (~{b.power.n_effective:.1f} "
            "independent), not those that chose it"
            if self.held_out
            else "measured on the windows that chose it (too short a history to hold any out: "
            "optimistic)"
        )
        for i, c in enumerate(self.cells):
            head = f"cell {i + 1}: " if len(self.cells) > 1 else "recommended: "
            se = "" if c.power.mde_se is None else f" +- {_pct(c.power.mde_se)}"
            mde = (
                "not reached within the effect sizes"
                if c.mde is None
                else (
                    f"{_pct(c.mde)}{se} ({fmt_number(c.power.mde_incremental)} {self.outcome}), "
                    f"power there {c.power.mde_power:.2f} +- {c.power.power_se:.2f}"
                )
            )
            inv = "" if c.investment is None else f", investment {fmt_number(c.investment)}"
            lines.append(
                f"{head}treat {', '.join(c.treated)} for {c.duration} {per}s: MDE {mde}{inv}, "
                f"false positive rate {c.power.false_positive_rate:.2f} +- "
                f"{c.power.false_positive_rate_se:.2f}"
            )
        search_mde = self.search_cells[0].mde if self.search_cells else None
        lines.append(f"  ({where}; on the search windows: MDE {_pct(search_mde)})")
        lines.append(
            "power curve: "
            + ", ".join(f"{_pct(x)}: {p:.2f}" for x, p in zip(b.power.lifts, b.power.power))
        )
        lines.append("top candidates:")
        for c in self.candidates[:5]:
            inv = "" if c.investment is None else f"  investment {fmt_number(c.investment)}"
            lines.append(
                f"  {c.rank:>2}. {', '.join(c.treated)} ({c.duration} {per}s): "
                f"MDE {_pct(c.mde)}{inv} (search windows)"
            )
        return Summary(
            "\n".join(lines),
            {"cells": _designs_frame(self.cells), "candidates": _designs_frame(self.candidates)},
        )

    def plot(self, ax: Any = None, *, top: int = 5) -> tuple[Any, Any]:
        """Power curves of the ``top`` designs against the injected lift; returns ``(fig, ax)``.

        Never shows the figure.
        """
        import matplotlib.pyplot as plt

        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
        from matplotlib.ticker import FuncFormatter, PercentFormatter

        for c in self.candidates[:top]:
            # Long geo lists would squeeze the axes; the ranking table lists them in full.
            geos = (
                ", ".join(c.treated)
                if len(c.treated) <= 5
                else f"{', '.join(c.treated[:3])}, … ({len(c.treated)} geos)"
            )
            ax.plot(
                c.power.lifts,
                c.power.power,
                marker="o",
                label=f"{c.rank}. {geos}, {c.duration} periods",
            )
        ax.axhline(
            self.power_target,
            color="grey",
            ls="--",
            lw=1,
            label=f"power target {self.power_target:.0%}",
        )
        ax.axhline(
            self.alpha, color="grey", ls=":", lw=1, label=f"test level alpha {self.alpha:.0%}"
        )
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _: f"{100 * v:.3g}%")
        )  # 0.5%, 1%, 1.5%
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("injected lift")  # ticks in % of the treated geos' outcome
        ax.set_ylabel("power (share of windows detected)")
        ax.set_title(
            f"Power against lift, top {min(top, len(self.candidates))} designs ({self.estimator})"
        )
        ax.legend(
            fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0)
        )  # outside: never over a curve
        return fig, ax


def _pct(x: float | None) -> str:
    """A relative lift as a percentage with one decimal, or ``-``.

    >>> _pct(0.0372), _pct(None)
    ('3.7%', '-')
    """
    return "-" if x is None else f"{100 * x:.1f}%"


def _designs_frame(designs: list[CandidateDesign]) -> pd.DataFrame:
    """One row per design: rank, treated geos, length, MDE with its error, FPR, investment."""
    rows = [
        {
            "rank": d.rank,
            "treated": ", ".join(d.treated),
            "duration_periods": d.duration,
            "mde": d.mde,
            "mde_se": d.power.mde_se,
            "false_positive_rate": d.null_rejection_rate,
            "investment": d.investment,
            "feasible": d.feasible,
        }
        for d in designs
    ]
    cols = [
        "rank",
        "treated",
        "duration_periods",
        "mde",
        "mde_se",
        "false_positive_rate",
        "investment",
        "feasible",
    ]
    return pd.DataFrame(rows, columns=cols)
