r"""The daily plan's own solver: a structured interior point per line, and S-shaped curves with a certificate.

:func:`allocation.daily_plan.plan_days` checks a daily plan's inputs once and hands them here as a
:class:`DailyInputs`; :func:`plan_structured` solves the convex plan with
:func:`allocation.daily_ipm.solve_daily`, and :func:`plan_s_curves` adds S-shaped Hill curves
(a concave envelope bound, a feasible plan, a MILP reference on small cases, and the gap between
them). The cvxpy form of the same problem stays in :mod:`allocation.daily_plan`.
"""

from __future__ import annotations

import time

import numpy as np

from allocation.business_rules import Rules, market_matrix
from allocation.constraints import WINDOW, implied_bounds
from allocation.curves import CurveSet
from allocation.daily_inputs import DailyInputs
from allocation.daily_ipm import SUPPORTED, curve_terms, solve_daily
from allocation.daily_pwl import MAX_BINARIES, solve_daily_pwl
from allocation.plans import TimePlan, tabulate_days
from causal import response as R
from causal.errors import InfeasibleError


def structured_blocker(inp: DailyInputs) -> str:
    """Why the structured solver cannot take this plan ('' if it can)."""
    curves, rules, lo, hi, band = inp.curves, inp.rules, inp.lower, inp.upper, inp.band
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
    if (inp.weights < 0).any():
        return "a curve has a negative coefficient"
    if band is not None and not (band > 0).all():
        return "a guardrail band is zero"
    if not rules.spendable or rules.spendable <= 0:
        return "the budget is zero"
    return ""


#: The largest relative gap at which a stalled envelope solve is still used (its gap enters the bound).
ENVELOPE_GAP = 1e-3
#: Iterations the local search on the true curves may take: this many times the envelope's, at least
#: LOCAL_MIN_ITERATIONS (a local solve that converges does so in about as many as the envelope).
LOCAL_ITERATION_FACTOR = 2
LOCAL_MIN_ITERATIONS = 40


class Stalled(RuntimeError):
    """The structured solver stopped short of the optimum (numerically degenerate plan)."""


