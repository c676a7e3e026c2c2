r"""Daily plans over a horizon: adstock carryover, a title-launch calendar, a rolling 7-day guardrail.

For line :math:`i` (a channel in a market) and day :math:`t` the plan chooses
spend :math:`x_{it} \ge 0`. Carryover is the normalised geometric adstock of
:mod:`causal.transforms`,

.. math:: a_{it} = (1-\lambda_i) x_{it} + \lambda_i a_{i,t-1},

linear in spend, so the outcome :math:`\sum_{it} m_{it} f_i(a_{it})` stays
concave (each :math:`f_i` is a concave curve of curves.json) and the plan is the
global optimum of a convex problem. :math:`m_{it}` is the launch calendar's
demand multiplier (one elsewhere).

The guardrail says no line changes by more than a share :math:`F` of its
current spend :math:`c_i` within any 7-day window: for every two days
:math:`s < t` with :math:`t - s \le 6`, :math:`|x_{it} - x_{is}| \le F c_i`,
where the days before the plan (the history: yesterday's spend, or the current
spend) take part in the windows that reach back into them.

The launch calendar
-------------------
A launch of strength :math:`k` on day :math:`L` in a market scales demand: on the
``pre_days`` days before it the response of *awareness* channels (``ctv``,
``programmatic``, ``social`` by default) is worth :math:`1 + k` (audiences primed
for the title convert later on what they saw), and from the launch day the
response of *conversion* channels (names containing ``search`` by default) is
worth :math:`1 + k e^{-(t - L)/\tau}` with :math:`\tau` = ``post_days / 2``, for
``post_days`` days (the organic interest that search harvests). The plan then
moves spend toward awareness before a launch and toward search after it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np

from allocation.constraints import (
    WINDOW,
    guardrail_box,
    guardrail_constraints,
    guardrail_violation,
    implied_bounds,
    rule_name,
    spend_constraints,
)
from allocation.curves import CurveSet
from allocation.daily_ipm import SUPPORTED, curve_terms, solve_daily
from allocation.daily_pwl import MAX_BINARIES, solve_daily_pwl
from allocation.jsonfile import read_json
from allocation.plans import TimePlan, _tabulate
from allocation.problem import concave_response, scaling, solve_robust, structure_key
from allocation.rules import Rules, check_feasible, group_matrix, line_bounds, market_matrix
from causal import response as R
from causal.errors import ConfigError, DataError, InfeasibleError

# The daily problem is large: faer's sparse LDL is ~25% faster than the default qdldl here, and a
# relative gap of 1e-7 (instead of 1e-8) saves a quarter of the iterations at no visible cost.
# Iterative refinement of each KKT solve to 1e-10 instead of Clarabel's 1e-13/1e-12 (far below the
# 1e-7 gap and feasibility tolerances it serves) cut the solve time 2.4x at 100 x 8 lines x 28 days,
# same iterations, objective equal to 1e-9 relative (benchmarks/bench_allocation.py).
_DAILY_OPTIONS = {
    "direct_solve_method": "faer",
    "tol_gap_rel": 1e-7,
    "tol_gap_abs": 1e-6,
    "tol_feas": 1e-7,
    "iterative_refinement_reltol": 1e-10,
    "iterative_refinement_abstol": 1e-10,
}
AWARENESS = ("ctv", "programmatic", "social")
# Plans and the guardrail live in their own modules; re-exported for existing callers.
__all__ = [
    "WINDOW",
    "Launch",
    "LaunchCalendar",
    "TimePlan",
    "guardrail_box",
    "guardrail_violation",
    "plan_days",
    "replan",
]


@dataclass
class Launch:
    """One title launch: the day (index from the plan's first day), market (None: all), strength."""

    day: int
    market: str | None = None
    strength: float = 0.5
    pre_days: int = 7
    post_days: int = 7


@dataclass
class LaunchCalendar:
    """Title launches, and which channels build awareness and which convert.

    Parameters
    ----------
    launches : list of Launch
    awareness : tuple of str
        Channels whose response before a launch is scaled up.
    conversion : tuple of str or None
        Channels whose response after a launch is scaled up; ``None``: names containing ``search``.
    """

    launches: list[Launch] = field(default_factory=list)
    awareness: tuple[str, ...] = AWARENESS
    conversion: tuple[str, ...] | None = None
    source: str = "launch calendar"

    def check(self, curves: CurveSet) -> LaunchCalendar:
        """Refuse a launch in a market the curves do not have (it would silently change nothing)."""
        markets = {c.market for c in curves}
        for i, ev in enumerate(self.launches):
            if ev.market is not None and ev.market not in markets:
                known = (
                    ", ".join(sorted(str(m) for m in markets if m is not None))
                    or "none (one market, null)"
                )
                raise DataError(
                    f"{self.source}: launches[{i}] key 'market' is {ev.market!r}, not a market of "
                    f"{curves.source} (markets: {known})"
                )
        return self

    def is_conversion(self, name: str) -> bool:
        return name in self.conversion if self.conversion is not None else "search" in name

    def multipliers(self, curves: CurveSet, days: int) -> np.ndarray:
        """Demand multiplier per line and day, shape ``(lines, days)``."""
        m = np.ones((len(curves), days))
        t = np.arange(days)
        for ev in self.launches:
            pre = (t >= ev.day - ev.pre_days) & (t < ev.day)
            tau = max(ev.post_days / 2.0, 1e-9)
            post = (t >= ev.day) & (t < ev.day + ev.post_days)
            post_boost = np.where(post, ev.strength * np.exp(-(t - ev.day) / tau), 0.0)
            for i, c in enumerate(curves):
                if ev.market is not None and c.market != ev.market:
                    continue
                if c.name in self.awareness:
                    m[i] += np.where(pre, ev.strength, 0.0)
                elif self.is_conversion(c.name):
                    m[i] += post_boost
        return m

    def shifted(self, days: int) -> LaunchCalendar:
        """The same calendar seen ``days`` later (for a re-plan)."""
        return LaunchCalendar(
            [
                Launch(e.day - days, e.market, e.strength, e.pre_days, e.post_days)
                for e in self.launches
            ],
            self.awareness,
            self.conversion,
            self.source,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "launches": [vars(e) for e in self.launches],
            "awareness": list(self.awareness),
            "conversion": None if self.conversion is None else list(self.conversion),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<calendar>") -> LaunchCalendar:
        if isinstance(data, list):
            data = {"launches": data}
        if not isinstance(data, dict) or not isinstance(data.get("launches"), list):
            raise DataError(
                f'{source}: expected {{"launches": [{{"day": 10, "market": "US", "strength": 0.5}}]}}'
            )
        launches = []
        for i, e in enumerate(data["launches"]):
            where = f"{source}: launches[{i}]"
            if not isinstance(e, dict) or "day" not in e:
                raise DataError(
                    f"{where}: needs key 'day' (index of the launch day from the plan's first day)"
                )
            unknown = set(e) - {"day", "market", "strength", "pre_days", "post_days"}
            if unknown:
                raise DataError(f"{where}: unknown key '{sorted(unknown)[0]}'")
            try:
                ev = Launch(
                    int(e["day"]),
                    e.get("market"),
                    float(e.get("strength", 0.5)),
                    int(e.get("pre_days", 7)),
                    int(e.get("post_days", 7)),
                )
            except (TypeError, ValueError) as exc:
                raise DataError(f"{where}: {exc}") from None
            if ev.strength < 0 or ev.pre_days < 0 or ev.post_days < 0:
                raise DataError(f"{where}: strength, pre_days and post_days must be >= 0")
            launches.append(ev)
        conv = data.get("conversion")
        return cls(
            launches,
            tuple(data.get("awareness", AWARENESS)),
            None if conv is None else tuple(conv),
            source,
        )

    @classmethod
    def load(cls, path: str | Path) -> LaunchCalendar:
        return cls.from_dict(read_json(path, "launch calendar"), source=str(path))


def plan_days(
    curves: CurveSet,
    rules: Rules,
    *,
    days: int = 28,
    calendar: LaunchCalendar | None = None,
    history: np.ndarray | None = None,
    solver: str = "auto",
) -> TimePlan:
    """The optimal daily plan over ``days`` days.

    Parameters
    ----------
    curves : CurveSet
        Concave curves with ``adstock.decay`` per line (0: no carryover).
    rules : Rules
        ``budget`` is the total over the horizon (default: current spend times ``days``);
        floors, ceilings, commitments, market and group budgets apply per day;
        ``max_change`` is the rolling 7-day guardrail.
    calendar : LaunchCalendar, optional
    history : array (lines, h), optional
        Spend on the days before the plan (oldest first), for the guardrail windows and
        the starting adstock; default: one day at the current spend.
    solver : str, default="auto"
        ``"structured"``: the interior-point method of :mod:`allocation.daily_ipm`, which
        solves one small block per line and the budget row by a Schur complement (it
        handles the budget, floors, ceilings, commitments and the guardrail; not market or
        group budgets, which couple lines day by day). Any cvxpy solver name (``"CLARABEL"``)
        solves the same problem written in cvxpy. ``"auto"``: structured when it applies,
        otherwise Clarabel. Both reach the same optimum (tests/test_alloc_daily_ipm.py).

    Returns
    -------
    TimePlan
    """
    if days < 1:
        raise ConfigError(f"days must be >= 1, got {days}")
    convex = next((c for c in curves if c.form == "power" and not c.is_concave), None)
    if convex is not None:
        raise ConfigError(
            f"line {convex.label}: power curve with exponent {convex.params['exponent']:g} > 1 is "
            "convex (increasing returns without bound); use exponent <= 1 or a Hill curve"
        )
    rules = Rules(**rules.to_dict()).validate()
    n = len(curves)
    check_size(
        n, days, structured=solver.lower() in ("structured", "auto") and not rules.group_budgets
    )
    need_current = rules.max_change is not None
    cur = curves.current(
        required=need_current, why=f"the guardrail (max_change {rules.max_change}) needs"
    )
    if history is None:
        history = np.nan_to_num(cur, nan=0.0)[:, None]
    history = np.asarray(history, dtype=float)
    if history.shape[0] != n:
        raise DataError(f"history has {history.shape[0]} lines, curves have {n}")
    if rules.budget is None:
        if np.isnan(cur).any():
            raise ConfigError(
                "a daily plan needs --budget (total over the horizon) when a line has no current_spend"
            )
        rules.budget = float(cur.sum() * days)
    static_rules = Rules(**{**rules.to_dict(), "max_change": None, "budget": None})
    bounds = line_bounds(curves, static_rules)
    lo = np.repeat(bounds.lower[:, None], days, axis=1)
    hi = np.repeat(bounds.upper[:, None], days, axis=1)
    band = None
    if rules.max_change is not None:
        band = rules.max_change * cur
        glo, ghi = guardrail_box(history, days, band)
        lo, hi = np.maximum(lo, glo), np.minimum(hi, ghi)
        # Over the whole horizon a line can drift at most the band from the last history day's 7-day reach.
    bad = np.argwhere(lo > hi * (1 + 1e-12) + 1e-12)
    if len(bad):
        i, t = bad[0]
        raise InfeasibleError(
            f"line {curves.labels[i]} day {t}: the guardrail window (max_change "
            f"{rules.max_change}) allows at most {hi[i, t]:,.2f} but floors/commitments need {lo[i, t]:,.2f}"
        )
    per_day = Rules(
        **{
            **rules.to_dict(),
            "budget": rules.spendable / days if rules.spendable is not None else None,
            "reserve": 0.0,
            "reserve_share": 0.0,
            "max_change": None,
        }
    )
    check_feasible(curves, per_day, bounds, objective="max_incremental")
    if rules.spendable < lo.sum() * (1 - 1e-9) - 1e-9:
        need = (lo.sum() + rules.reserve) / (1 - rules.reserve_share)
        raise InfeasibleError(
            f"the daily lower bounds (floors, commitments, guardrail from the history) sum to "
            f"{lo.sum():,.2f} over {days} days, above the budget {rules.spendable:,.2f}; binding "
            f"rule: {'guardrail (max_change)' if band is not None else 'line_floors'}; the smallest "
            f"feasible budget is {need:,.2f}"
        )
    if (
        rules.budget_mode == "eq"
        and np.isfinite(hi).all()
        and hi.sum() < rules.spendable * (1 - 1e-9)
    ):
        raise InfeasibleError(
            f"the daily upper bounds (ceilings, guardrail) sum to {hi.sum():,.2f} over {days} days, "
            f"below the budget {rules.spendable:,.2f} that budget_mode 'eq' must spend"
        )

    # Starting adstock: the history run through the recursion from its first day.
    lam = np.array([c.decay for c in curves])
    a0 = history[:, 0].copy()
    for t in range(1, history.shape[1]):
        a0 = (1 - lam) * history[:, t] + lam * a0
    refs = [
        c.max_spend
        or (cur[i] if np.isfinite(cur[i]) and cur[i] > 0 else None)
        or rules.budget / days / n
        for i, c in enumerate(curves)
    ]
    cs = np.array([scaling(c, r) for c, r in zip(curves, refs)])
    coef, scale = cs[:, 0], cs[:, 1]
    if calendar is not None:
        calendar.check(curves)
    mult = calendar.multipliers(curves, days) if calendar is not None else np.ones((n, days))

    structured_reason = _structured_blocker(curves, rules, coef[:, None] * mult, lo, hi, band)
    s_lines = [c.label for c in curves if not c.is_concave]
    if s_lines:
        if structured_reason or solver.lower() not in ("structured", "auto"):
            why = structured_reason or f"solver {solver} takes concave (DCP) curves only"
            raise ConfigError(
                f"line {s_lines[0]}: S-shaped Hill curve in a daily plan needs the structured solver, "
                f"which does not apply here: {why}"
            )
        return plan_s_curves(
            curves, rules, coef, scale, mult, lam, a0, lo, hi, band, history, cur, calendar
        )
    if solver.lower() == "structured" and structured_reason:
        raise ConfigError(
            f"solver 'structured' does not apply here: {structured_reason}; use --solver CLARABEL"
        )
    fallback = ""
    if solver.lower() in ("structured", "auto") and not structured_reason:
        try:
            return _plan_structured(
                curves, rules, coef, scale, mult, lam, a0, lo, hi, band, history, cur, calendar
            )
        except _Stalled as exc:
            if solver.lower() == "structured":
                raise InfeasibleError(f"{exc}; retry with --solver CLARABEL") from None
            fallback = f"; {exc}, solved by Clarabel instead"
    if solver.lower() == "auto":
        solver = "CLARABEL"

    x = cp.Variable((n, days), nonneg=True, name="spend")
    w = cp.Variable((n, days), nonneg=True, name="scaled_adstock")  # adstock / scale
    lam_c, keep = lam[:, None], (1 - lam)[:, None] / scale[:, None]
    cons: dict[str, cp.Constraint] = {}
    cons["adstock_start"] = w[:, 0] == cp.multiply(keep[:, 0], x[:, 0]) + lam * a0 / scale
    if days > 1:
        cons["adstock"] = w[:, 1:] == cp.multiply(
            np.repeat(keep, days - 1, 1), x[:, 1:]
        ) + cp.multiply(np.repeat(lam_c, days - 1, 1), w[:, :-1])
    budget_p = cp.Parameter(nonneg=True, name="budget")
    cons.update(
        spend_constraints(
            x,
            lower=lo,
            upper=hi,
            budget=budget_p,
            budget_mode=rules.budget_mode,
            market=market_matrix(curves, rules)[:2] if rules.market_budgets else None,
            group=group_matrix(curves, rules)[:3] if rules.group_budgets else None,
        )
    )
    if band is not None and days > 1:
        cons.update(guardrail_constraints(x, band))
    weights = coef[:, None] * mult
    objective = concave_response(w, list(structure_key(curves)), weights)
    problem = cp.Problem(cp.Maximize(objective), list(cons.values()))
    budget_p.value = max(rules.spendable, 0.0)
    t0 = time.perf_counter()
    try:
        solve_robust(problem, solver, _DAILY_OPTIONS if solver.upper() == "CLARABEL" else {})
    except cp.error.SolverError as exc:
        raise InfeasibleError(f"solver {solver} failed on the daily plan ({exc})") from None
    elapsed = time.perf_counter() - t0
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE) or x.value is None:
        raise InfeasibleError(
            f"the daily plan is infeasible under: {', '.join(sorted({rule_name(k) for k in cons}))}"
        )
    spend = np.maximum(x.value, 0.0)
    if band is not None:
        spend = _project_guardrail(spend, lo, hi)
    dual = cons["total_budget"].dual_value
    guarded = np.zeros(n, dtype=bool)
    for name, c in cons.items():
        if name.startswith("guardrail") and c.dual_value is not None:
            guarded |= np.abs(c.dual_value).max(axis=1) > 1e-7
    plan = _tabulate(
        curves,
        rules,
        spend,
        history,
        a0,
        mult,
        lam,
        cur,
        None if dual is None else float(abs(dual)),
        guarded,
        problem.status,
        elapsed,
        calendar,
        solver,
        lo,
        hi,
    )
    plan.method += fallback
    return plan


def _structured_blocker(
    curves: CurveSet,
    rules: Rules,
    weights: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    band: np.ndarray | None,
) -> str:
    """Why the structured solver cannot take this plan ('' if it can)."""
    if rules.group_budgets:
        return "group budgets couple lines day by day"
    odd = next((c for c in curves if c.form not in SUPPORTED), None)
    if odd is not None:
        return f"line {odd.label} has form {odd.form}"
    # A linear line is flat in the direction of moving its spend between days: its block of the
    # Newton system is singular but for the barrier, which the per-line elimination cannot take.
    flat = next(
        (
            c
            for c in curves
            if c.form == "linear" or (c.form == "power" and float(c.params["exponent"]) >= 1)
        ),
        None,
    )
    if flat is not None:
        return f"line {flat.label} has a linear curve"
    room = hi.min(axis=1) - lo.max(axis=1)
    if not (room > 0).all():
        i = int(np.argmin(room))
        return f"line {curves.labels[i]} has no constant spend strictly inside its floors, ceilings and guardrail box"
    if (weights < 0).any():
        return "a curve has a negative coefficient"
    if band is not None and not (band > 0).all():
        return "a guardrail band is zero"
    if not rules.spendable or rules.spendable <= 0:
        return "the budget is zero"
    return ""


class _Stalled(RuntimeError):
    """The structured solver stopped short of the optimum (numerically degenerate plan)."""


#: Memory of the structured solver per line and day, measured (benchmarks/bench_allocation.py --scale:
#: 139 MiB peak at 1,520 lines x 28 days, growing linearly) with a margin for temporaries.
BYTES_PER_LINE_DAY = 4096
#: The largest daily plan taken: lines x days. The cvxpy path (group budgets, a named solver) needs
#: far more memory per line-day (its canonicalisation), so it has its own, smaller limit.
MAX_LINE_DAYS = 500_000
MAX_LINE_DAYS_CVXPY = 60_000


def check_size(lines: int, days: int, *, structured: bool = True) -> None:
    """Refuse a daily plan past the size limit, naming it, instead of running out of memory."""
    limit = MAX_LINE_DAYS if structured else MAX_LINE_DAYS_CVXPY
    if lines * days > limit:
        need = lines * days * BYTES_PER_LINE_DAY / 2**30
        raise ConfigError(
            f"daily plan of {lines:,} lines x {days} days = {lines * days:,} line-days is past the limit "
            f"of {limit:,} line-days ({'structured solver' if structured else 'cvxpy path'}; about "
            f"{need:.1f} GiB for the structured solver): plan fewer days or split the markets"
        )


def _market_rows(
    curves: CurveSet, rules: Rules
) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Each line's budgeted market (index, -1 for none) and the markets' daily caps."""
    if not rules.market_budgets:
        return None, None, []
    mat, caps, markets = market_matrix(curves, rules)
    idx = np.where(mat.any(axis=0), mat.argmax(axis=0), -1)
    return idx, caps, markets


def _solve_structured(curves, rules, coef, scale, mult, lam, a0, lo, hi, band, cur, tangent=None):
    n, days = mult.shape
    reference = np.array(
        [
            cur[i] if np.isfinite(cur[i]) and cur[i] > 0 else rules.spendable / days / n
            for i in range(n)
        ]
    )
    shapes = np.array(
        [c.shape if c.form == "hill" else float(c.params.get("exponent", 1.0)) for c in curves]
    )
    market, caps, _ = _market_rows(curves, rules)
    # The same margin as the cvxpy build: the reported plan stays inside the band, not only within tolerance.
    t0 = time.perf_counter()
    try:
        sol = solve_daily(
            forms=[c.form for c in curves],
            shapes=shapes,
            weights=coef[:, None] * mult,
            scale=scale,
            decay=lam,
            start_adstock=a0,
            lower=lo,
            upper=hi,
            band=None if band is None else band * (1 - 1e-6),
            window=WINDOW,
            budget=float(rules.spendable),
            budget_mode=rules.budget_mode,
            reference=reference,
            market=market,
            market_caps=caps,
            tangent=tangent,
        )
    except ValueError as exc:  # no strictly feasible start
        raise InfeasibleError(f"the daily plan has no strictly feasible point: {exc}") from None
    elapsed = time.perf_counter() - t0
    if sol.status != "optimal":
        raise _Stalled(
            f"the structured solver stopped after {sol.iterations} iterations short of the optimum "
            f"(relative gap {sol.gap:.1e})"
        )
    return sol, _project_guardrail(np.maximum(sol.spend, 0.0), lo, hi), elapsed


def _finish(curves, rules, sol, spend, elapsed, history, a0, mult, lam, cur, calendar, lo, hi):
    plan = _tabulate(
        curves,
        rules,
        spend,
        history,
        a0,
        mult,
        lam,
        cur,
        sol.budget_dual,
        sol.guardrail_dual > 1e-7,
        "optimal",
        elapsed,
        calendar,
        "liftlab structured IPM",
        lo,
        hi,
    )
    if sol.market_dual is not None:
        _, caps, markets = _market_rows(curves, rules)
        for m, d, cap in zip(markets, sol.market_dual, caps):
            if d > 1e-7:
                plan.binding.append(
                    {"constraint": "market_budgets", "market": m, "value": float(cap)}
                )
    plan.method = f"convex (daily, adstock; structured interior point, {sol.iterations} iterations)"
    plan.gap = sol.gap
    return plan


def _plan_structured(
    curves, rules, coef, scale, mult, lam, a0, lo, hi, band, history, cur, calendar
):
    sol, spend, elapsed = _solve_structured(
        curves, rules, coef, scale, mult, lam, a0, lo, hi, band, cur
    )
    return _finish(
        curves, rules, sol, spend, elapsed, history, a0, mult, lam, cur, calendar, lo, hi
    )


def plan_s_curves(
    curves,
    rules,
    coef,
    scale,
    mult,
    lam,
    a0,
    lo,
    hi,
    band,
    history,
    cur,
    calendar,
    *,
    tolerance: float = 1e-3,
    pwl_pieces: int = 40,
) -> TimePlan:
    r"""The daily plan with S-shaped Hill curves, and a certificate of how far it can be from the optimum.

    1. The guardrail and the bounds imply a lowest adstock :math:`a^-_i` for every line over the
       horizon (:func:`allocation.constraints.implied_bounds`). A line whose :math:`a^-_i` lies
       past its inflection point is concave wherever the plan can take it: the problem is convex
       as it is (certificate ``concave_in_band``), solved to the interior-point gap.
    2. Otherwise each such line's curve is replaced by its concave envelope on
       :math:`[a^-_i, \infty)` (:func:`causal.response.envelope_tangent`); the envelope problem
       is convex and its optimum bounds the true optimum from above. Its plan, and the plan the
       interior-point method reaches on the true curves, are feasible; the better one is kept
       and ``gap = (bound - outcome) / bound`` (certificate ``concave_envelope``).
    3. If that gap exceeds ``tolerance`` and the case is small (S-lines x days x pieces binaries
       within :data:`allocation.daily_pwl.MAX_BINARIES`), the mixed-integer piecewise-linear
       model (:func:`allocation.daily_pwl.solve_daily_pwl`) adds its plan and its bound.
    """
    n, days = mult.shape
    s_idx = np.flatnonzero([not c.is_concave for c in curves])
    ilo, _ = implied_bounds(lo, hi, band)
    a_lo = R.geometric_carry(ilo, lam, a0).min(axis=1)
    tangent = np.zeros(n)
    s_params = {
        k: np.array([curves.curves[i].params.get(k, 1.0) for i in s_idx])
        for k in ("beta", "half_saturation", "shape")
    }
    xt = R.envelope_tangent("hill", s_params, a_lo[s_idx])  # all S-lines at once
    out_of_band = xt > a_lo[s_idx] * (1 + 1e-12)
    tangent[s_idx[out_of_band]] = xt[out_of_band] / scale[s_idx[out_of_band]]
    in_band = [curves.labels[i] for i in s_idx[~out_of_band]]
    weights = coef[:, None] * mult
    labels = [curves.labels[i] for i in s_idx]
    if not tangent.any():
        sol, spend, elapsed = _solve_structured(
            curves, rules, coef, scale, mult, lam, a0, lo, hi, band, cur
        )
        plan = _finish(
            curves, rules, sol, spend, elapsed, history, a0, mult, lam, cur, calendar, lo, hi
        )
        plan.method = f"S-curves concave in their guardrail band; {plan.method}"
        plan.certificate = {
            "kind": "concave_in_band",
            "s_shaped_lines": labels,
            "lines_in_band": in_band,
            "gap": plan.gap,
        }
        return plan

    forms = np.array([SUPPORTED.index(c.form) for c in curves])
    shapes = np.array(
        [c.shape if c.form == "hill" else float(c.params.get("exponent", 1.0)) for c in curves]
    )

    def outcome(spend: np.ndarray, envelope: bool) -> float:
        z = np.maximum(R.geometric_carry(spend, lam, a0) / scale[:, None], 0.0)
        return float(
            (weights * curve_terms(forms, shapes, z, tangent if envelope else None)[0]).sum()
        )

    env_sol, env_spend, t_env = _solve_structured(
        curves, rules, coef, scale, mult, lam, a0, lo, hi, band, cur, tangent=tangent
    )
    bound = outcome(env_spend, True) * (1 + env_sol.gap)
    candidates = [(outcome(env_spend, False), env_sol, env_spend, "envelope plan")]
    t_local = 0.0
    try:
        if candidates[0][0] >= bound * (1 - tolerance):
            raise _Stalled("the envelope plan is within tolerance")  # no second solve needed
        loc_sol, loc_spend, t_local = _solve_structured(
            curves, rules, coef, scale, mult, lam, a0, lo, hi, band, cur
        )
        candidates.append(
            (outcome(loc_spend, False), loc_sol, loc_spend, "interior point on the true curves")
        )
    except (_Stalled, InfeasibleError):
        pass
    binaries = len(s_idx) * days * (pwl_pieces - 1)
    if max(c[0] for c in candidates) < bound * (1 - tolerance) and binaries <= MAX_BINARIES:
        # Small case: the mixed-integer piecewise-linear model, whose bound may also be tighter.
        t0 = time.perf_counter()
        ref = solve_daily_pwl(
            curves,
            lo=lo,
            hi=hi,
            band=None if band is None else band * (1 - 1e-6),
            decay=lam,
            start=a0,
            mult=mult,
            budget=float(rules.spendable),
            budget_mode=rules.budget_mode,
            rules=rules,
            pieces=pwl_pieces,
        )
        t_local += time.perf_counter() - t0
        bound = min(bound, ref.upper_bound)
        candidates.append(
            (ref.outcome, env_sol, ref.spend, f"MILP on a {pwl_pieces}-piece linear form")
        )
    value, sol, spend, which = max(candidates, key=lambda t: t[0])
    gap = max(0.0, (bound - value) / max(abs(bound), 1e-300))
    plan = _finish(
        curves, rules, sol, spend, t_env + t_local, history, a0, mult, lam, cur, calendar, lo, hi
    )
    plan.method = (
        f"S-curves: concave envelope bound, feasible plan from the {which} "
        f"(structured interior point)"
    )
    plan.gap = gap
    plan.certificate = {
        "kind": "concave_envelope",
        "s_shaped_lines": labels,
        "lines_in_band": in_band,
        "upper_bound": bound,
        "objective": value,
        "gap": gap,
        "within_tolerance": bool(gap <= tolerance),
    }
    return plan


def _project_guardrail(spend: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    # Interior-point solutions sit within ~1e-10 of the bounds; clip to the box so a
    # reported plan never exceeds a guardrail bound by rounding.
    return np.minimum(np.maximum(spend, lo), hi)


def _spend_list(v: Any, where: str, key: str, *, allow_empty: bool = False) -> list[float]:
    if not isinstance(v, list) or (not v and not allow_empty):
        raise DataError(
            f"{where}: key '{key}' must be a {'' if allow_empty else 'non-empty '}list of daily spends, "
            f"got {type(v).__name__}"
        )
    for j, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x) or x < 0:
            raise DataError(
                f"{where}: key '{key}[{j}]' must be a finite spend >= 0, got {json.dumps(x)}"
            )
    return v


def check_previous_plan(previous: Any, source: str = "previous plan") -> dict[tuple, dict]:
    """Validate a plan.json written by ``allocate --days``; its lines by ``(name, market)``.

    Every error names the file and the key: a top-level array, a line that is not an object
    or has no ``name``, a ``daily_spend`` that is not a list of finite spends >= 0, lines of
    different lengths, a duplicated line.
    """
    if not isinstance(previous, dict):
        raise DataError(
            f"{source}: expected a JSON object written by allocate --days, got {type(previous).__name__}"
        )
    lines = previous.get("lines")
    if not isinstance(lines, list) or not lines:
        raise DataError(
            f"{source}: key 'lines' must be a non-empty list (write the plan with allocate --days)"
        )
    out: dict[tuple, dict] = {}
    length = None
    for i, ln in enumerate(lines):
        where = f"{source}: lines[{i}]"
        if not isinstance(ln, dict):
            raise DataError(
                f"{where}: expected an object with 'name' and 'daily_spend', got {type(ln).__name__}"
            )
        if not isinstance(ln.get("name"), str) or not ln["name"]:
            raise DataError(f"{where}: key 'name' must be a non-empty string")
        if ln.get("market") is not None and not isinstance(ln["market"], str):
            raise DataError(f"{where}: key 'market' must be a string or null")
        if "daily_spend" not in ln:
            raise DataError(f"{where}: no key 'daily_spend' (write the plan with allocate --days)")
        _spend_list(ln["daily_spend"], where, "daily_spend")
        if ln.get("history") is not None:
            _spend_list(ln["history"], where, "history", allow_empty=True)
        if length is not None and len(ln["daily_spend"]) != length:
            raise DataError(
                f"{where}: key 'daily_spend' has {len(ln['daily_spend'])} days, lines[0] has {length}"
            )
        length = len(ln["daily_spend"])
        key = (ln["name"], ln.get("market"))
        if key in out:
            raise DataError(f"{where}: duplicates line {ln['name']}/{ln.get('market')}")
        out[key] = ln
    if previous.get("launch_calendar") is not None and not isinstance(
        previous["launch_calendar"], (dict, list)
    ):
        raise DataError(f"{source}: key 'launch_calendar' must be an object or null")
    if previous.get("constraints") is not None and not isinstance(previous["constraints"], dict):
        raise DataError(f"{source}: key 'constraints' must be an object")
    if previous.get("max_change") is not None:
        mc = previous["max_change"]
        if (
            isinstance(mc, bool)
            or not isinstance(mc, (int, float))
            or not np.isfinite(mc)
            or mc < 0
        ):
            raise DataError(
                f"{source}: key 'max_change' must be a finite number >= 0, got {json.dumps(mc)}"
            )
    return out


def replan(
    previous: dict,
    curves: CurveSet,
    *,
    elapsed: int = 1,
    actual: np.ndarray | None = None,
    days: int | None = None,
    budget: float | None = None,
    rules: Rules | None = None,
    solver: str = "auto",
    source: str = "previous plan",
) -> TimePlan:
    """Re-plan from yesterday's plan (a plan.json dict) with refreshed curves.

    The first ``elapsed`` days of the previous plan are done (their planned spend,
    or ``actual`` spend of shape ``(lines, elapsed)``); they join the history so the
    rolling guardrail windows reach back into them. The new plan covers the
    previous plan's remaining days (or ``days``) with the previous plan's
    remaining spend as budget (or ``budget``), and the launch calendar shifted.
    """
    by_label = check_previous_plan(previous, source)
    sched, hist = [], []
    for c in curves:
        ln = by_label.get((c.name, c.market))
        if ln is None:
            raise DataError(
                f"{source}: no line {c.label}; re-plan needs the same lines as yesterday's plan"
            )
        sched.append(ln["daily_spend"])
        hist.append(ln.get("history") or [])
    sched = np.array(sched, dtype=float)
    if len({len(h) for h in hist}) > 1:
        raise DataError(f"{source}: key 'history' has different lengths across lines")
    hist = [np.asarray(h, dtype=float) for h in hist]
    prev_days = sched.shape[1]
    if not 1 <= elapsed < prev_days + 1:
        raise ConfigError(
            f"elapsed must be between 1 and the previous plan's {prev_days} days, got {elapsed}"
        )
    done = (
        sched[:, :elapsed]
        if actual is None
        else np.asarray(actual, dtype=float).reshape(len(curves), elapsed)
    )
    history = np.concatenate([np.array(hist, dtype=float).reshape(len(curves), -1), done], axis=1)[
        :, -(WINDOW - 1) :
    ]
    remaining = prev_days - elapsed
    days = days or remaining
    if days < 1:
        raise ConfigError("the previous plan has no days left; give --days")
    if budget is None:
        per_day = sched.sum() / prev_days
        budget = float(
            sched[:, elapsed : elapsed + days].sum() + per_day * max(0, days - remaining)
        )
    if rules is None:
        try:
            rules = Rules(**(previous.get("constraints") or {})).validate(
                f"{source}: key 'constraints'"
            )
        except TypeError as exc:
            raise DataError(f"{source}: key 'constraints' has an unknown rule ({exc})") from None
    rules = Rules(**rules.to_dict())
    rules.budget = budget
    if previous.get("max_change") is not None and rules.max_change is None:
        rules.max_change = previous["max_change"]
    cal = previous.get("launch_calendar")
    calendar = (
        LaunchCalendar.from_dict(cal, source=f"{source}: key 'launch_calendar'").shifted(elapsed)
        if cal
        else None
    )
    return plan_days(curves, rules, days=days, calendar=calendar, history=history, solver=solver)
