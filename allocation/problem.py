"""Building the static allocation problem once, in DCP and DPP form.

Each line's spend is written ``x = scale * z`` with a scaled variable ``z`` so
every concave curve becomes ``coef * g(z)`` with a fixed concave ``g``, the unit
curve of :mod:`causal.response` (which also gives its exact DCP form).

``coef`` and ``scale`` are non-negative :class:`cvxpy.Parameter` vectors, so a
new sample of curves, a budget sweep or refreshed floors only set ``.value``
and solve again (the DPP rules: a parameter multiplies only parameter-free
expressions). Shapes and exponents are structural (``cp.power`` needs a
constant), so lines are grouped by them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from allocation.constraints import spend_constraints
from allocation.curves import Curve, CurveSet
from causal import response as R


def scaling(curve: Curve, reference: float) -> tuple[float, float]:
    """``(coef, scale)`` such that the curve is ``coef * g(x / scale)`` (:func:`causal.response.scaling`)."""
    return curve.scaling(reference)


def structure_key(curves: CurveSet) -> tuple:
    """What fixes the cvxpy expression tree: forms with their shapes or exponents."""
    return tuple(c.structure for c in curves)


def concave_response(z: cp.Expression, keys: list[tuple], coef: cp.Expression) -> cp.Expression:
    """Sum of ``coef_i * g_i(z_i)`` over the lines: :func:`causal.response.cvx_response`.

    Raises :class:`ValueError` (:class:`causal.response.NotConcaveError`) for an S-shaped line.
    """
    return R.cvx_response(z, keys, coef)


@dataclass
class StaticProblem:
    """The static allocation problem, built once; ``params`` are set per solve.

    Attributes
    ----------
    problem : cvxpy.Problem
    params : dict of name -> cvxpy.Parameter
        ``coef``, ``scale``, ``budget``, ``floor``, ``ceiling``, ``market_cap``,
        ``group_cap``, ``group_floor``, ``target``.
    constraints : dict of name -> cvxpy.Constraint
        Keyed by meaning: ``total_budget``, ``line_floors``, ``line_ceilings``,
        ``market_budgets``, ``group_budgets``, ``group_minimums``, ``incremental_target``.
    spend : cvxpy.Expression
        ``scale * z``, the spend per line.
    """

    problem: cp.Problem
    params: dict[str, cp.Parameter]
    constraints: dict[str, cp.Constraint]
    spend: cp.Expression
    response: cp.Expression
    ceiling_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, int))


def build_static(
    keys: list[tuple],
    *,
    objective: str,
    budget_mode: str,
    ceiling_idx: np.ndarray,
    market_matrix: np.ndarray | None,
    group_matrix: np.ndarray | None,
    has_budget: bool,
) -> StaticProblem:
    """Build the static problem for lines with forms ``keys``.

    ``objective`` is ``max_incremental`` (maximise ``sum coef g``),
    ``max_profit`` (maximise ``sum coef g - sum x``: ``coef`` then holds value
    times the curve coefficient, so no two parameters multiply) or
    ``min_spend`` (minimise ``sum x`` with ``sum coef g >= target``).
    """
    n = len(keys)
    z = cp.Variable(n, nonneg=True, name="z")
    coef = cp.Parameter(n, nonneg=True, name="coef")
    scale = cp.Parameter(n, pos=True, name="scale")
    floor = cp.Parameter(n, nonneg=True, name="floor")
    spend = cp.multiply(scale, z)
    resp = concave_response(z, keys, coef)
    params = {"coef": coef, "scale": scale, "floor": floor}
    ceiling = None
    if len(ceiling_idx):
        ceiling = params["ceiling"] = cp.Parameter(len(ceiling_idx), nonneg=True, name="ceiling")
    if has_budget:
        params["budget"] = cp.Parameter(nonneg=True, name="budget")
    market = group = None
    if market_matrix is not None and len(market_matrix):
        params["market_cap"] = cp.Parameter(market_matrix.shape[0], nonneg=True, name="market_cap")
        market = (market_matrix, params["market_cap"])
    if group_matrix is not None and len(group_matrix):
        params["group_cap"] = cp.Parameter(group_matrix.shape[0], nonneg=True, name="group_cap")
        params["group_floor"] = cp.Parameter(group_matrix.shape[0], nonneg=True, name="group_floor")
        group = (group_matrix, params["group_cap"], params["group_floor"])
    cons = spend_constraints(
        spend,
        lower=floor,
        upper=ceiling,
        upper_idx=np.asarray(ceiling_idx, dtype=int),
        budget=params.get("budget"),
        budget_mode=budget_mode,
        market=market,
        group=group,
    )
    if objective == "min_spend":
        params["target"] = cp.Parameter(nonneg=True, name="target")
        cons["incremental_target"] = resp >= params["target"]
        obj = cp.Minimize(cp.sum(spend))
    elif objective == "max_profit":
        obj = cp.Maximize(resp - cp.sum(spend))
    else:
        obj = cp.Maximize(resp)
    problem = cp.Problem(obj, list(cons.values()))
    return StaticProblem(problem, params, cons, spend, resp, np.asarray(ceiling_idx, dtype=int))


def solve_robust(problem: cp.Problem, solver: str, options: dict | None = None) -> None:
    """Solve; if Clarabel stalls numerically, retry with shorter interior-point steps.

    A degenerate optimum (many guardrail constraints active at once) can make
    Clarabel's default step fraction (0.99) stall; 0.9 and then 0.8 recover it.
    A failure after the retries propagates as :class:`cvxpy.error.SolverError`.
    """
    options = dict(options or {})
    attempts = [options]
    if solver.upper() == "CLARABEL":
        attempts += [{**options, "max_step_fraction": 0.9}, {**options, "max_step_fraction": 0.8}]
    for k, opts in enumerate(attempts):
        try:
            with warnings.catch_warnings():
                # An inaccurate solve is retried below, and its status is reported if it stays inaccurate.
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                problem.solve(solver=solver, **opts)
        except cp.error.SolverError:
            if k == len(attempts) - 1:
                raise
            continue
        if (
            problem.status not in (cp.OPTIMAL_INACCURATE, cp.INFEASIBLE_INACCURATE)
            or k == len(attempts) - 1
        ):
            return
