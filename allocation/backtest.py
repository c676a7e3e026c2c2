r"""Closed-loop backtest: how much each way of deciding the budget earns, against the world's truth.

Every policy spends the same constant daily budget :math:`B` over a horizon of
days, on *lines* = channel x market cluster. A policy's plan (spend per line per
day) is applied to the simulated world (:class:`causal.world.World`) by
spreading each line's spend over the cluster's markets in proportion to their
size (``world.size``), which is how the world's true cluster curves are defined
(:meth:`World.true_curves`). The world is rerun under the same random draws, so
the difference between two policies is exact: a policy's *true incremental
signups* are the expected signups its media caused over the horizon (direct
response plus the branded-query path), read from the run, not estimated.

Shared start
------------
Before the horizon, the business ran as usual (``world.planned`` for the
exogenous channels, query-following branded search) and, in its last four
weeks, one go-dark test per channel on disjoint random markets (the *battery*):
the calibration data every calibrated policy starts from. The status-quo line
shares are the business-as-usual spend per line over the last 91 days before
the horizon, and :math:`B` is their sum.

Policies (each one :meth:`decide` per day)
------------------------------------------
* :class:`StatusQuo` — the fixed shares every day.
* :class:`QuarterlyModel` — every 91 days, refit the observational response
  model (:class:`allocation.mmm.ResponseModel`) on the panel so far and re-plan
  on it; ``calibrated=True`` calibrates it on the battery's lifts first
  (:func:`allocation.calibration.calibrate`). The observational policy jumps to
  its model's optimum (the quarterly way); the default calibrated one moves each
  line within a trust region (``max_step=2``: half to double the plan in force),
  because a fitted curve and a go-dark lift speak only for spend near the
  current one.
* :class:`DailyLoop` — each week proposes a go-dark test of one channel in one
  cluster, on randomly chosen markets that no other test occupies (checked with
  :func:`overlapping_tests`), runs it in the world, reads it out
  (:func:`experiments.readout.read_out`) when it ends, recalibrates weekly (the
  response model is refitted every four weeks and reused in between), and
  re-plans every day within the 15%-per-7-days guardrail. Every decision goes
  to the audit trail (:class:`allocation.audit.AuditLog`).
* :class:`Oracle` — the best allocation on the world's true steady-state curves.

Calibrated policies use :func:`confounding_prior`: a wide confounding-bias prior
for branded search (its spend follows demand) and a narrower one for the planned
channels (Chen et al. 2018).

Every decision policy plans with the product's own planner
(:func:`allocation.optimize.allocate`: the convex problem, or the mixed-integer
piecewise-linear model for S-shaped calibrated curves, with the guardrail box of
:func:`allocation.constraints.guardrail_box` as line bounds), at exactly the
budget (``budget_mode="eq"``), so the comparison between policies is about the
curves they believe, never about the optimiser. The oracle's true curves are sums
of two Hill curves (direct and the branded-query path), which no curves.json line
can state; it alone keeps :func:`best_allocation`, an exact dynamic programme on a
grid, as the reference it is.

Equal spend
-----------
The daily loop's tests switch spend off in their markets, so its runs spend less
than the others. Policies are compared on their *plans* run without test cuts,
which all spend the budget every day (``equal_spend`` table: incremental signups
at the matched budget, cost per incremental, and the share of the oracle's gain
over the status quo each captures); the signups and spend the tests cost are
reported apart (``given_up``).

References
----------
Vaver, J. & Koehler, J. (2011). Measuring ad effectiveness using geo experiments. Google.
Chen, A., Chan, D., Perry, M., Jin, Y., Sun, Y., Wang, Y. & Koehler, J. (2018). Bias correction for paid
search in media mix modeling. Google.
Bellman, R. (1957). *Dynamic Programming* (the resource-allocation recursion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allocation.audit import AuditLog
from allocation.calibration import Lift, calibrate
from allocation.constraints import guardrail_box, guardrail_violation
from allocation.mmm import ResponseModel
from causal import response as R
from causal.errors import ConfigError
from causal.panel import load_panel
from causal.progress import progress
from causal.world import CLUSTERS, EXOGENOUS_CHANNELS, MEDIATED_CONVERSION, World, WorldRun
from experiments.design import design_experiment
from experiments.readout import read_out

QUARTER = 91
WEEK = 7
CONTROLS = ("launch", "competitor_price")


# -- the planner every decision policy uses -------------------------------------------
def plan_lines(
    setting: Setting,
    curves: dict,
    budget: float,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> np.ndarray:
    """Spend per line from the product's planner on calibrated ``curves`` (a curves.json dict).

    Exactly ``budget`` is spent (``budget_mode="eq"``) within ``lower <= x <= upper``. A calibrated
    curve whose effect came out negative is planned as no effect (beta 0): spend there buys nothing.
    """
    from allocation.curves import CurveSet
    from allocation.optimize import allocate
    from allocation.rules import Rules

    by = {(c["name"], c["market"]): c for c in curves["channels"]}
    n = len(setting.lines)
    lower = np.zeros(n) if lower is None else np.asarray(lower, float)
    upper = np.full(n, budget) if upper is None else np.minimum(np.asarray(upper, float), budget)
    lines = []
    for i, key in enumerate(setting.lines):
        resp = dict(by[key]["response"])
        resp["beta"] = max(float(resp["beta"]), 0.0)
        lines.append(
            {
                "name": key[0],
                "market": key[1],
                "response": resp,
                "current_spend": float(setting.status_quo[i]),
                "min_spend": float(lower[i]),
                "max_spend": float(max(upper[i], lower[i])),
            }
        )
    cs = CurveSet.from_dict({"channels": lines}, source="backtest curves")
    plan = allocate(cs, budget=float(budget), rules=Rules(budget_mode="eq"))
    return plan.lines["spend"].to_numpy(dtype=float)


# -- the oracle's reference optimiser -----------------------------------------------------
def best_allocation(
    curves: list,
    budget: float,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    *,
    grid: int = 400,
) -> np.ndarray:
    """Spend per line maximising ``sum_i f_i(x_i)`` with ``sum x = budget``, ``lower <= x <= upper``.

    Exact on a grid of ``grid`` steps of the free budget (``budget - sum(lower)``),
    by the resource-allocation dynamic programme (Bellman 1957); curves need not
    be concave. ``curves`` are callables on arrays.
    """
    n = len(curves)
    lower = np.zeros(n) if lower is None else np.asarray(lower, float)
    upper = np.full(n, budget) if upper is None else np.asarray(upper, float)
    free = budget - lower.sum()
    if free < -1e-9 or upper.sum() < budget - 1e-9 or np.any(upper < lower - 1e-9):
        raise ConfigError(f"best_allocation: bounds cannot meet the budget {budget:,.2f}")
    if free <= 1e-12:
        return lower.copy()
    step = free / grid
    k = np.arange(grid + 1)
    best = np.zeros(grid + 1)  # best value using the lines so far with j steps spent
    best[1:] = -np.inf
    choice = np.zeros((n, grid + 1), dtype=int)
    for i, f in enumerate(curves):
        cap = int(np.floor((upper[i] - lower[i]) / step + 1e-9))
        vals = np.where(k <= cap, f(lower[i] + k * step), -np.inf)
        # total[j, m] = best[j - m] + vals[m]
        idx = k[:, None] - k[None, :]
        total = np.where(idx >= 0, best[np.clip(idx, 0, grid)] + vals[None, :], -np.inf)
        choice[i] = total.argmax(axis=1)
        best = total.max(axis=1)
    if not np.isfinite(best[grid]):
        raise ConfigError("best_allocation: no grid point meets the budget within the bounds")
    out, j = np.empty(n), grid
    for i in range(n - 1, -1, -1):
        m = choice[i, j]
        out[i] = lower[i] + m * step
        j -= m
    return out


def _curve_fn(block: dict):
    """A curves.json ``response`` block as a function (a fitted beta may be negative: kept as believed)."""
    form = block["form"]
    if form not in R.FORMS:
        raise ConfigError(f"response form '{form}' is not one of {', '.join(R.FORMS)}")
    params = {k: v for k, v in block.items() if k != "form"}
    return lambda x: R.value(form, x, params)


# -- applying plans to the world ----------------------------------------------------
@dataclass
class Setting:
    """The shared start: world, horizon, lines, status-quo shares, budget and battery lifts."""

    world: World
    start: int  # index of the horizon's first day
    days: int
    lines: list[tuple[str, str]]  # (channel, cluster)
    status_quo: np.ndarray  # spend per line per day
    history_spend: dict[
        str, np.ndarray
    ]  # (days x geos) spend before the horizon (battery included)
    battery: list[dict] = field(default_factory=list)  # the battery's tests
    lifts: list[Lift] = field(default_factory=list)
    seed: int = 0

    @property
    def budget(self) -> float:
        return float(self.status_quo.sum())

    def to_geos(self, plan: np.ndarray) -> dict[str, np.ndarray]:
        """Full (days x geos) spend: history, then the plan (horizon days x lines) spread by market size."""
        w = self.world
        share = np.zeros((4, w.n_geos))
        for c in range(4):
            m = w.cluster_of == c
            if m.any():
                share[c, m] = w.size[m] / w.size[m].sum()
        out = {ch: self.history_spend[ch].copy() for ch in w.channels}
        for i, (ch, cl) in enumerate(self.lines):
            c = CLUSTERS.index(cl)
            out[ch][self.start : self.start + plan.shape[0], share[c] > 0] = (
                plan[:, i : i + 1] * share[c][share[c] > 0]
            )
        return out

    def run(self, plan: np.ndarray, cuts: list[dict] = ()) -> WorldRun:
        """Run the world with the plan; ``cuts`` are go-dark tests (channel, geos, first, last day index)."""
        spend = self.to_geos(plan)
        idx = {g: i for i, g in enumerate(self.world.geos)}
        for t in cuts:
            spend[t["channel"]][t["first"] : t["last"] + 1, [idx[g] for g in t["geos"]]] = 0.0
        return self.world.run(spend=spend)

    def incremental(self, run: WorldRun) -> np.ndarray:
        """True expected incremental signups per horizon day (media-caused, mediated path included)."""
        rows = slice(self.start, self.start + self.days)
        total = sum(d[rows] for d in run.direct.values()) + MEDIATED_CONVERSION * sum(
            m[rows] for m in run.mediated_queries.values()
        )
        return total.sum(axis=1)

    def spend(self, run: WorldRun) -> np.ndarray:
        rows = slice(self.start, self.start + self.days)
        return sum(s[rows] for s in run.spend.values()).sum(axis=1)


def make_setting(world: World, days: int, *, seed: int = 0, battery_days: int = 28) -> Setting:
    """Build the shared start: status quo from the last 91 days, battery of go-dark tests before the horizon."""
    start = world.n_days - days
    if days < WEEK or start < QUARTER + battery_days:
        raise ConfigError(
            f"--days {days}: the world ({world.n_days} days) must hold at least "
            f"{QUARTER + battery_days} days of history before the horizon and a horizon of a week"
        )
    rng = np.random.default_rng(seed)
    base = world.run()
    lines = [
        (ch, cl)
        for ch in world.channels
        for c, cl in enumerate(CLUSTERS)
        if (world.cluster_of == c).any()
    ]
    sq = np.array(
        [
            base.spend[ch][start - QUARTER : start][:, world.cluster_of == CLUSTERS.index(cl)]
            .sum(axis=1)
            .mean()
            for ch, cl in lines
        ]
    )
    # Battery: one go-dark per channel, disjoint random markets, last four weeks before the horizon.
    k = max(1, world.n_geos // 10)
    if len(world.channels) * k > world.n_geos - 2:
        raise ConfigError(
            f"--geos {world.n_geos}: the battery needs {len(world.channels) * k} treated markets "
            f"(one go-dark test per channel) and at least 2 controls; use --geos >= {len(world.channels) + 2}"
        )
    order = rng.permutation(world.n_geos)
    battery, mult = [], {}
    for j, ch in enumerate(world.channels):
        geos = [world.geos[i] for i in sorted(order[j * k : (j + 1) * k])]
        battery.append(
            {"channel": ch, "geos": geos, "first": start - battery_days, "last": start - 1}
        )
        m = np.ones((world.n_days, world.n_geos))
        m[start - battery_days : start, [world.geos.index(g) for g in geos]] = 0.0
        mult[ch] = m
    hist = world.run(mult)
    setting = Setting(
        world,
        start,
        days,
        lines,
        sq,
        {ch: hist.spend[ch].copy() for ch in world.channels},
        battery,
        seed=seed,
    )
    panel = world.panel(hist)
    busy = {g for t in battery for g in t["geos"]}
    control = [g for g in world.geos if g not in busy]
    setting.lifts = [_read(world, panel, t, control, seed) for t in battery]
    return setting


def _date(world: World, i: int) -> str:
    return world.dates[i].date().isoformat()


def _read(world: World, frame: pd.DataFrame, test: dict, control: list[str], seed: int) -> Lift:
    last = _date(world, test["last"])
    panel = load_panel(frame[frame["date"] <= last].reset_index(drop=True))
    ro = read_out(
        panel,
        test["geos"],
        (_date(world, test["first"]), last),
        control=control,
        channel=test["channel"],
        seed=seed,
        placebos=False,
    )
    return Lift.from_dict(ro.to_dict(), source=f"test {test['channel']} {test['geos'][0]}..")


# The weekly proposal's design search: the recent history is enough for the windows of one test length,
# and a coarse effect grid with few windows keeps 26 proposals a half-year within about a minute.
DESIGN_HISTORY_DAYS = 200
# Eight windows are too few to hold some out for the claim: the weekly proposals claim on the search windows.
DESIGN_SEARCH = {
    "effect_sizes": (0.0, 0.05, 0.1, 0.2),
    "n_windows": 8,
    "n_screen_windows": 2,
    "n_finalists": 5,
    "n_null_windows": 0,
    "greedy_rounds": 0,
    "claim_share": 0.0,
}


def _design_test(
    frame: pd.DataFrame, world: World, free: list[str], k: int, days: int, *, seed: int
) -> dict | None:
    """The treated markets ``experiments.design.design_experiment`` recommends among ``free`` (k of them),
    simulated on the recent history with the readout's own estimator and inference; None if no design fits."""
    dates = np.sort(frame["date"].unique())
    recent = frame[frame["date"] >= dates[max(0, len(dates) - DESIGN_HISTORY_DAYS)]].reset_index(
        drop=True
    )
    exclude = [g for g in world.geos if g not in set(free)]
    try:
        r = design_experiment(
            load_panel(recent),
            n_treated=(k, k),
            exclude=exclude,
            durations=(days,),
            seed=seed,
            **DESIGN_SEARCH,
        )
    except ConfigError:
        return None
    best = r.best
    return {"geos": list(best.treated), "mde": best.mde, "power": best.power.mde_power}


