"""Plans: what every planner returns. :class:`Plan` (one period) and :class:`TimePlan` (days).

Both tabulate a solution the same way: per line its spend, the outcome the curves give
there, the marginal return, and the rules that bind, by name (:mod:`allocation.constraints`).
Nothing here solves anything; the planners in :mod:`allocation.optimize`,
:mod:`allocation.sshape`, :mod:`allocation.scenarios` and :mod:`allocation.daily_plan` build
these from their solutions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from allocation.business_rules import Bounds, Rules, group_matrix, market_matrix
from allocation.constraints import WINDOW, guardrail_violation
from allocation.curves import CurveSet
from allocation.daily_inputs import DailyInputs
from causal import response as R
from causal.summary import Summary, fmt_number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _finite_or_none(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN or inf: a line without a current spend, or an unbounded ceiling, is null.
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}


class _PlanResult:
    """What :class:`Plan` and :class:`TimePlan` share: totals over ``lines`` and one ``to_dict``.

    Subclasses give the per-line records (:meth:`_line_records`) and the keys only they
    have (:meth:`_own_keys`); the keys of INTERFACE.md common to both are written here once.
    """

    lines: pd.DataFrame
    status: str
    objective: str
    budget: float | None
    budget_dual: float | None
    binding: list[dict]
    rules: dict
    solver: str
    method: str
    gap: float
    solve_seconds: float

    @property
    def total_spend(self) -> float:
        return float(self.lines["spend"].sum())

    @property
    def total_incremental(self) -> float:
        return float(self.lines["incremental"].sum())

    def _line_records(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _own_keys(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        """plan.json: INTERFACE.md's keys, then extras."""
        return {
            "status": self.status,
            "objective": self.objective,
            "budget": self.budget,
            "lines": self._line_records(),
            "total_spend": self.total_spend,
            "total_incremental": self.total_incremental,
            "budget_dual": self.budget_dual,
            "marginal_return": self.budget_dual,
            "binding_constraints": self.binding,
            "constraints": self.rules,
            "solver": self.solver,
            "method": self.method,
            "gap": self.gap,
            **self._own_keys(),
            # Wall-clock time varies run to run: kept apart from the plan, outside anything compared.
            "timing": {"solve_seconds": self.solve_seconds},
        }

    def to_frame(self) -> pd.DataFrame:
        """The per-line table (a copy)."""
        return self.lines.copy()

    def _binding_line(self) -> list[str]:
        if not self.binding:
            return []
        return ["binding: " + ", ".join(sorted({b["constraint"] for b in self.binding}))]


