r"""S-shaped Hill curves (shape > 1): a mixed-integer piecewise-linear model, or the concave envelope.

An S-shaped curve is convex below its inflection point, so a convex solver
cannot take it and a gradient method stops at a local optimum. Two explicit
treatments, each with a reported bound on the distance to the true optimum:

``milp`` (default)
    Every line's curve is interpolated at ``K + 1`` breakpoints between its
    lower and upper bound (the incremental formulation of a piecewise-linear
    function; Dantzig 1960). Segments of a concave line fill in order by
    themselves; those of an S-shaped line are forced in order by binaries
    (``delta_k >= width_k * y_k``, ``delta_{k+1} <= width_{k+1} * y_k``). HiGHS solves the
    MILP to optimality (relative MIP gap 1e-9).
``envelope``
    Each S-shaped curve is replaced by its concave envelope (the upper concave
    hull of the breakpoints), a linear programme.

The bound: with :math:`\varepsilon_i = \max_x (f_i(x) - \hat f_i(x))` the largest
amount by which the model under-states line :math:`i`'s curve, every feasible
plan has true outcome at most the model's optimum plus :math:`\sum_i \varepsilon_i`;
the reported ``gap`` is ``(upper bound - true outcome of the plan) / upper bound``.

References
----------
Dantzig, G. B. (1960). On the significance of solving linear programming problems with some integer variables. Econometrica 28(1).
Vielma, J. P., Ahmed, S. & Nemhauser, G. (2010). Mixed-integer models for nonseparable piecewise-linear optimization. Operations Research 58(2).
"""

from __future__ import annotations

import time

import cvxpy as cp
import numpy as np

from allocation.business_rules import Bounds, Rules, group_matrix, market_matrix
from allocation.constraints import spend_constraints
from allocation.curves import Curve, CurveSet
from allocation.plans import Plan, make_plan
from causal import response as R
from causal.errors import ConfigError, InfeasibleError


def _upper_limit(c: Curve, upper: float, rules: Rules) -> float:
    if np.isfinite(upper):
        return float(upper)
    if rules.spendable is not None:
        return float(rules.spendable)
    p = c.params
    if c.form == "hill":  # 99.9% of saturation
        return float(p["half_saturation"]) * 999.0 ** (1.0 / c.shape)
    if c.form == "exp":
        return float(p["scale"]) * np.log(1000.0)
    raise ConfigError(
        f"line {c.label}: give a budget or max_spend so the piecewise-linear model has a range"
    )


concave_envelope = R.concave_envelope