def overlapping_tests(tests: list[dict]) -> list[tuple[int, int]]:
    """Pairs of tests that share a market while their windows overlap (must be empty)."""
    out = []
    for i, a in enumerate(tests):
        for j in range(i + 1, len(tests)):
            b = tests[j]
            if (
                a["first"] <= b["last"]
                and b["first"] <= a["last"]
                and set(a["geos"]) & set(b["geos"])
            ):
                out.append((i, j))
    return out


def guardrail_ratio(
    plan: np.ndarray, history: np.ndarray, current: np.ndarray, max_change: float
) -> float:
    """Largest change of a line within any 7-day window, over ``max_change * current`` (<= 1 keeps the rule).

    ``plan`` and ``history`` are days x lines; :func:`allocation.constraints.guardrail_violation` is the rule.
    """
    return guardrail_violation(
        np.asarray(plan).T, np.asarray(history).T, np.asarray(current), max_change
    )


# -- models ---------------------------------------------------------------------------
def _fit(setting: Setting, frame: pd.DataFrame, day: int) -> ResponseModel:
    last = _date(setting.world, setting.start + day - 1)
    panel = load_panel(frame[frame["date"] <= last].reset_index(drop=True))
    # The world's market clusters as a user's mapping would give them (models never parse geo ids).
    clusters = {g: CLUSTERS[c] for g, c in zip(setting.world.geos, setting.world.cluster_of)}
    return ResponseModel(controls=list(CONTROLS), holdout=0, clusters=clusters).fit(panel)


