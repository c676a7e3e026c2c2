"""Business rules of an allocation: budget, reserve, commitments, market and group budgets, guardrail.

Rules are read from the command line and an optional ``constraints.json``::

    {"budget_mode": "eq",                 # or "le" (default): spend all, or at most, the budget
     "reserve": 5000, "reserve_share": 0.05,   # test-and-learn reserve held back from the budget
     "commitments": {"ctv/NA01": 20000},  # contractual minimum spend per line (name/market or name)
     "market_budgets": {"NA01": 90000},   # most spend per market
     "group_budgets": {"upper_funnel": {"channels": ["ctv", "programmatic"], "max": 60000, "min": 10000}},
     "max_change": 0.15}                  # guardrail, also --max-change

:func:`line_bounds` turns them, with the curves' ``min_spend``/``max_spend``,
into one lower and one upper bound per line, remembering which rule set each
so a binding bound is reported by its meaning.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from allocation.curves import CurveSet
from causal.errors import ConfigError, DataError, InfeasibleError
from causal.jsonfile import read_json


@dataclass
class Rules:
    """The constraints of an allocation, by meaning.

    Parameters
    ----------
    budget : float or None
        Total budget per period (static) or over the horizon (time plans).
    budget_mode : {"le", "eq"}, default="le"
        Spend at most (``le``) or exactly (``eq``) the budget.
    max_change : float or None
        Guardrail: no line moves by more than this share of its current spend
        (within any 7-day window, for time plans).
    commitments : dict
        Contractual minimum spend per line label (``name/market``, or ``name`` for every market).
    reserve, reserve_share : float
        Test-and-learn reserve held back from the budget: ``reserve + reserve_share * budget``.
    market_budgets : dict
        Most spend per market.
    group_budgets : dict
        Per channel group: ``{"channels": [...], "markets": [...] (optional), "max": v, "min": v}``.
    """

    budget: float | None = None
    budget_mode: str = "le"
    max_change: float | None = None
    commitments: dict[str, float] = field(default_factory=dict)
    reserve: float = 0.0
    reserve_share: float = 0.0
    market_budgets: dict[str, float] = field(default_factory=dict)
    group_budgets: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reserve_amount(self) -> float:
        return float(self.reserve + self.reserve_share * (self.budget or 0.0))

    @property
    def spendable(self) -> float | None:
        """The budget less the test-and-learn reserve."""
        return None if self.budget is None else self.budget - self.reserve_amount

    def validate(self, source: str = "rules") -> Rules:
        """Check types and signs; one line naming the key at fault."""
        if self.budget is not None:
            _check_num(self.budget, source, "budget")
            if self.budget < 0:
                raise ConfigError(f"{source}: budget must be >= 0, got {self.budget:g}")
        if self.budget_mode not in ("le", "eq"):
            raise ConfigError(
                f"{source}: budget_mode must be 'le' or 'eq', got {self.budget_mode!r}"
            )
        if self.max_change is not None:
            _check_num(self.max_change, source, "max_change")
            if self.max_change < 0:
                raise ConfigError(f"{source}: max_change must be >= 0, got {self.max_change:g}")
        for key in ("reserve", "reserve_share"):
            v = getattr(self, key)
            _check_num(v, source, key)
            if v < 0:
                raise ConfigError(f"{source}: {key} must be >= 0, got {v:g}")
        if self.reserve_share >= 1:
            raise ConfigError(f"{source}: reserve_share must be < 1, got {self.reserve_share:g}")
        for name in ("commitments", "market_budgets", "group_budgets"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(
                    f"{source}: {name} must be an object of name -> amount, "
                    f"got {type(getattr(self, name)).__name__}"
                )
        for name in ("commitments", "market_budgets"):
            for k, v in getattr(self, name).items():
                _check_num(v, source, f"{name}.{k}")
                if v < 0:
                    raise ConfigError(f"{source}: {name}.{k} must be >= 0, got {v:g}")
        for g, spec in self.group_budgets.items():
            if (
                not isinstance(spec, dict)
                or not isinstance(spec.get("channels"), list)
                or not spec["channels"]
            ):
                raise ConfigError(f"{source}: group_budgets.{g} needs a non-empty 'channels' list")
            for key in ("max", "min"):
                if spec.get(key) is not None:
                    _check_num(spec[key], source, f"group_budgets.{g}.{key}")
        return self

    @classmethod
    def load(cls, path: str | Path | None, **overrides: Any) -> Rules:
        """Rules from a constraints.json (or none) with command-line values on top."""
        data: dict[str, Any] = {}
        source = "command line"
        if path is not None:
            source = str(path)
            data = read_json(path, "constraints file")
            if not isinstance(data, dict):
                raise DataError(f"{path}: expected a JSON object of constraints")
            unknown = set(data) - set(cls.__dataclass_fields__)
            if unknown:
                raise DataError(
                    f"{path}: unknown key '{sorted(unknown)[0]}' (known: {', '.join(cls.__dataclass_fields__)})"
                )
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data).validate(source)


#: The largest amount of money (budget, cap, commitment) taken: beyond it the solvers' arithmetic
#: loses the cents (double precision keeps ~16 digits) and such a figure is a typo.
MAX_AMOUNT = 1e13


def _check_num(v: Any, source: str, key: str) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{source}: {key} must be a finite number, got {v!r}")
    if abs(v) > MAX_AMOUNT:
        raise ConfigError(
            f"{source}: {key} {v:g} is beyond {MAX_AMOUNT:g}, the largest amount the allocator takes"
        )


@dataclass
class Bounds:
    """Per-line lower and upper bounds and the rule that set each (``floor``, ``commitment``, ...)."""

    lower: np.ndarray
    upper: np.ndarray  # inf where no ceiling
    lower_rule: list[str]
    upper_rule: list[str]


def line_bounds(curves: CurveSet, rules: Rules) -> Bounds:
    """Combine floors, ceilings, commitments and the guardrail into one box per line."""
    n = len(curves)
    lower, upper = np.zeros(n), np.full(n, np.inf)
    lo_rule, up_rule = ["none"] * n, ["none"] * n
    labels = curves.labels
    for key in rules.commitments:
        if key not in labels and key not in curves.names:
            raise ConfigError(
                f"commitments: line '{key}' is not in {curves.source} (lines are name/market)"
            )
    if rules.max_change is not None:
        cur = curves.current(
            required=True, why=f"the guardrail (max_change {rules.max_change:g}) needs"
        )
    for i, c in enumerate(curves):
        cands_lo = [("floor", c.min_spend)]
        commit = rules.commitments.get(c.label, rules.commitments.get(c.name))
        cands_lo.append(("commitment", commit))
        cands_up = [("ceiling", c.max_spend)]
        if rules.max_change is not None:
            cands_lo.append(
                ("guardrail", cur[i] * (1 - rules.max_change) if rules.max_change < 1 else 0.0)
            )
            cands_up.append(("guardrail", cur[i] * (1 + rules.max_change)))
        for rule, v in cands_lo:
            if v is not None and v > lower[i]:
                lower[i], lo_rule[i] = v, rule
        for rule, v in cands_up:
            if v is not None and v < upper[i]:
                upper[i], up_rule[i] = v, rule
        if lower[i] > upper[i] * (1 + 1e-12):
            raise InfeasibleError(
                f"line {c.label}: lower bound {lower[i]:,.2f} ({lo_rule[i]}) is above "
                f"upper bound {upper[i]:,.2f} ({up_rule[i]})"
            )
    return Bounds(lower, upper, lo_rule, up_rule)


def market_matrix(curves: CurveSet, rules: Rules) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of 0/1 selecting each budgeted market's lines, the caps, and the market ids."""
    markets = [m for m in rules.market_budgets]
    present = set(curves.markets)
    for m in markets:
        if m not in present:
            raise ConfigError(f"market_budgets: market '{m}' is not in {curves.source}")
    mat = np.array([[1.0 if c.market == m else 0.0 for c in curves] for m in markets]).reshape(
        len(markets), len(curves)
    )
    return mat, np.array([float(rules.market_budgets[m]) for m in markets]), markets


