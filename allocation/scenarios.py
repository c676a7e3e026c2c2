r"""Scenarios: the efficient frontier over budgets, and allocation over samples of the curves.

*Budget sweep.* The static problem is built once (DPP); each budget only sets
the ``budget`` parameter and re-solves. At each budget the dual value of the
total-budget constraint is the marginal return, and its reciprocal the
marginal cost of one more incremental signup.

*Samples of curves.* Calibrated curves are uncertain. Given samples (from a
posterior, or drawn here by perturbing each line's ``beta`` and scale
log-normally), the allocator maximises either the expected outcome
:math:`\frac1S\sum_s R_s(x)` or, risk-averse, its lower-tail conditional
value at risk

.. math:: \mathrm{CVaR}_\tau(R(x)) = \max_t\; t - \frac{1}{\tau S}\sum_s (t - R_s(x))_+ ,

the mean outcome of the worst share :math:`\tau` (``tail``) of samples (Rockafellar &
Uryasev 2000). Both are concave in spend, so the optimum is global. Stability
is reported by solving every sample on its own and comparing each line's
optimal spend with the robust plan.

References
----------
Rockafellar, R. T. & Uryasev, S. (2000). Optimization of conditional value-at-risk. Journal of Risk 2(3).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cvxpy as cp
import numpy as np
import pandas as pd

from allocation.business_rules import (
    Rules,
    check_feasible,
    group_matrix,
    line_bounds,
    market_matrix,
)
from allocation.constraints import spend_constraints
from allocation.curves import CurveSet
from allocation.optimize import Allocator, solver_options
from allocation.problem import concave_response, scaling, solve_robust, structure_key
from causal import response as R
from causal.errors import ConfigError, InfeasibleError
from causal.summary import Summary, fmt_frame, fmt_number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from allocation.plans import Plan, TimePlan


@dataclass
class Frontier:
    """The efficient frontier: best incremental outcome and marginal cost at each budget.

    Attributes
    ----------
    table : pandas.DataFrame
        Per budget: ``budget``, ``total_spend``, ``total_incremental``, ``marginal_return``
        (dual of the budget) and ``marginal_cost`` (1 / marginal return).
    spend : pandas.DataFrame
        Optimal spend per line (columns) at each budget (rows).
    """

    table: pd.DataFrame
    spend: pd.DataFrame
    solve_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": self.table.to_dict("records"),
            "spend": {str(k): v for k, v in self.spend.to_dict("index").items()},
            "timing": {"solve_seconds": self.solve_seconds},
        }

    def summary(self) -> Summary:
        """The frontier's table, numbers readable."""
        cols = ["budget", "status", "total_incremental", "marginal_return", "marginal_cost"]
        return Summary(
            f"Efficient frontier over {len(self.table)} budgets\n{fmt_frame(self.table[cols])}",
            {"frontier": self.table, "spend": self.spend},
        )

    def plot(self, *, ax: Axes | None = None) -> tuple[Figure, Axes]:
        """Incremental outcome against budget, with the marginal cost on a second axis.

        Returns ``(fig, ax)``; never shows.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4))
        else:
            fig = ax.figure
        t = self.table
        ax.plot(t["budget"], t["total_incremental"], marker="o", label="incremental")
        ax.set_xlabel("budget per period")
        ax.set_ylabel("incremental outcome per period")
        ax2 = ax.twinx()
        ax2.plot(
            t["budget"],
            t["marginal_cost"],
            color="C1",
            marker=".",
            label="marginal cost per incremental",
        )
        ax2.set_ylabel("marginal cost per incremental", color="C1")
        ax.set_title("Efficient frontier")
        return fig, ax


def budget_sweep(curves: CurveSet, budgets: np.ndarray, *, rules: Rules | None = None) -> Frontier:
    """Optimal allocation at each budget (one problem, re-solved with the budget parameter)."""
    budgets = np.asarray(budgets, dtype=float)
    if (budgets < 0).any():
        raise ConfigError(f"budget sweep: budgets must be >= 0, got {budgets.min():g}")
    base = Rules() if rules is None else Rules(**rules.to_dict())
    alloc = Allocator("max_incremental")
    rows, spends = [], []
    t0 = time.perf_counter()
    for b in budgets:
        base.budget = float(b)
        try:
            plan = alloc.solve(curves, base)
        except InfeasibleError as exc:
            # A budget the rules cannot meet (e.g. below the guardrail's floors) is a point of the
            # sweep too: reported as infeasible, with the reason, not as a failure of the command.
            rows.append(
                {
                    "budget": float(b),
                    "status": "infeasible",
                    "reason": str(exc),
                    "total_spend": np.nan,
                    "total_incremental": np.nan,
                    "marginal_return": np.nan,
                    "marginal_cost": np.nan,
                }
            )
            spends.append(np.full(len(curves), np.nan))
            continue
        mr = plan.budget_dual
        rows.append(
            {
                "budget": float(b),
                "status": plan.status,
                "reason": None,
                "total_spend": plan.total_spend,
                "total_incremental": plan.total_incremental,
                "marginal_return": mr,
                "marginal_cost": (1.0 / mr) if mr else np.inf,
            }
        )
        spends.append(plan.lines["spend"].to_numpy())
    return Frontier(
        pd.DataFrame(rows),
        pd.DataFrame(spends, index=budgets, columns=curves.labels),
        time.perf_counter() - t0,
    )


def sample_curves(
    curves: CurveSet, n_samples: int, *, cv: float = 0.2, seed: int = 0
) -> list[CurveSet]:
    """Samples of the curves: the file's posterior draws (the first ``n_samples``) when it has them;
    else each line's ``samples`` list (response parameter sets) if every line has one, else log-normal draws.

    The draws multiply ``beta`` and the scale (``half_saturation`` or ``scale``)
    by independent log-normal factors with coefficient of variation ``cv``
    (mean one), from ``numpy.random.default_rng(seed)``.
    """
    if n_samples < 1:
        raise ConfigError(f"n_samples must be >= 1, got {n_samples}")
    if curves.n_draws:
        return [curves.draw(j) for j in range(min(n_samples, curves.n_draws))]
    if all(isinstance(c.extra.get("samples"), list) and c.extra["samples"] for c in curves):
        k = min(len(c.extra["samples"]) for c in curves)
        return [
            curves.with_params(
                [
                    {kk: v for kk, v in c.extra["samples"][s % k].items() if kk != "form"}
                    for c in curves
                ]
            )
            for s in range(n_samples)
        ]
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.log1p(cv**2))
    out = []
    for _ in range(n_samples):
        params = []
        for c in curves:
            p = dict(c.params)
            p["beta"] *= float(rng.lognormal(-(sigma**2) / 2, sigma))
            for key in ("half_saturation", "scale"):
                if key in p:
                    p[key] *= float(rng.lognormal(-(sigma**2) / 2, sigma))
            params.append(p)
        out.append(curves.with_params(params))
    return out


@dataclass
class RobustPlan:
    """An allocation over samples of the curves, and how stable it is.

    Attributes
    ----------
    lines : pandas.DataFrame
        Per line: robust ``spend``, ``current_spend``, the mean and the 5-95% range of
        each sample's own optimal spend, and ``stable_share`` (share of samples whose
        own optimum is within 10% of the robust spend, or 1% of the budget).
    outcomes : numpy.ndarray
        The robust plan's outcome under each sample.
    risk : str
        ``expected`` or ``cvar``.
    tail : float
        The lower-tail share of samples the CVaR averages over (also the quantile reported).
    """

    lines: pd.DataFrame
    outcomes: np.ndarray
    risk: str
    tail: float
    status: str
    budget: float
    per_sample_spend: np.ndarray = field(repr=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        q = np.quantile(self.outcomes, [self.tail, 0.5])
        worst = np.sort(self.outcomes)[: max(1, int(np.ceil(self.tail * len(self.outcomes))))]
        return {
            "risk": self.risk,
            "tail": self.tail,
            "alpha": self.tail,  # the key the plan report reads today; same value as "tail"
            "status": self.status,
            "budget": self.budget,
            "expected_incremental": float(self.outcomes.mean()),
            "median_incremental": float(q[1]),
            "quantile_incremental": float(q[0]),
            "cvar_incremental": float(worst.mean()),
            "n_samples": len(self.outcomes),
            "lines": self.lines.reset_index().to_dict("records"),
        }

    def summary(self) -> Summary:
        """Expected and lower-tail outcome, and each line's robust spend and stability."""
        d = self.to_dict()
        crit = (
            "expected outcome" if self.risk == "expected" else f"CVaR of the worst {self.tail:.0%}"
        )
        cols = ["spend", "current_spend", "expected_incremental", "stable_share"]
        head = (
            f"Plan over {d['n_samples']} curve samples, maximising the {crit}: {self.status}; "
            f"expected incremental {fmt_number(d['expected_incremental'])}, mean of the worst "
            f"{self.tail:.0%} {fmt_number(d['cvar_incremental'])}"
        )
        return Summary(f"{head}\n{fmt_frame(self.lines[cols])}", {"lines": self.lines})

    def plot(self, *, ax: Axes | None = None) -> tuple[Figure, Axes]:
        """Robust spend per line with the range of the samples' own optima.

        Returns ``(fig, ax)``; never shows.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(self.lines))))
        else:
            fig = ax.figure
        y = np.arange(len(self.lines))
        lo = self.lines["sample_spend_p05"].to_numpy()
        hi = self.lines["sample_spend_p95"].to_numpy()
        ax.hlines(y, lo, hi, color="grey", lw=4, alpha=0.5, label="samples' own optima (5-95%)")
        ax.plot(self.lines["spend"], y, "o", label=f"robust plan ({self.risk})")
        ax.set_yticks(y, list(self.lines.index))
        ax.invert_yaxis()
        ax.set_xlabel("spend per period")
        ax.legend()
        return fig, ax


def robust_allocate(
    curves: CurveSet,
    samples: list[CurveSet],
    *,
    budget: float,
    rules: Rules | None = None,
    risk: str = "expected",
    tail: float = 0.1,
    solver: str = "CLARABEL",
) -> RobustPlan:
    """Maximise the expected outcome, or its lower-tail CVaR, over curve samples.

    Parameters
    ----------
    curves : CurveSet
        The nominal curves (bounds, current spend, labels).
    samples : list of CurveSet
        Samples of the curves (:func:`sample_curves`), same lines and forms.
    budget : float
        Total spend per period.
    rules : Rules, optional
    risk : {"expected", "cvar"}, default="expected"
    tail : float, default=0.1
        For ``cvar``: the share of worst samples whose mean outcome is maximised, in (0, 1].
    solver : str, default="CLARABEL"

    Returns
    -------
    RobustPlan
    """
    if risk not in ("expected", "cvar"):
        raise ConfigError(f"risk must be 'expected' or 'cvar', got {risk!r}")
    if not 0 < tail <= 1:
        raise ConfigError(f"the CVaR tail share must be in (0, 1], got {tail}")
    bad = next((c for s in samples for c in s if c.form == "power" and not c.is_concave), None)
    if bad is not None:
        raise ConfigError(
            f"line {bad.label}: power curve with exponent > 1 is convex; use a Hill curve"
        )
    rules = Rules() if rules is None else Rules(**rules.to_dict())
    rules.budget = budget
    rules.validate()
    bounds = line_bounds(curves, rules)
    check_feasible(curves, rules, bounds, objective="max_incremental")
    n, S = len(curves), len(samples)
    # S-shaped lines are kept in their concave part under every sample (spend at or past the largest
    # inflection point), where each sample's curve is the minimum of its chords: a concave, exact-to-
    # the-interpolation model. The other lines keep their exact DCP form.
    s_idx = np.flatnonzero([any(not s.curves[i].is_concave for s in samples) for i in range(n)])
    c_idx = np.setdiff1d(np.arange(n), s_idx)
    lower = bounds.lower.copy()
    for i in s_idx:
        lower[i] = max(lower[i], max(float(s.curves[i].inflection) for s in samples))
    x = cp.Variable(n, nonneg=True, name="spend")
    ref = [c.max_spend or c.current_spend or budget / n for c in curves]
    outcomes = []
    hypo = cp.Variable((S, len(s_idx)), name="s_curve_outcome") if len(s_idx) else None
    pw_cons = []
    forms = [c.form for c in curves]
    for k, s in enumerate(samples):
        if len(s) != n or [c.form for c in s] != forms:
            raise ConfigError(
                f"curve sample {k}: every sample must have the curves' {n} lines with their forms"
            )
        # A posterior draw may move a line's shape or exponent (the structural model averages
        # over a shape grid): each sample's concave lines keep their own exact DCP form.
        own_keys = list(structure_key(s))
        cs = np.array([scaling(c, r) for c, r in zip(s, ref)])
        terms = []
        if len(c_idx):
            terms.append(
                concave_response(
                    cp.multiply(1.0 / cs[c_idx, 1], x[c_idx]),
                    [own_keys[i] for i in c_idx],
                    cs[c_idx, 0],
                )
            )
        for j, i in enumerate(s_idx):
            c = s.curves[i]
            top = bounds.upper[i] if np.isfinite(bounds.upper[i]) else float(rules.spendable)
            pw = R.piecewise(c.form, c.params, lower[i], max(top, lower[i] * (1 + 1e-9) + 1e-9), 24)
            pw_cons.append(hypo[k, j] <= pw.ys[:-1] + cp.multiply(pw.slopes, x[i] - pw.xs[:-1]))
            terms.append(hypo[k, j])
        outcomes.append(cp.sum(cp.hstack(terms)))
    R_ = cp.hstack(outcomes)
    cons = spend_constraints(
        x,
        lower=lower,
        upper=bounds.upper,
        budget=rules.spendable,
        budget_mode=rules.budget_mode,
        market=market_matrix(curves, rules)[:2] if rules.market_budgets else None,
        group=group_matrix(curves, rules)[:3] if rules.group_budgets else None,
    )
    cons["s_curve_model"] = pw_cons
    if risk == "expected":
        obj = cp.sum(R_) / S
    else:
        t = cp.Variable(name="var")
        obj = t - cp.sum(cp.pos(t - R_)) / (tail * S)
    flat = [c for v in cons.values() for c in (v if isinstance(v, list) else [v])]
    problem = cp.Problem(cp.Maximize(obj), flat)
    solve_robust(problem, solver, solver_options(solver))
    if x.value is None or problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise InfeasibleError(f"allocation over samples: solver status {problem.status}")
    spend = np.maximum(np.asarray(x.value), 0.0)
    realised = np.array([s.evaluate(spend).sum() for s in samples])
    # Stability: each sample's own optimum, through one parametrised problem re-solved per sample.
    alloc = Allocator("max_incremental", solver=solver)
    own = np.array([alloc.solve(s, rules).lines["spend"].to_numpy() for s in samples])
    close = np.abs(own - spend) <= np.maximum(0.1 * spend, 0.01 * budget)
    lines = pd.DataFrame(
        {
            "name": curves.names,
            "market": curves.markets,
            "spend": spend,
            "current_spend": curves.current(),
            "expected_incremental": np.mean([s.evaluate(spend) for s in samples], axis=0),
            "sample_spend_mean": own.mean(axis=0),
            "sample_spend_p05": np.quantile(own, 0.05, axis=0),
            "sample_spend_p95": np.quantile(own, 0.95, axis=0),
            "stable_share": close.mean(axis=0),
        },
        index=pd.Index(curves.labels, name="line"),
    )
    return RobustPlan(lines, realised, risk, tail, problem.status, budget, own)


def plan_uncertainty(
    curves: CurveSet, plan: Plan | TimePlan, *, confidence: float = 0.9
) -> dict[str, Any] | None:
    """The plan's outcome and its gain over the current spend under every posterior draw of the curves.

    For a static :class:`~allocation.plans.Plan` the outcome per period; for a
    :class:`~allocation.plans.TimePlan` the outcome over the horizon (adstock from the plan's
    history, the calendar's multipliers), against holding every line at its current spend.
    Returns ``None`` when the curves file has no draws. The interval is the central
    ``confidence`` share of the draws (reported under ``confidence`` and, as before, ``level``).
    """
    n = curves.n_draws
    if not n:
        return None
    cur = curves.current()
    if np.isnan(cur).any():
        return None
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    if hasattr(plan, "schedule"):
        x = plan.schedule.to_numpy()
        days = x.shape[1]
        base = np.repeat(cur[:, None], days, axis=1)
        hist, mult = np.asarray(plan.history, dtype=float), plan.multipliers
        inc, gain = np.empty(n), np.empty(n)
        for j in range(n):
            cj = curves.draw(j)
            decay = np.array([c.decay for c in cj])
            a0 = (
                R.geometric_carry(hist[:, 1:], decay, hist[:, 0])[:, -1]
                if hist.shape[1] > 1
                else hist[:, 0]
            )
            planned = (cj.evaluate_lines(R.geometric_carry(x, decay, a0)) * mult).sum()
            held = (cj.evaluate_lines(R.geometric_carry(base, decay, a0)) * mult).sum()
            inc[j], gain[j] = planned, planned - held
        unit = f"over the {days}-day horizon"
    else:
        spend = plan.lines["spend"].to_numpy(dtype=float)
        inc = curves.draw_values(spend).sum(axis=0)
        gain = inc - curves.draw_values(cur).sum(axis=0)
        unit = "per period"
    return {
        "source": f"posterior draws in {curves.source}",
        "n_draws": n,
        "confidence": confidence,
        "level": confidence,
        "unit": unit,
        "expected_incremental": float(inc.mean()),
        "incremental_interval": np.quantile(inc, q).tolist(),
        "expected_gain": float(gain.mean()),
        "gain_interval": np.quantile(gain, q).tolist(),
        "probability_gain_positive": float((gain > 0).mean()),
    }