# Prior scale of the confounding bias (relative to the coefficient) of a channel whose spend is set by the
# media plan: planned budgets do not follow demand, so the observational fit of such a channel is trusted more
# than that of a channel whose spend follows demand (branded search follows queries, the case of Chen et al. 2018).
PLANNED_BIAS = 0.25


def confounding_prior(world: World) -> dict[str, float]:
    """``calibrate(bias_scale=...)`` per channel: 1 for demand-following spend, :data:`PLANNED_BIAS` for planned."""
    return {ch: (PLANNED_BIAS if ch in EXOGENOUS_CHANNELS else 1.0) for ch in world.channels}


# -- policies ---------------------------------------------------------------------------
class StatusQuo:
    """Fixed channel x market shares of the budget, every day."""

    name = "status quo"

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        return setting.status_quo.copy()


class Oracle:
    """The best steady-state allocation on the world's true curves (direct plus mediated): the upper bound."""

    name = "oracle"

    def __init__(self) -> None:
        self.plan_: np.ndarray | None = None

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        if self.plan_ is None:
            truth = {(c["name"], c["market"]): c for c in setting.world.true_curves()}
            fns = []
            for line in setting.lines:
                c = truth[line]
                direct, med = (
                    _curve_fn(c["response"]),
                    _curve_fn(c["mediated"]) if "mediated" in c else None,
                )
                fns.append((lambda x, d=direct, m=med: d(x) + m(x)) if med else direct)
            self.plan_ = best_allocation(fns, setting.budget)
        return self.plan_.copy()