@dataclass
class Plan(_PlanResult):
    """A recommended allocation.

    Attributes
    ----------
    status : str
        ``optimal`` or the solver's word.
    objective : str
    budget : float or None
    lines : pandas.DataFrame
        One row per line: ``name, market, spend, current_spend, incremental,
        current_incremental, marginal`` (outcome per extra unit of spend) and
        ``cost_per_incremental`` (1 / marginal), ``lower``, ``upper``, ``binding``.
    budget_dual : float or None
        Dual value of ``total_budget``: incremental outcome of one more unit of budget.
    binding : list of dict
        Binding constraints, each ``{"constraint", "line" or "market" or "group", "value"}``.
    solver, method : str
    gap : float
        Relative gap to the true optimum (0 for the exact convex model; the
        proven bound for the piecewise-linear model of S-shaped curves).
    """

    status: str
    objective: str
    budget: float | None
    lines: pd.DataFrame
    budget_dual: float | None
    binding: list[dict]
    solver: str
    method: str
    gap: float
    solve_seconds: float
    rules: dict = field(default_factory=dict)
    target: float | None = None
    value_per_signup: float | None = None
    objective_value: float | None = None
    extra: dict = field(default_factory=dict)

    _COLUMNS = (
        "name",
        "market",
        "spend",
        "current_spend",
        "incremental",
        "marginal",
        "cost_per_incremental",
        "current_incremental",
        "lower",
        "lower_rule",
        "upper",
        "upper_rule",
        "binding",
    )

    def _line_records(self) -> list[dict[str, Any]]:
        return [_finite_or_none(r) for r in self.lines[list(self._COLUMNS)].to_dict("records")]

    def _own_keys(self) -> dict[str, Any]:
        known = self.lines["current_spend"].notna().all()
        return {
            "current_total_spend": float(self.lines["current_spend"].sum()) if known else None,
            "current_total_incremental": float(self.lines["current_incremental"].sum())
            if known
            else None,
            "target": self.target,
            "value_per_signup": self.value_per_signup,
            **self.extra,
        }

    def summary(self) -> Summary:
        """The plan in a few lines (status, totals, marginal return, binding rules) and its line table."""
        out = [
            f"{self.objective}: {self.status} ({self.method}, {self.solver}, gap {fmt_number(self.gap)}), "
            f"spend {fmt_number(self.total_spend)} -> incremental {fmt_number(self.total_incremental)}"
        ]
        if self.budget_dual is not None and self.budget_dual > 1e-9:
            mr = self.budget_dual
            out.append(
                f"marginal return of budget {fmt_number(mr)} per unit "
                f"(marginal cost per incremental {fmt_number(1 / mr)})"
            )
        out += self._binding_line()
        return Summary("\n".join(out), {"lines": self.lines})

    def plot(self, *, ax: Axes | None = None) -> tuple[Figure, Axes]:
        """Current and recommended spend per line (horizontal bars). Returns ``(fig, ax)``; never shows."""
        import matplotlib.pyplot as plt

        lines = self.lines
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, max(2.5, 0.25 * len(lines))))
        else:
            fig = ax.figure
        from matplotlib.ticker import FuncFormatter

        y = np.arange(len(lines))
        ax.barh(
            y - 0.2,
            np.nan_to_num(lines["current_spend"].to_numpy(dtype=float)),
            height=0.4,
            color="#8a94a3",
            label="current",
        )
        ax.barh(
            y + 0.2,
            lines["spend"].to_numpy(dtype=float),
            height=0.4,
            color="#2f5fa7",
            label="recommended",
        )
        ax.set_yticks(y, list(lines.index))
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel("spend per period (currency units)")
        ax.set_title("Current vs recommended spend per channel and market")
        ax.legend(loc="lower right")
        return fig, ax


def make_plan(
    curves: CurveSet,
    rules: Rules,
    bounds: Bounds,
    spend: np.ndarray,
    *,
    status: str,
    objective: str,
    budget_dual: float | None,
    solver: str,
    method: str,
    gap: float,
    seconds: float,
    target: float | None = None,
    value_per_signup: float | None = None,
    extra: dict | None = None,
) -> Plan:
    """Tabulate a solution: per-line outcome, marginal return, and which constraints bind."""
    cur = curves.current()
    inc = curves.evaluate(spend)
    marg = curves.marginal(spend)
    with np.errstate(divide="ignore"):
        cpi = np.where(marg > 0, 1.0 / marg, np.inf)
    tol = 1e-5
    binding: list[dict] = []
    line_binding = []
    for i, c in enumerate(curves):
        scale = max(1.0, abs(spend[i]))
        tags = []
        if bounds.lower[i] > 0 and spend[i] - bounds.lower[i] <= tol * scale:
            tags.append(bounds.lower_rule[i])
            binding.append(
                {
                    "constraint": _lower_name(bounds.lower_rule[i]),
                    "line": c.label,
                    "value": float(bounds.lower[i]),
                }
            )
        if np.isfinite(bounds.upper[i]) and bounds.upper[i] - spend[i] <= tol * scale:
            tags.append(bounds.upper_rule[i])
            binding.append(
                {
                    "constraint": _upper_name(bounds.upper_rule[i]),
                    "line": c.label,
                    "value": float(bounds.upper[i]),
                }
            )
        line_binding.append(",".join(tags))
    total = float(spend.sum())
    if (
        rules.spendable is not None
        and objective != "min_spend"
        and abs(total - rules.spendable) <= tol * max(1.0, rules.spendable)
    ):
        binding.append({"constraint": "total_budget", "value": float(rules.spendable)})
        if rules.reserve_amount > 0:
            binding.append({"constraint": "test_and_learn_reserve", "value": rules.reserve_amount})
    if rules.market_budgets:
        mat, caps, markets = market_matrix(curves, rules)
        for m, s, cap in zip(markets, mat @ spend, caps):
            if cap - s <= tol * max(1.0, cap):
                binding.append({"constraint": "market_budgets", "market": m, "value": float(cap)})
    if rules.group_budgets:
        mat, caps, mins, names = group_matrix(curves, rules)
        for g, s, cap, mn in zip(names, mat @ spend, caps, mins):
            if np.isfinite(cap) and cap - s <= tol * max(1.0, cap):
                binding.append({"constraint": "group_budgets", "group": g, "value": float(cap)})
            if mn > 0 and s - mn <= tol * max(1.0, mn):
                binding.append({"constraint": "group_minimums", "group": g, "value": float(mn)})
    if objective == "min_spend":
        binding.append({"constraint": "incremental_target", "value": float(target)})
    frame = pd.DataFrame(
        {
            "name": curves.names,
            "market": curves.markets,
            "spend": spend,
            "current_spend": cur,
            "incremental": inc,
            "current_incremental": np.where(
                np.isfinite(cur), curves.evaluate(np.nan_to_num(cur)), np.nan
            ),
            "marginal": marg,
            "cost_per_incremental": cpi,
            "lower": bounds.lower,
            "lower_rule": bounds.lower_rule,
            "upper": bounds.upper,
            "upper_rule": bounds.upper_rule,
            "binding": line_binding,
        }
    )
    frame.index = pd.Index(curves.labels, name="line")
    if objective == "max_profit" and value_per_signup:
        obj_value = value_per_signup * float(inc.sum()) - total
    elif objective == "min_spend":
        obj_value = total
    else:
        obj_value = float(inc.sum())
    return Plan(
        status=status,
        objective=objective,
        budget=rules.budget,
        lines=frame,
        budget_dual=budget_dual,
        binding=binding,
        solver=solver,
        method=method,
        gap=gap,
        solve_seconds=seconds,
        rules=rules.to_dict(),
        target=target,
        value_per_signup=value_per_signup,
        objective_value=obj_value,
        extra=extra or {},
    )