def group_matrix(
    curves: CurveSet, rules: Rules
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Rows selecting each channel group's lines, their caps (inf: none) and minimums."""
    names = list(rules.group_budgets)
    rows, caps, mins = [], [], []
    for g in names:
        spec = rules.group_budgets[g]
        chans = set(spec["channels"])
        unknown = chans - set(curves.names)
        if unknown:
            raise ConfigError(
                f"group_budgets.{g}: channel '{sorted(unknown)[0]}' is not in {curves.source}"
            )
        mk = spec.get("markets")
        rows.append(
            [1.0 if (c.name in chans and (mk is None or c.market in mk)) else 0.0 for c in curves]
        )
        caps.append(np.inf if spec.get("max") is None else float(spec["max"]))
        mins.append(0.0 if spec.get("min") is None else float(spec["min"]))
    return (np.array(rows).reshape(len(names), len(curves)), np.array(caps), np.array(mins), names)


def _rule_names(rules: list[str]) -> str:
    names = {
        "floor": "line_floors",
        "commitment": "commitments",
        "guardrail": "guardrail (max_change)",
    }
    return ", ".join(names.get(r, r) for r in rules) or "line_floors"


def check_feasible(
    curves: CurveSet, rules: Rules, bounds: Bounds, *, objective: str, target: float | None = None
) -> None:
    """Name the conflicting constraints of obviously infeasible rules, before any solve."""
    lo, up = bounds.lower, bounds.upper
    spendable = rules.spendable
    if spendable is not None:
        if spendable < 0:
            raise InfeasibleError(
                f"test-and-learn reserve {rules.reserve_amount:,.2f} is above the total budget {rules.budget:,.2f}"
            )
        rules_lo = sorted({r for r, v in zip(bounds.lower_rule, lo) if v > 0})
        if lo.sum() > spendable * (1 + 1e-9) + 1e-9:
            what = " + ".join(f"{r}s" for r in rules_lo) or "floors"
            res = (
                f" less the test-and-learn reserve {rules.reserve_amount:,.2f}"
                if rules.reserve_amount
                else ""
            )
            need = (
                lo.sum() + rules.reserve_amount
                if not rules.reserve_share
                else ((lo.sum() + rules.reserve) / (1 - rules.reserve_share))
            )
            raise InfeasibleError(
                f"line {what} sum to {lo.sum():,.2f}, above the total budget {rules.budget:,.2f}{res}; "
                f"binding rule: {_rule_names(rules_lo)}; the smallest feasible budget is {need:,.2f}"
            )
        if (
            rules.budget_mode == "eq"
            and np.isfinite(up).all()
            and up.sum() < spendable * (1 - 1e-9)
        ):
            rules_up = " + ".join(sorted({f"{r}s" for r in bounds.upper_rule}))
            raise InfeasibleError(
                f"line {rules_up} sum to {up.sum():,.2f}, below the total budget "
                f"{spendable:,.2f} that budget_mode 'eq' must spend; the largest feasible "
                f"budget is {up.sum() + rules.reserve_amount:,.2f}"
            )
    if rules.market_budgets:
        mat, caps, markets = market_matrix(curves, rules)
        floors = mat @ lo
        for m, f, cap in zip(markets, floors, caps):
            if f > cap * (1 + 1e-9) + 1e-9:
                raise InfeasibleError(
                    f"market_budgets.{m} {cap:,.2f} is below the sum of that market's line lower bounds {f:,.2f}"
                )
    if rules.group_budgets:
        mat, caps, mins, names = group_matrix(curves, rules)
        for g, row, cap, mn in zip(names, mat, caps, mins):
            if row @ lo > cap * (1 + 1e-9) + 1e-9:
                raise InfeasibleError(
                    f"group_budgets.{g}.max {cap:,.2f} is below the sum of its lines' lower bounds {row @ lo:,.2f}"
                )
            reach = float(np.sum(up[row > 0])) if len(up) else 0.0
            if mn > reach:
                raise InfeasibleError(
                    f"group_budgets.{g}.min {mn:,.2f} is above the sum of its lines' upper bounds"
                )
            if mn > cap:
                raise InfeasibleError(f"group_budgets.{g}: min {mn:,.2f} is above max {cap:,.2f}")
            if spendable is not None and mn > spendable:
                raise InfeasibleError(
                    f"group_budgets.{g}.min {mn:,.2f} is above the total budget {spendable:,.2f}"
                )
    if objective == "min_spend" and target is not None:
        best = sum(float(c.evaluate(u if np.isfinite(u) else 1e18)) for c, u in zip(curves, up))
        if target > best * (1 - 1e-9):
            raise InfeasibleError(
                f"target {target:,.2f} incremental is above the {best:,.2f} reachable at every "
                "line's upper bound (ceilings, guardrail)"
            )