class QuarterlyModel:
    """Every quarter, refit the observational model (optionally calibrated on the battery) and re-plan.

    Parameters
    ----------
    calibrated : bool
        Calibrate the refitted model on the battery's lifts (:func:`allocation.calibration.calibrate`).
    max_step : float or None, default=None
        Trust region: each quarter a line's spend stays within ``[x / max_step, x * max_step]`` of the
        plan in force ``x`` (the status quo before the first quarter). None jumps straight to the
        model's optimum. Budget optimisers bound each channel around its historical spend for the same
        reason (e.g. Meridian's ``spend_constraint_lower/upper``): a fitted curve is only supported by
        data near the spend it was fitted on, and an experiment's lift near the spend it was run at.
    bias_scale : float or mapping channel -> float, optional
        Prior scale of each calibrated channel's confounding bias (``calibrate(bias_scale=...)``);
        :func:`confounding_prior` of the world when None.
    name : str, optional
    """

    def __init__(
        self,
        *,
        calibrated: bool,
        max_step: float | None = None,
        bias_scale: float | dict[str, float] | None = None,
        name: str | None = None,
    ) -> None:
        if max_step is not None and not max_step > 1:
            raise ConfigError(
                f"max_step must be > 1 (a factor of the current spend), got {max_step}"
            )
        self.calibrated, self.max_step, self.bias_scale = calibrated, max_step, bias_scale
        default = "quarterly calibrated" if calibrated else "quarterly observational"
        self.name = name or default
        self.plan_: np.ndarray | None = None

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        if day % QUARTER == 0:
            model = _fit(setting, context["frame"](), day)
            bias = confounding_prior(setting.world) if self.bias_scale is None else self.bias_scale
            curves = calibrate(
                model, setting.lifts if self.calibrated else [], bias_scale=bias, seed=setting.seed
            ).to_dict()
            lo = hi = None
            if self.max_step is not None:
                current = setting.status_quo if self.plan_ is None else self.plan_
                lo, hi = (
                    current / self.max_step,
                    np.minimum(current * self.max_step, setting.budget),
                )
            self.plan_ = plan_lines(setting, curves, setting.budget, lo, hi)
        return self.plan_.copy()


