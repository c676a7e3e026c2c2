"""The checked inputs of one daily plan, as the planner, its solvers and its tabulation share them.

:func:`allocation.daily_plan.plan_days` validates the curves, rules, history and calendar once and
builds a :class:`DailyInputs`; the solvers (:mod:`allocation.daily_structured`, the cvxpy form in
:mod:`allocation.daily_plan`) and :func:`allocation.plans.tabulate_days` trust it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocation.business_rules import Rules
from allocation.curves import CurveSet
from allocation.launches import LaunchCalendar


@dataclass(frozen=True)
class DailyInputs:
    """The checked inputs of one daily plan, shared by its solvers and its tabulation.

    Attributes
    ----------
    curves : CurveSet
    rules : Rules
        With ``budget`` the total over the horizon.
    coef, scale : ndarray (lines,)
        Each curve's coefficient and spend scale in the solver's units
        (:func:`allocation.problem.scaling`).
    mult : ndarray (lines, days)
        The launch calendar's demand multipliers (ones without a calendar).
    decay : ndarray (lines,)
        Geometric adstock decay per line.
    start_adstock : ndarray (lines,)
        Adstock on the day before the plan, from the history.
    lower, upper : ndarray (lines, days)
        Daily spend bounds: floors, ceilings, commitments and the guardrail box.
    band : ndarray (lines,) or None
        Largest change within a 7-day window (``max_change`` times current spend).
    history : ndarray (lines, h)
        Spend on the days before the plan, oldest first.
    current : ndarray (lines,)
        Current spend (NaN where a line has none).
    calendar : LaunchCalendar or None
    """

    curves: CurveSet
    rules: Rules
    coef: np.ndarray
    scale: np.ndarray
    mult: np.ndarray
    decay: np.ndarray
    start_adstock: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    band: np.ndarray | None
    history: np.ndarray
    current: np.ndarray
    calendar: LaunchCalendar | None

    @property
    def weights(self) -> np.ndarray:
        """Coefficient times the calendar's multiplier, (lines, days)."""
        return self.coef[:, None] * self.mult