def _lower_name(rule: str) -> str:
    return {"floor": "line_floors", "commitment": "commitments", "guardrail": "guardrail"}.get(
        rule, rule
    )


def _upper_name(rule: str) -> str:
    return {"ceiling": "line_ceilings", "guardrail": "guardrail"}.get(rule, rule)


@dataclass
class TimePlan(_PlanResult):
    """A daily plan.

    Attributes
    ----------
    schedule : pandas.DataFrame
        Spend per line (rows, ``name/market``) and day (columns 0..days-1).
    response : pandas.DataFrame
        Expected incremental outcome per line and day (with the calendar's multipliers).
    multipliers : numpy.ndarray
    history : numpy.ndarray
        The spend before the first day that the guardrail windows reach into.
    lines : pandas.DataFrame
        Per line: average daily ``spend`` and ``incremental``, ``current_spend``,
        ``marginal`` (average over days of the outcome of one more unit of spend that day,
        carryover included), ``cost_per_incremental``, ``binding``.
    """

    status: str
    budget: float
    schedule: pd.DataFrame
    response: pd.DataFrame
    multipliers: np.ndarray
    history: np.ndarray
    lines: pd.DataFrame
    budget_dual: float | None
    binding: list[dict]
    max_change: float | None
    calendar: Any  # an allocation.launches.LaunchCalendar, or None
    solve_seconds: float
    rules: dict = field(default_factory=dict)
    solver: str = "CLARABEL"
    method: str = "convex (daily, adstock)"
    gap: float = 0.0
    objective: str = "max_incremental"
    certificate: dict = field(default_factory=dict)

    @property
    def days(self) -> int:
        return self.schedule.shape[1]

    def _line_records(self) -> list[dict[str, Any]]:
        out = []
        for i, (lab, row) in enumerate(self.lines.iterrows()):
            d = _finite_or_none(row.to_dict())
            d["daily_spend"] = self.schedule.loc[lab].tolist()
            d["daily_incremental"] = self.response.loc[lab].tolist()
            d["history"] = self.history[i].tolist()
            out.append(d)
        return out

    def _own_keys(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "period_totals": "lines' spend and incremental are averages per day over the horizon",
            "horizon_spend": float(self.schedule.to_numpy().sum()),
            "horizon_incremental": float(self.response.to_numpy().sum()),
            "max_change": self.max_change,
            "guardrail_window_days": WINDOW,
            "launch_calendar": None if self.calendar is None else self.calendar.to_dict(),
            "certificate": self.certificate or {"kind": "convex", "gap": self.gap},
        }

    def summary(self) -> Summary:
        """The plan in a few lines (horizon totals, guardrail, binding rules) and its line table."""
        out = [
            f"{self.days}-day plan: {self.status} ({self.method}, {self.solver}, "
            f"gap {fmt_number(self.gap)}), horizon spend "
            f"{fmt_number(self.schedule.to_numpy().sum())} -> incremental "
            f"{fmt_number(self.response.to_numpy().sum())}"
        ]
        if self.max_change is not None:
            viol = guardrail_violation(
                self.schedule.to_numpy(),
                self.history,
                self.lines["current_spend"].to_numpy(),
                self.max_change,
            )
            out.append(
                f"guardrail {self.max_change:.0%} per 7-day window: largest change "
                f"{viol:.3f} of the allowed band"
            )
        out += self._binding_line()
        return Summary("\n".join(out), {"lines": self.lines, "daily_spend": self.schedule})

    def channel_daily(self) -> pd.DataFrame:
        """Daily spend per channel, summed over markets (days x channels)."""
        return self.schedule.groupby(self.lines["name"].to_numpy()).sum().T

    def plot(self, *, ax: Axes | None = None) -> tuple[Figure, Axes]:
        """Daily spend per channel; launch days as vertical lines. Returns ``(fig, ax)``; never shows."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 4))
        else:
            fig = ax.figure
        self.channel_daily().plot(ax=ax)
        if self.calendar is not None:
            for ev in self.calendar.launches:
                if 0 <= ev.day < self.days:
                    ax.axvline(ev.day, color="grey", ls="--", lw=1)
        ax.set_xlabel("day")
        ax.set_ylabel("spend per day")
        return fig, ax


def tabulate_days(
    inp: DailyInputs,
    spend: np.ndarray,
    *,
    dual: float | None,
    guarded: np.ndarray,
    status: str,
    seconds: float,
    solver: str,
) -> TimePlan:
    """Tabulate a daily solution: per line and day the outcome, marginal return, binding rules."""
    curves, rules, cur, lo, hi = inp.curves, inp.rules, inp.current, inp.lower, inp.upper
    decay, mult = inp.decay, inp.mult
    n, days = spend.shape
    ad = R.geometric_carry(spend, decay, inp.start_adstock)
    resp = curves.evaluate_lines(ad) * mult
    v = curves.marginal_lines(ad) * mult  # per unit of adstock
    marg = R.geometric_marginal(v, decay)
    labels = curves.labels
    binding = []
    line_tags = []
    tol = 1e-6
    for i in range(len(labels)):
        tags = []
        if (np.abs(spend[i] - lo[i]) <= tol * np.maximum(1, lo[i])).any() and lo[i].max() > 0:
            tags.append("lower")
        if (np.isfinite(hi[i]) & (np.abs(hi[i] - spend[i]) <= tol * np.maximum(1, spend[i]))).any():
            tags.append("upper")
        line_tags.append(",".join(tags))
    if rules.spendable is not None and abs(spend.sum() - rules.spendable) <= 1e-6 * max(
        1.0, rules.spendable
    ):
        binding.append({"constraint": "total_budget", "value": rules.spendable})
    for r in np.flatnonzero(guarded):
        binding.append({"constraint": "guardrail", "line": labels[r], "value": rules.max_change})
    frame = pd.DataFrame(
        {
            "name": curves.names,
            "market": curves.markets,
            "spend": spend.mean(axis=1),
            "current_spend": cur,
            "incremental": resp.mean(axis=1),
            "current_incremental": np.where(
                np.isfinite(cur), curves.evaluate(np.nan_to_num(cur)), np.nan
            ),
            "marginal": marg.mean(axis=1),
            "binding": line_tags,
        },
        index=pd.Index(labels, name="line"),
    )
    with np.errstate(divide="ignore"):
        frame["cost_per_incremental"] = np.where(
            frame["marginal"] > 0, 1 / frame["marginal"], np.inf
        )
    return TimePlan(
        status=status,
        budget=float(rules.budget),
        schedule=pd.DataFrame(spend, index=frame.index),
        response=pd.DataFrame(resp, index=frame.index),
        multipliers=mult,
        history=inp.history,
        lines=frame,
        budget_dual=dual,
        binding=binding,
        max_change=rules.max_change,
        calendar=inp.calendar,
        solve_seconds=seconds,
        rules=rules.to_dict(),
        solver=solver,
    )