class DailyLoop:
    """Weekly tests, weekly recalibration, daily re-plans within the guardrail, every decision audited.

    Parameters
    ----------
    max_change : float, default=0.15
        Largest change of a line within any 7 days, as a share of its status-quo spend.
    test_days : int, default=21
        Length of each go-dark test.
    refit_every : int, default=28
        Days between refits of the response model (calibration is redone weekly on the reused fit).
    test_share : float, default=1/3
        Share of the tested cluster's markets that go dark in a test.
    proposer : {"design", "random"}, default="design"
        Who picks the test's markets among the free ones of the cluster: the design module
        (:func:`experiments.design.design_experiment`, simulated power of the readout on the recent
        history, best design first) or a random draw.
    bias_scale : float or mapping channel -> float, optional
        Prior scale of each calibrated channel's confounding bias; :func:`confounding_prior` when None.
    audit : AuditLog, optional
    """

    name = "daily loop"

    def __init__(
        self,
        *,
        max_change: float = 0.15,
        test_days: int = 21,
        refit_every: int = 28,
        test_share: float = 1 / 3,
        bias_scale: float | dict[str, float] | None = None,
        proposer: str = "design",
        audit: AuditLog | None = None,
    ) -> None:
        if proposer not in ("design", "random"):
            raise ConfigError(f"proposer must be 'design' or 'random', got {proposer!r}")
        self.proposer = proposer
        if not 0 < test_share < 1:
            raise ConfigError(f"test_share must be in (0, 1), got {test_share}")
        self.max_change, self.test_days, self.refit_every, self.audit = (
            max_change,
            test_days,
            refit_every,
            audit,
        )
        self.test_share = test_share
        self.bias_scale = bias_scale
        self.tests_: list[dict] = []
        self.log_: list[dict] = []
        self.lifts_: list[Lift] = []
        self._curves = None
        self._model = None
        self._next_cluster = 0

    def decide(self, day: int, setting: Setting, context: dict) -> np.ndarray:
        w = setting.world
        t_abs = setting.start + day
        if day == 0:
            self.lifts_ = list(setting.lifts)
        if day % WEEK == 0:
            self._read_finished(day, setting, context)
            if day % self.refit_every == 0 or self._model is None:
                self._model = _fit(setting, context["frame"](), day)
            fitted_to = (
                self._model.dates_[-1].date().isoformat()
            )  # lifts inside the fitted panel only
            bias = confounding_prior(w) if self.bias_scale is None else self.bias_scale
            curves = calibrate(
                self._model,
                [lf for lf in self.lifts_ if lf.end <= fitted_to],
                bias_scale=bias,
                seed=setting.seed,
            ).to_dict()
            self._curves = curves
            self._propose(day, setting, context)
        plan = context["plan"]
        hist = np.vstack([np.tile(setting.status_quo, (WEEK, 1)), plan[:day]])[-(WEEK - 1) :]
        band = self.max_change * setting.status_quo
        # The rolling guardrail, as the daily planner states it: today's box from the last six days.
        lo, hi = guardrail_box(hist.T, 1, band * (1 - 1e-9))
        lo, hi = np.maximum(lo[:, 0], 0.0), hi[:, 0]
        try:
            x = plan_lines(setting, self._curves, setting.budget, lo, hi)
        except ConfigError:  # the budget cannot be met inside the box: hold yesterday's plan
            x = hist[-1].copy()
        entry = {
            "day": _date(w, t_abs),
            "total_spend": float(x.sum()),
            "largest_move": float(np.max(np.abs(x - hist[-1]))),
            "tests_running": sum(t["first"] <= t_abs <= t["last"] for t in self.tests_),
        }
        self.log_.append(entry)
        if self.audit is not None:
            self.audit.record(
                command="backtest daily-loop",
                curves={"lines": [list(x) for x in setting.lines]},
                constraints={
                    "budget": setting.budget,
                    "max_change": self.max_change,
                    "lower": lo.tolist(),
                    "upper": hi.tolist(),
                },
                solution={
                    "status": "optimal",
                    "objective": "max_incremental",
                    "total_spend": float(x.sum()),
                    "spend": x.tolist(),
                    "day": entry["day"],
                },
            )
        return x

    def _propose(self, day: int, setting: Setting, context: dict) -> None:
        """One go-dark test a week: next channel, next cluster, markets no other test uses meanwhile,
        chosen by the design module (or at random with ``proposer="random"``)."""
        w = setting.world
        first = setting.start + day
        last = first + self.test_days - 1
        if last >= setting.start + setting.days:
            return
        ch = w.channels[(day // WEEK) % len(w.channels)]
        clusters = [c for c in range(4) if (w.cluster_of == c).any()]
        c = clusters[self._next_cluster % len(clusters)]
        self._next_cluster += 1
        busy = {
            g for t in self.tests_ if t["first"] <= last and first <= t["last"] for g in t["geos"]
        }
        free = [g for g, cl in zip(w.geos, w.cluster_of) if cl == c and g not in busy]
        k = max(1, int(np.sum(w.cluster_of == c) * self.test_share + 1e-9))
        if len(free) < k:
            return
        design = None
        if self.proposer == "design":
            design = _design_test(
                context["frame"](), w, free, k, self.test_days, seed=setting.seed + day
            )
        if design is not None:
            geos = sorted(design["geos"])
        else:
            rng = np.random.default_rng([setting.seed, day])
            geos = sorted(rng.choice(free, size=k, replace=False).tolist())
        test = {
            "channel": ch,
            "cluster": CLUSTERS[c],
            "geos": geos,
            "first": first,
            "last": last,
            "start": _date(w, first),
            "end": _date(w, last),
            "proposed": _date(w, first),
            "proposer": "random" if design is None else "design",
            "design_mde": None if design is None else design["mde"],
            "design_power_at_mde": None if design is None else design["power"],
        }
        self.tests_.append(test)
        if overlapping_tests(self.tests_):  # cannot happen by construction; kept as a hard check
            raise AssertionError("two overlapping tests proposed")

    def _read_finished(self, day: int, setting: Setting, context: dict) -> None:
        now = setting.start + day
        due = [t for t in self.tests_ if t["last"] < now and "incremental" not in t]
        if not due:
            return
        frame = context["frame"]()
        for t in due:
            busy = {
                g
                for o in self.tests_
                if o["first"] <= t["last"] and t["first"] <= o["last"]
                for g in o["geos"]
            }
            control = [g for g in setting.world.geos if g not in busy]
            lift = _read(setting.world, frame, t, control, setting.seed)
            t["incremental"], t["incremental_ci"] = lift.incremental, list(lift.incremental_ci)
            self.lifts_.append(lift)


# -- the backtest -------------------------------------------------------------------------
@dataclass
class BacktestResult:
    """Outcome of every policy over the horizon, against the world's truth.

    Attributes
    ----------
    daily : DataFrame
        One row per (policy, date): ``spend``, ``incremental`` (true expected), and their cumulative sums.
    summary_table : DataFrame
        Per policy: total spend, true incremental signups, cost per incremental signup, share of the oracle's
        incremental signups, change in cost per incremental against the status quo.
    tests : list of dict
        The daily loop's tests (markets, window, readout).
    decisions : DataFrame
        The daily loop's decision log.
    given_up : dict
        Signups (and spend) the daily loop's tests cost: its plan run without the tests minus with them.
    guardrail : float
        Largest 7-day change of the daily loop over ``max_change * status quo`` (<= 1: kept).
    overlaps : list
        Overlapping test pairs (empty).
    settings : dict
        Horizon, budget, lines, status-quo spend and the battery of tests before the horizon.
    plans : dict policy -> DataFrame
        Planned spend per day (rows) and line ``channel/cluster`` (columns), before test cuts.
    """

    daily: pd.DataFrame
    summary_table: pd.DataFrame
    tests: list[dict]
    decisions: pd.DataFrame
    given_up: dict
    guardrail: float
    overlaps: list
    settings: dict
    plans: dict = field(default_factory=dict)

    def summary(self) -> str:
        t = self.summary_table
        lines = [
            f"backtest over {self.settings['days']} days, budget {self.settings['budget']:,.0f} per day"
        ]
        width = max(24, *(len(str(n)) for n in t.index))
        for name, r in t.iterrows():
            lines.append(
                f"  {name:<{width}} incremental {r['incremental']:>12,.0f}  cost/incremental "
                f"{r['cost_per_incremental']:>8.2f}  share of oracle {r['share_of_oracle']:>6.1%}"
            )
        if "share_of_oracle_gain" in t:
            lines.append(
                "  at equal spend (plans run without test cuts, every policy spends the budget):"
            )
            for name, r in t.iterrows():
                lines.append(
                    f"  {name:<{width}} incremental {r['equal_incremental']:>12,.0f}  cost/incremental "
                    f"{r['equal_cost_per_incremental']:>8.2f}  share of oracle's gain over status quo "
                    f"{r['share_of_oracle_gain']:>7.1%}"
                )
        lines.append(
            f"  daily loop: {len(self.tests)} tests, signups given up {self.given_up['signups']:,.0f}, "
            f"guardrail ratio {self.guardrail:.3f} (<= 1 kept), overlapping tests {len(self.overlaps)}"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "policies": json_records(self.summary_table.reset_index()),
            "daily": json_records(self.daily),
            "tests": self.tests,
            "decisions": json_records(self.decisions),
            "given_up": self.given_up,
            "guardrail_ratio": self.guardrail,
            "overlapping_tests": self.overlaps,
        }

    def plot(self, *, ax=None, show: bool = False):
        import matplotlib.pyplot as plt

        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 4))
        for name, g in self.daily.groupby("policy", sort=False):
            ax.plot(pd.to_datetime(g["date"]), g["cum_incremental"], label=name)
        ax.set_ylabel("cumulative true incremental signups")
        ax.legend()
        if show:
            plt.show()
        return fig, ax


