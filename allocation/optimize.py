"""Static budget allocation on response curves: the global optimum under named constraints.

With concave curves (exp, log, power with exponent <= 1, Hill with shape <= 1)
the problem is convex and solved exactly in DCP form by Clarabel; the answer
satisfies the KKT conditions (equal marginal returns across lines not at a
bound), so it is the global optimum, unlike a gradient method started from
the current allocation (SLSQP, as Robyn and PyMC-Marketing use). S-shaped
Hill curves (shape > 1) are not concave: they go to a mixed-integer
piecewise-linear model solved by HiGHS (:mod:`allocation.sshape`), whose gap to
the true optimum is bounded and reported. Nothing is ever a silent local optimum.

References
----------
Boyd, S. & Vandenberghe, L. (2004). *Convex Optimization*, ch. 5 (KKT).
Agrawal, A. et al. (2019). Differentiable convex optimization layers (DPP). NeurIPS.
"""

from __future__ import annotations

import time

import cvxpy as cp
import numpy as np

from allocation.business_rules import (
    MAX_AMOUNT,
    Bounds,
    Rules,
    check_feasible,
    group_matrix,
    line_bounds,
    market_matrix,
)
from allocation.curves import CurveSet
from allocation.plans import Plan, make_plan
from allocation.problem import StaticProblem, build_static, scaling, solve_robust, structure_key
from allocation.sshape import solve_pwl
from causal.errors import ConfigError, InfeasibleError

OBJECTIVES = ("max_incremental", "min_spend", "max_profit")
__all__ = ["OBJECTIVES", "Allocator", "Plan", "allocate", "make_plan", "solver_options"]


def solver_options(solver: str) -> dict:
    """Tighter tolerances than the defaults for Clarabel, so marginal returns agree to ~1e-6."""
    if solver.upper() == "CLARABEL":
        return {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "max_iter": 400}
    return {}