def _market_rows(
    curves: CurveSet, rules: Rules
) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Each line's budgeted market (index, -1 for none) and the markets' daily caps."""
    if not rules.market_budgets:
        return None, None, []
    mat, caps, markets = market_matrix(curves, rules)
    idx = np.where(mat.any(axis=0), mat.argmax(axis=0), -1)
    return idx, caps, markets


def _solve_structured(
    inp: DailyInputs,
    tangent: np.ndarray | None = None,
    accept_gap: float = 0.0,
    max_iterations: int = 200,
) -> tuple[object, np.ndarray, float]:
    """Solve with the structured interior point; the solution, its spend clipped to the box, seconds.

    A solve that stops short is :class:`Stalled`, unless its relative gap is at most ``accept_gap``
    (the caller then carries that gap into its certificate).
    """
    curves, rules, cur, band = inp.curves, inp.rules, inp.current, inp.band
    n, days = inp.mult.shape
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
            weights=inp.weights,
            scale=inp.scale,
            decay=inp.decay,
            start_adstock=inp.start_adstock,
            lower=inp.lower,
            upper=inp.upper,
            band=None if band is None else band * (1 - 1e-6),
            window=WINDOW,
            budget=float(rules.spendable),
            budget_mode=rules.budget_mode,
            reference=reference,
            market=market,
            market_caps=caps,
            tangent=tangent,
            max_iterations=max_iterations,
        )
    except ValueError as exc:  # no strictly feasible start
        raise InfeasibleError(f"the daily plan has no strictly feasible point: {exc}") from None
    elapsed = time.perf_counter() - t0
    if sol.status != "optimal" and not (np.isfinite(sol.gap) and 0 <= sol.gap <= accept_gap):
        raise Stalled(
            f"the structured solver stopped after {sol.iterations} iterations short of the optimum "
            f"(relative gap {sol.gap:.1e})"
        )
    return sol, project_box(np.maximum(sol.spend, 0.0), inp.lower, inp.upper), elapsed


def _finish(inp: DailyInputs, sol, spend: np.ndarray, elapsed: float) -> TimePlan:
    plan = tabulate_days(
        inp,
        spend,
        dual=sol.budget_dual,
        guarded=sol.guardrail_dual > 1e-7,
        status="optimal",
        seconds=elapsed,
        solver="liftlab structured IPM",
    )
    if sol.market_dual is not None:
        _, caps, markets = _market_rows(inp.curves, inp.rules)
        for m, d, cap in zip(markets, sol.market_dual, caps):
            if d > 1e-7:
                plan.binding.append(
                    {"constraint": "market_budgets", "market": m, "value": float(cap)}
                )
    plan.method = f"convex (daily, adstock; structured interior point, {sol.iterations} iterations)"
    plan.gap = sol.gap
    return plan


def plan_structured(inp: DailyInputs) -> TimePlan:
    """The convex daily plan by the structured interior point (raises :class:`Stalled` if it stops short)."""
    sol, spend, elapsed = _solve_structured(inp)
    return _finish(inp, sol, spend, elapsed)


def plan_s_curves(inp: DailyInputs, *, tolerance: float = 1e-3, pwl_pieces: int = 40) -> TimePlan:
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
    curves, rules, scale, decay, a0 = inp.curves, inp.rules, inp.scale, inp.decay, inp.start_adstock
    n, days = inp.mult.shape
    s_idx = np.flatnonzero([not c.is_concave for c in curves])
    ilo, _ = implied_bounds(inp.lower, inp.upper, inp.band)
    a_lo = R.geometric_carry(ilo, decay, a0).min(axis=1)
    tangent = np.zeros(n)
    s_params = {
        k: np.array([curves.curves[i].params.get(k, 1.0) for i in s_idx])
        for k in ("beta", "half_saturation", "shape")
    }
    xt = R.envelope_tangent("hill", s_params, a_lo[s_idx])  # all S-lines at once
    out_of_band = xt > a_lo[s_idx] * (1 + 1e-12)
    tangent[s_idx[out_of_band]] = xt[out_of_band] / scale[s_idx[out_of_band]]
    in_band = [curves.labels[i] for i in s_idx[~out_of_band]]
    weights = inp.weights
    labels = [curves.labels[i] for i in s_idx]
    if not tangent.any():
        plan = plan_structured(inp)
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
        z = np.maximum(R.geometric_carry(spend, decay, a0) / scale[:, None], 0.0)
        return float(
            (weights * curve_terms(forms, shapes, z, tangent if envelope else None)[0]).sum()
        )

    # The envelope's bound carries the solve's own gap, so a solve stopped a hair short of the
    # optimum still certifies the plan (honestly: the gap is in the bound).
    env_sol, env_spend, t_env = _solve_structured(inp, tangent=tangent, accept_gap=ENVELOPE_GAP)
    bound = outcome(env_spend, True) * (1 + env_sol.gap)
    candidates = [(outcome(env_spend, False), env_sol, env_spend, "envelope plan")]
    t_local = 0.0
    try:
        if candidates[0][0] >= bound * (1 - tolerance):
            raise Stalled("the envelope plan is within tolerance")  # no second solve needed
        # On the true (non-concave) curves the interior point is a local search with no guarantee:
        # it gets a few times the envelope's iterations, and the envelope plan stands if it stalls.
        budget = max(LOCAL_MIN_ITERATIONS, LOCAL_ITERATION_FACTOR * env_sol.iterations)
        loc_sol, loc_spend, t_local = _solve_structured(inp, max_iterations=budget)
        candidates.append(
            (outcome(loc_spend, False), loc_sol, loc_spend, "interior point on the true curves")
        )
    except (Stalled, InfeasibleError):
        pass
    binaries = len(s_idx) * days * (pwl_pieces - 1)
    if max(c[0] for c in candidates) < bound * (1 - tolerance) and binaries <= MAX_BINARIES:
        # Small case: the mixed-integer piecewise-linear model, whose bound may also be tighter.
        t0 = time.perf_counter()
        ref = solve_daily_pwl(
            curves,
            lo=inp.lower,
            hi=inp.upper,
            band=None if inp.band is None else inp.band * (1 - 1e-6),
            decay=decay,
            start=a0,
            mult=inp.mult,
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
    plan = _finish(inp, sol, spend, t_env + t_local)
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


def project_box(spend: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Spend clipped to its daily bounds."""
    # Interior-point solutions sit within ~1e-10 of the bounds; clip to the box so a
    # reported plan never exceeds a guardrail bound by rounding.
    return np.minimum(np.maximum(spend, lo), hi)