def _pieces(
    c: Curve, lo: float, hi: float, k: int, mode: str
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Breakpoints, model values there, the largest under-statement and over-statement of the true curve."""
    pw = R.piecewise(c.form, c.params, lo, hi, k, envelope=mode == "envelope" and not c.is_concave)
    return pw.xs, pw.ys, pw.under, pw.over


def _solve_model(curves, rules, bounds, pieces, objective, target, value, mode):
    deltas, xs_expr, resp_terms = [], [], []
    cons: dict[str, list] = {"line_floors": [], "line_ceilings": [], "segment_order": []}
    for i, c in enumerate(curves):
        xs, ys, _, _ = pieces[i]
        width = np.diff(xs)
        slope = np.where(width > 0, np.diff(ys) / np.where(width > 0, width, 1.0), 0.0)
        d = cp.Variable(len(width), nonneg=True)
        cons["line_ceilings"].append(d <= width)
        if mode == "milp" and not c.is_concave and len(width) > 1:
            y = cp.Variable(len(width) - 1, boolean=True)
            cons["segment_order"] += [
                d[:-1] >= cp.multiply(width[:-1], y),
                d[1:] <= cp.multiply(width[1:], y),
            ]
        deltas.append(d)
        xs_expr.append(xs[0] + cp.sum(d))
        resp_terms.append(ys[0] + slope @ d)
    spend = cp.hstack(xs_expr)
    resp = cp.sum(cp.hstack(resp_terms))
    named = spend_constraints(
        spend,
        budget=rules.spendable,
        budget_mode=rules.budget_mode,
        market=market_matrix(curves, rules)[:2] if rules.market_budgets else None,
        group=group_matrix(curves, rules)[:3] if rules.group_budgets else None,
    )
    if objective == "min_spend":
        named["incremental_target"] = resp >= target
        obj = cp.Minimize(cp.sum(spend))
    elif objective == "max_profit":
        obj = cp.Maximize(value * resp - cp.sum(spend))
    else:
        obj = cp.Maximize(resp)
    all_cons = list(named.values()) + [c for group in cons.values() for c in group]
    problem = cp.Problem(obj, all_cons)
    is_mip = any(v.attributes.get("boolean") for v in problem.variables())
    opts = {"mip_rel_gap": 1e-9, "output_flag": False} if is_mip else {"output_flag": False}
    problem.solve(solver="HIGHS", **opts)
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE) or spend.value is None:
        raise InfeasibleError("the constraints have no common solution: " + ", ".join(named))
    return np.asarray(spend.value, dtype=float), float(problem.value), problem.status, is_mip, named


def _polish(
    curves: CurveSet, rules: Rules, bounds: Bounds, spend: np.ndarray, objective: str, value: float
) -> np.ndarray:
    """Refine the piecewise-linear optimum on the true curves with a local method started there.

    The mixed-integer model has found the right region (which S-curves to fund past
    their threshold); a local step inside it recovers the interpolation error. The
    refined plan is kept only if it is feasible and better, so the proven bound still holds.
    """
    from scipy.optimize import minimize

    if rules.market_budgets or rules.group_budgets or rules.spendable is None:
        return spend
    n = len(curves)
    hi = np.where(np.isfinite(bounds.upper), bounds.upper, rules.spendable)
    sign = 1.0 if objective == "max_profit" else 0.0

    def f(x):
        return -(value * curves.evaluate(x).sum() - sign * x.sum())

    def g(x):
        return -(value * np.nan_to_num(curves.marginal(x), posinf=1e6) - sign)

    cons = [
        {
            "type": "eq" if rules.budget_mode == "eq" else "ineq",
            "fun": (lambda x: rules.spendable - x.sum()),
            "jac": lambda x: -np.ones(n),
        }
    ]
    res = minimize(
        f,
        spend,
        jac=g,
        method="SLSQP",
        bounds=list(zip(bounds.lower, hi)),
        constraints=cons,
        options={"maxiter": 200, "ftol": 1e-12},
    )
    x = np.clip(res.x, bounds.lower, hi)
    ok = x.sum() <= rules.spendable * (1 + 1e-9) and (
        rules.budget_mode != "eq" or abs(x.sum() - rules.spendable) <= 1e-7 * rules.spendable
    )
    return x if ok and f(x) < f(spend) else spend


def solve_pwl(
    curves: CurveSet,
    rules: Rules,
    bounds: Bounds,
    *,
    objective: str,
    target: float | None,
    value_per_signup: float | None,
    mode: str = "milp",
    breakpoints: int = 60,
) -> Plan:
    """Allocate with S-shaped curves; returns a :class:`~allocation.optimize.Plan` with its proven gap."""
    if mode not in ("milp", "envelope"):
        raise ConfigError(
            f"line {next(c.label for c in curves if not c.is_concave)}: S-shaped Hill curve "
            f"(shape > 1) needs s_curves 'milp' or 'envelope', got {mode!r}"
        )
    bad = next((c for c in curves if c.form == "power" and not c.is_concave), None)
    if bad is not None:
        raise ConfigError(
            f"line {bad.label}: power curve with exponent {bad.params['exponent']:g} > 1 is convex "
            "(increasing returns without bound); use exponent <= 1 or a Hill curve"
        )
    value = value_per_signup if objective == "max_profit" else 1.0
    pieces = [
        _pieces(
            c, float(bounds.lower[i]), _upper_limit(c, bounds.upper[i], rules), breakpoints, mode
        )
        for i, c in enumerate(curves)
    ]
    eps_under = sum(p[2] for p in pieces)
    eps_over = sum(p[3] for p in pieces)
    t0 = time.perf_counter()
    extra: dict = {
        "pwl_breakpoints": breakpoints,
        "pwl_error_under": eps_under,
        "pwl_error_over": eps_over,
    }
    if objective == "min_spend":
        # Safe plan: ask the model for target + over-statement, so the true curves reach the target.
        spend, model_val, status, is_mip, _ = _solve_model(
            curves, rules, bounds, pieces, objective, float(target) + eps_over, value, mode
        )
        lower_spend = _solve_model(
            curves,
            rules,
            bounds,
            pieces,
            objective,
            max(0.0, float(target) - eps_under),
            value,
            mode,
        )[1]
        true_val = float(spend.sum())
        gap = (true_val - lower_spend) / max(true_val, 1e-12)
        extra["spend_lower_bound"] = lower_spend
    else:
        spend, model_val, status, is_mip, _ = _solve_model(
            curves, rules, bounds, pieces, objective, target, value, mode
        )
        spend = _polish(curves, rules, bounds, spend, objective, value)
        upper = model_val + value * eps_under
        inc = float(curves.evaluate(spend).sum())
        true_val = value * inc - (float(spend.sum()) if objective == "max_profit" else 0.0)
        gap = max(0.0, (upper - true_val) / max(abs(upper), 1e-12))
        extra["objective_upper_bound"] = upper
    elapsed = time.perf_counter() - t0
    method = "milp_piecewise_linear" if mode == "milp" else "concave_envelope"
    extra["s_shaped_lines"] = [c.label for c in curves if not c.is_concave]
    return make_plan(
        curves,
        rules,
        bounds,
        spend,
        status=status,
        objective=objective,
        budget_dual=None,
        solver="HIGHS" + (" (MILP)" if is_mip else " (LP)"),
        method=method,
        gap=float(gap),
        seconds=elapsed,
        target=target,
        value_per_signup=value_per_signup,
        extra=extra,
    )