class Allocator:
    """Static allocator: builds the cvxpy problem once per curve structure and re-solves with parameters.

    Parameters
    ----------
    objective : {"max_incremental", "min_spend", "max_profit"}
    solver : str, default="CLARABEL"
    s_curves : {"milp", "envelope", "error"}, default="milp"
        How S-shaped Hill curves are handled (see :mod:`allocation.sshape`).
    breakpoints : int, default=120
        Breakpoints per line of the piecewise-linear model.
    """

    def __init__(
        self,
        objective: str = "max_incremental",
        *,
        solver: str = "CLARABEL",
        s_curves: str = "milp",
        breakpoints: int = 120,
    ) -> None:
        self.objective = objective
        self.solver = solver
        self.s_curves = s_curves
        self.breakpoints = breakpoints
        self._cache: dict[tuple, StaticProblem] = {}

    def problem_for(self, curves: CurveSet, rules: Rules, bounds: Bounds) -> StaticProblem:
        """The (cached) parametrised problem for this structure."""
        ceil_idx = np.flatnonzero(np.isfinite(bounds.upper))
        mmat = market_matrix(curves, rules)[0] if rules.market_budgets else None
        gmat = group_matrix(curves, rules)[0] if rules.group_budgets else None
        key = (
            structure_key(curves),
            self.objective,
            rules.budget_mode,
            tuple(ceil_idx),
            None if mmat is None else mmat.tobytes(),
            None if gmat is None else gmat.tobytes(),
            rules.budget is not None,
        )
        if key not in self._cache:
            self._cache[key] = build_static(
                [k for k in structure_key(curves)],
                objective=self.objective,
                budget_mode=rules.budget_mode,
                ceiling_idx=ceil_idx,
                market_matrix=mmat,
                group_matrix=gmat,
                has_budget=rules.budget is not None,
            )
        return self._cache[key]

    def solve(
        self,
        curves: CurveSet,
        rules: Rules,
        *,
        target: float | None = None,
        value_per_signup: float | None = None,
    ) -> Plan:
        """Validate, pre-check feasibility, solve, and return the plan."""
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        rules.validate()
        for key, v in (("target", target), ("value_per_signup", value_per_signup)):
            if v is not None and (isinstance(v, bool) or not np.isfinite(v) or abs(v) > MAX_AMOUNT):
                raise ConfigError(f"{key} must be a finite number up to {MAX_AMOUNT:g}, got {v!r}")
        if self.objective == "min_spend":
            if target is None or target < 0:
                raise ConfigError(
                    "objective min_spend needs a target (the incremental outcome to reach) >= 0, "
                    f"got {target!r}"
                )
        elif rules.budget is None:
            cur = curves.current()
            if np.isnan(cur).any():
                raise ConfigError(
                    f"objective {self.objective} needs a budget (it defaults to the current spend, "
                    f"but line {curves.labels[int(np.flatnonzero(np.isnan(cur))[0])]} has no "
                    "current_spend)"
                )
            rules.budget = float(cur.sum())
        if self.objective == "max_profit" and (value_per_signup is None or value_per_signup <= 0):
            raise ConfigError(
                f"objective max_profit needs a value per signup > 0, got {value_per_signup!r}"
            )
        bounds = line_bounds(curves, rules)
        check_feasible(curves, rules, bounds, objective=self.objective, target=target)
        if not all(c.is_concave for c in curves):
            return solve_pwl(
                curves,
                rules,
                bounds,
                objective=self.objective,
                target=target,
                value_per_signup=value_per_signup,
                mode=self.s_curves,
                breakpoints=self.breakpoints,
            )
        sp = self.problem_for(curves, rules, bounds)
        self._set_params(sp, curves, rules, bounds, target, value_per_signup)
        t0 = time.perf_counter()
        try:
            solve_robust(sp.problem, self.solver, solver_options(self.solver))
        except cp.error.SolverError as exc:
            raise InfeasibleError(
                f"solver {self.solver} failed ({exc}); check the constraints"
            ) from None
        elapsed = time.perf_counter() - t0
        status = sp.problem.status
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise InfeasibleError(
                "the constraints have no common solution: "
                + ", ".join(sp.constraints)
                + " (no single pair conflicts on its own)"
            )
        if status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
            raise ConfigError("the problem is unbounded: give a budget or ceilings (max_spend)")
        if sp.spend.value is None:
            raise InfeasibleError(f"solver returned status {status} without a solution")
        spend = np.maximum(np.asarray(sp.spend.value, dtype=float), 0.0)
        dual = None
        if (
            "total_budget" in sp.constraints
            and sp.constraints["total_budget"].dual_value is not None
        ):
            dual = float(np.abs(sp.constraints["total_budget"].dual_value))
            dual = dual if dual > 1e-9 * max(1.0, float(np.max(sp.params["coef"].value))) else 0.0
            if self.objective == "max_profit":
                dual = dual / value_per_signup  # report in outcome units per unit of spend
        extra = {}
        if (
            self.objective == "min_spend"
            and sp.constraints["incremental_target"].dual_value is not None
        ):
            extra["target_dual"] = float(sp.constraints["incremental_target"].dual_value)
        return make_plan(
            curves,
            rules,
            bounds,
            spend,
            status=status,
            objective=self.objective,
            budget_dual=dual,
            solver=self.solver,
            method="convex",
            gap=0.0,
            seconds=elapsed,
            target=target,
            value_per_signup=value_per_signup,
            extra=extra,
        )

    def _set_params(
        self,
        sp: StaticProblem,
        curves: CurveSet,
        rules: Rules,
        bounds: Bounds,
        target: float | None,
        value_per_signup: float | None,
    ) -> None:
        cur = curves.current()
        refs = [
            c.max_spend
            or (cur[i] if np.isfinite(cur[i]) and cur[i] > 0 else None)
            or (rules.budget or 1.0) / len(curves)
            for i, c in enumerate(curves)
        ]
        cs = np.array([scaling(c, r) for c, r in zip(curves, refs)])
        value = value_per_signup if self.objective == "max_profit" else 1.0
        sp.params["coef"].value = cs[:, 0] * value
        sp.params["scale"].value = cs[:, 1]
        sp.params["floor"].value = bounds.lower
        if "ceiling" in sp.params:
            sp.params["ceiling"].value = bounds.upper[sp.ceiling_idx]
        if "budget" in sp.params:
            sp.params["budget"].value = max(rules.spendable, 0.0)
        if "market_cap" in sp.params:
            sp.params["market_cap"].value = market_matrix(curves, rules)[1]
        if "group_cap" in sp.params:
            _, caps, mins, _ = group_matrix(curves, rules)
            # An absent group maximum is the whole budget (or a large number): parameters cannot hold inf.
            big = rules.budget if rules.budget is not None else 1e15
            sp.params["group_cap"].value = np.where(np.isfinite(caps), caps, big)
            sp.params["group_floor"].value = mins
        if "target" in sp.params:
            sp.params["target"].value = float(target)


def allocate(
    curves: CurveSet,
    *,
    budget: float | None = None,
    objective: str = "max_incremental",
    rules: Rules | None = None,
    target: float | None = None,
    value_per_signup: float | None = None,
    max_change: float | None = None,
    solver: str = "CLARABEL",
    s_curves: str = "milp",
) -> Plan:
    """Allocate a budget across the lines of ``curves``: the public one-call entry point.

    Parameters
    ----------
    curves : CurveSet
    budget : float, optional
        Total spend per period (overrides ``rules.budget``).
    objective : {"max_incremental", "min_spend", "max_profit"}
        Maximise incremental outcome for the budget; minimise spend reaching
        ``target``; or maximise ``value_per_signup * incremental - spend``.
    rules : Rules, optional
        Budget mode, reserve, commitments, market and group budgets, guardrail.
    max_change : float, optional
        Guardrail: ``|spend - current| <= max_change * current`` per line.

    Returns
    -------
    Plan

    Raises
    ------
    ConfigError, InfeasibleError
        Bad options, or constraints that cannot all hold (named).

    Examples
    --------
    >>> from allocation.curves import CurveSet
    >>> cs = CurveSet.from_dict({"channels": [
    ...     {"name": "a", "response": {"form": "log", "beta": 100, "scale": 1000}},
    ...     {"name": "b", "response": {"form": "log", "beta": 100, "scale": 1000}}]})
    >>> round(allocate(cs, budget=2000).lines["spend"].iloc[0])
    1000
    """
    rules = Rules() if rules is None else Rules(**rules.to_dict())
    if budget is not None:
        rules.budget = budget
    if max_change is not None:
        rules.max_change = max_change
    return Allocator(objective, solver=solver, s_curves=s_curves).solve(
        curves, rules, target=target, value_per_signup=value_per_signup
    )