def equal_spend_table(setting: Setting, plans: dict, policies: list) -> pd.DataFrame:
    """Each policy's plan run without test cuts: every one spends the budget, so they compare at equal spend.

    Columns ``equal_spend``, ``equal_incremental``, ``equal_cost_per_incremental`` and
    ``share_of_oracle_gain`` = (policy - status quo) / (oracle - status quo) in true incremental signups.
    """
    rows = {}
    for pol in policies:
        run = setting.run(plans[pol.name].to_numpy())
        rows[pol.name] = {
            "equal_spend": float(setting.spend(run).sum()),
            "equal_incremental": float(setting.incremental(run).sum()),
        }
    out = pd.DataFrame(rows).T
    out["equal_cost_per_incremental"] = out["equal_spend"] / out["equal_incremental"]
    if "status quo" in out.index and "oracle" in out.index:
        sq, orc = out.loc["status quo", "equal_incremental"], out.loc["oracle", "equal_incremental"]
        out["share_of_oracle_gain"] = (
            (out["equal_incremental"] - sq) / (orc - sq) if orc != sq else np.nan
        )
    return out


def json_records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]


def default_policies(audit: AuditLog | None = None) -> list:
    return [
        StatusQuo(),
        QuarterlyModel(calibrated=False),
        QuarterlyModel(calibrated=True, max_step=2.0),
        DailyLoop(audit=audit),
        Oracle(),
    ]


def backtest(
    world: World,
    *,
    days: int = 182,
    seed: int = 0,
    policies: list | None = None,
    audit: AuditLog | None = None,
) -> BacktestResult:
    """Run every policy over the last ``days`` days of ``world`` and score them on the truth.

    Parameters
    ----------
    world : World
    days : int, default=182
        Horizon (two quarters); the rest of the world's days are the shared history.
    seed : int, default=0
        Seed of the battery's and the daily loop's market choices and of the readouts.
    policies : list, optional
        Objects with ``name`` and ``decide(day, setting, context) -> spend per line``;
        :func:`default_policies` when None.
    audit : AuditLog, optional
        Where the daily loop records its decisions.

    Returns
    -------
    BacktestResult
    """
    setting = make_setting(world, days, seed=seed)
    policies = default_policies(audit) if policies is None else policies
    rows, spent, incs, plans = [], {}, {}, {}
    loop = None
    for pol in progress(policies, desc="backtest: policies", total=len(policies)):
        plan = np.zeros((days, len(setting.lines)))
        tests = getattr(pol, "tests_", None)

        def frame(plan=plan, tests=tests):
            cur = tests if tests is not None else []
            return world.panel(setting.run(plan, cuts=cur))

        ctx = {"plan": plan, "frame": frame}
        for d in range(days):
            plan[d] = pol.decide(d, setting, ctx)
        cuts = list(tests) if tests is not None else []
        run = setting.run(plan, cuts=cuts)
        inc, sp = setting.incremental(run), setting.spend(run)
        plans[pol.name] = pd.DataFrame(
            plan,
            columns=[f"{ch}/{cl}" for ch, cl in setting.lines],
            index=pd.Index([_date(world, setting.start + d) for d in range(days)], name="date"),
        )
        spent[pol.name], incs[pol.name] = sp.sum(), inc.sum()
        if isinstance(pol, DailyLoop):
            loop = (pol, plan, inc, sp)
        rows.append(
            pd.DataFrame(
                {
                    "policy": pol.name,
                    "date": [_date(world, setting.start + d) for d in range(days)],
                    "spend": sp,
                    "incremental": inc,
                    "cum_spend": np.cumsum(sp),
                    "cum_incremental": np.cumsum(inc),
                }
            )
        )
    daily = pd.concat(rows, ignore_index=True)
    table = pd.DataFrame({"spend": pd.Series(spent), "incremental": pd.Series(incs)})
    table.index.name = "policy"
    table["cost_per_incremental"] = table["spend"] / table["incremental"]
    oracle = incs.get("oracle")
    table["share_of_oracle"] = table["incremental"] / oracle if oracle else np.nan
    if "status quo" in table.index:
        table["cpi_vs_status_quo"] = (
            table["cost_per_incremental"] / table.loc["status quo", "cost_per_incremental"] - 1
        )
    table = table.join(equal_spend_table(setting, plans, policies))
    given_up, guard, overlaps, tests, decisions = (
        {"signups": 0.0, "spend": 0.0},
        0.0,
        [],
        [],
        pd.DataFrame(),
    )
    if loop is not None:
        pol, plan, inc, sp = loop
        clean = setting.run(plan)
        given_up = {
            "signups": float(setting.incremental(clean).sum() - inc.sum()),
            "spend": float(setting.spend(clean).sum() - sp.sum()),
        }
        guard = guardrail_ratio(
            plan, np.tile(setting.status_quo, (WEEK - 1, 1)), setting.status_quo, pol.max_change
        )
        overlaps = overlapping_tests(pol.tests_)
        tests = [{k: v for k, v in t.items() if k not in ("first", "last")} for t in pol.tests_]
        decisions = pd.DataFrame(pol.log_)
    settings = {
        "seed": seed,
        "days": days,
        "n_geos": world.n_geos,
        "world_days": world.n_days,
        "world_seed": world.seed,
        "budget": setting.budget,
        "horizon": [_date(world, setting.start), _date(world, world.n_days - 1)],
        "lines": [f"{ch}/{cl}" for ch, cl in setting.lines],
        "status_quo": setting.status_quo.tolist(),
        "battery": [
            {k: v for k, v in t.items() if k not in ("first", "last")} for t in setting.battery
        ],
    }
    return BacktestResult(
        daily, table, tests, decisions, given_up, guard, overlaps, settings, plans
    )
