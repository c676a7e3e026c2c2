"""The closed-loop backtest's world adapter: the shared start, lines, plans applied to the world, the planner.

A *line* is channel x market cluster; a plan is spend per line per day, spread over the cluster's markets
in proportion to market size (how :meth:`causal.world.World.true_curves` are defined). Every decision
policy plans with :func:`plan_lines` (the product's planner); the oracle alone with :func:`best_allocation`
(an exact grid on its true curves, sums of two Hills). Tests are kept apart with the experiment registry's
own conflict rule (:func:`overlapping_tests`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from allocation.calibration import Lift
from allocation.constraints import guardrail_violation
from allocation.next_test import INTENSITIES
from causal import response as R
from causal.errors import ConfigError
from causal.panel import Panel, load_panel
from causal.world import CLUSTERS, World, WorldRun
from experiments.design import design_experiment
from experiments.readout import read_out
from experiments.registry import Registry

QUARTER = 91
WEEK = 7
CONTROLS = ("launch", "competitor_price")


def spend_multiplier(test: dict) -> float:
    """A test's spend multiplier in its markets and days: its ``multiplier``, else its ``intensity``'s
    (the test planner's :data:`allocation.next_test.INTENSITIES`: 0 go-dark, 0.5 half, 1.5
    heavy-up), else 0. A go-dark measures a channel's average return from zero to current spend, a
    half cut or a heavy-up its return near current spend, where the plan moves."""
    if "multiplier" in test:
        k = float(test["multiplier"])
    else:
        k = INTENSITIES[test.get("intensity", "go-dark")]
    if not (np.isfinite(k) and k >= 0 and k != 1):
        raise ConfigError(f"a test's spend multiplier must be >= 0 and not 1, got {k}")
    return k


# -- the planner every decision policy uses -------------------------------------------
def plan_lines(
    setting: Setting,
    curves: dict,
    budget: float,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    *,
    s_curves: str | None = None,
    envelope_below_tangent: bool = True,
) -> np.ndarray:
    """Spend per line from the product's planner on calibrated ``curves`` (a curves.json dict).

    Exactly ``budget`` is spent (``budget_mode="eq"``) within ``lower <= x <= upper``. S-shaped lines
    are planned by the mixed-integer model (``s_curves="milp"``) unless every one's box lies in its
    concave part, where the concave envelope's LP is exact (``"envelope"``); ``s_curves`` forces one. A calibrated
    curve whose effect came out negative is planned as no effect (beta 0): spend there buys nothing.

    A box (the daily guardrail's) that lies wholly in an S-shaped Hill curve's convex part, below the
    tangent point of its concave envelope from zero, sees only the curve's small marginal return
    there: a daily re-plan then drains the line to zero and never climbs back, however much the
    curve pays further up (issue 14's seed 2: branded search in LATAM, whose static optimum is 4x
    its status quo, was cut to zero in six weeks). With ``envelope_below_tangent`` (the default) such
    a line is planned on its concave envelope from zero, a straight line with the best average
    return of the curve, ``f(x*) / x*``: the value the static plan gives it, so the daily plans move
    toward the static optimum of the same curves.
    """
    from allocation.business_rules import Rules
    from allocation.curves import CurveSet
    from allocation.optimize import allocate

    n = len(setting.lines)
    lower = np.zeros(n) if lower is None else np.asarray(lower, float)
    upper = np.full(n, budget) if upper is None else np.minimum(np.asarray(upper, float), budget)
    lines = []
    for i, (key, resp) in enumerate(zip(setting.lines, line_responses(setting, curves))):
        if envelope_below_tangent:
            resp = _envelope_below_tangent(resp, float(upper[i]))
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
    # An S-shaped line whose box lies in its concave part (at or past the inflection) is concave there:
    # its concave envelope over the box is the curve itself, so the envelope's LP is exact and the
    # mixed-integer model (about a second a day on 20 lines) is needed only when a box reaches below.
    exact_envelope = all(c.is_concave or lower[i] >= c.inflection for i, c in enumerate(cs))
    plan = allocate(
        cs,
        budget=float(budget),
        rules=Rules(budget_mode="eq"),
        s_curves=s_curves or ("envelope" if exact_envelope else "milp"),
    )
    return plan.lines["spend"].to_numpy(dtype=float)


def line_responses(setting: Setting, curves: dict) -> list[dict]:
    """Each line's response block of ``curves`` (a curves.json dict), in ``setting.lines`` order; a
    negative coefficient counts as no effect (beta 0), as the loops plan it."""
    by = {(c["name"], c["market"]): c for c in curves["channels"]}
    out = []
    for key in setting.lines:
        resp = dict(by[key]["response"])
        resp["beta"] = max(float(resp["beta"]), 0.0)
        out.append(resp)
    return out


def _envelope_below_tangent(resp: dict, upper: float) -> dict:
    """An S-shaped Hill ``resp`` as its concave envelope from zero when ``upper`` is below the tangent point.

    Below the tangent point of :func:`causal.response.envelope_tangent` (anchored at zero) the
    envelope is the straight line of the curve's slope there (a ``linear`` curve). Other curves are
    returned as they are.
    """
    if resp.get("form") != "hill" or float(resp.get("shape", 1.0)) <= 1.0 or resp["beta"] <= 0:
        return resp
    tangent = float(R.envelope_tangent("hill", resp, 0.0))
    if upper > tangent:
        return resp
    return {"form": "linear", "beta": float(R.derivative("hill", tangent, resp))}


def fit_hill_curve(xs: np.ndarray, ys: np.ndarray) -> dict:
    """The Hill curve (free coefficient, half-saturation and shape in [0.3, 4]) closest to ``ys`` at
    ``xs`` in least squares, from six starts; a curve that is nowhere positive is no effect (beta 0)."""
    from scipy.optimize import least_squares

    top, scale = float(xs.max()), float(ys.max())
    if scale <= 0:
        return {"form": "hill", "beta": 0.0, "half_saturation": top, "shape": 1.0}

    def resid(p: np.ndarray) -> np.ndarray:
        b, k, n = np.exp(p)
        return (R.value("hill", xs, {"beta": b, "half_saturation": k, "shape": n}) - ys) / scale

    fits = [
        least_squares(
            resid,
            np.log([2 * scale, top * k0, n0]),
            bounds=(np.log([1e-12, 1e-3 * top, 0.3]), np.log([1e6 * scale, 1e3 * top, 4.0])),
        )
        for k0 in (0.1, 0.5, 2.0)
        for n0 in (1.0, 2.0)
    ]
    b, k, n = np.exp(min(fits, key=lambda r: r.cost).x)
    return {"form": "hill", "beta": float(b), "half_saturation": float(k), "shape": float(n)}


def spend_grid(setting: Setting, i: int, reach: float = 4.0) -> np.ndarray:
    """Where a line's planning curve is fitted: 60 points on ``(0, reach x status quo]``."""
    return np.linspace(0.0, reach * max(float(setting.status_quo[i]), 1.0), 61)[1:]


def average_curves(
    history: list[dict], setting: Setting, weights: Sequence[float] | None = None
) -> dict:
    """One Hill curve per line: the least-squares fit to the average of ``history``'s curves.

    ``history`` holds curves.json dicts (the loop's recent weekly calibrations). The response
    model picks each channel's saturation form and shape from a coarse grid at every refit, and the
    pick flips between refits (a log curve one month, a Hill of shape 2 the next) while the data
    hardly change: each refit is one draw of the shape. Planning on their average response is
    model averaging with equal weights; the average is fitted by one Hill curve per line
    (:func:`fit_hill_curve`, on :func:`spend_grid`) so the product's planner takes it. A negative
    coefficient counts as no effect, as :func:`plan_lines` plans it. ``weights`` (one per curves
    dict, summing to one) weigh the average; equal weights when None.
    """
    w = None if weights is None else np.asarray(weights, float)
    if w is not None and np.all(w == w[0]):
        w = None  # equal weights: the plain mean (the same floating-point sums as always)
    responses = [line_responses(setting, curves) for curves in history]
    out = []
    for i, key in enumerate(setting.lines):
        xs = spend_grid(setting, i)
        ys = np.zeros_like(xs)
        for j, resps in enumerate(responses):
            f = _curve_fn(resps[i])
            ys += f(xs) if w is None else w[j] * f(xs)
        mean = ys / len(history) if w is None else ys
        out.append({"name": key[0], "market": key[1], "response": fit_hill_curve(xs, mean)})
    return {"channels": out}


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
        """Run the world with the plan and the tests ``cuts`` (:meth:`with_tests`)."""
        return self.world.run(spend=self.with_tests(self.to_geos(plan), cuts))

    def with_tests(self, spend: dict[str, np.ndarray], tests: list[dict]) -> dict[str, np.ndarray]:
        """``spend`` (days x geos per channel) with each test's intervention applied.

        A test is a dict with ``channel``, ``geos`` and ``first``/``last`` day indices; its
        ``multiplier`` (default 0, a go-dark) scales the channel's spend in its markets and days:
        0.5 a half cut, 1.5 a heavy-up (:func:`spend_multiplier`).
        """
        out = {ch: s.copy() for ch, s in spend.items()}
        idx = {g: i for i, g in enumerate(self.world.geos)}
        for t in tests:
            cols = [idx[g] for g in t["geos"]]
            out[t["channel"]][t["first"] : t["last"] + 1, cols] *= spend_multiplier(t)
        return out

    def test_spend(self, plan: np.ndarray, tests: list[dict]) -> dict[str, float]:
        """Spend the tests moved over the horizon: ``saved`` by cuts, ``extra`` added by heavy-ups."""
        base = self.to_geos(plan)
        moved = self.with_tests(base, tests)
        diff = sum(float((moved[ch] - base[ch]).clip(min=0).sum()) for ch in base)
        cut = sum(float((base[ch] - moved[ch]).clip(min=0).sum()) for ch in base)
        return {"saved": cut, "extra": diff}

    def incremental(self, run: WorldRun) -> np.ndarray:
        """True expected incremental signups per horizon day (media-caused, mediated path included)."""
        return run.media_caused(slice(self.start, self.start + self.days)).sum(axis=1)

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


def panel_before(setting: Setting, frame: pd.DataFrame, day: int) -> Panel:
    """The panel of every date before the horizon's ``day`` (what a fit on that day may see)."""
    last = _date(setting.world, setting.start + day - 1)
    return load_panel(frame[frame["date"] <= last].reset_index(drop=True))


def cluster_mapping(world: World) -> dict[str, str]:
    """The world's market clusters as a user's mapping would give them (models never parse geo ids)."""
    return {g: CLUSTERS[c] for g, c in zip(world.geos, world.cluster_of)}


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
    """Pairs ``(i, j)`` of tests that share a market while their windows overlap (must be empty).

    The experiment registry's own conflict rule (:meth:`experiments.registry.Registry.conflicts`, no
    washout), on an in-memory registry. A test is a dict with ``geos`` and ``start``/``end`` dates (or
    ``first``/``last`` day indices).
    """
    epoch = date(2000, 1, 1)

    def span(t: dict) -> tuple:
        if "start" in t:
            return t["start"], t["end"]
        return epoch + timedelta(days=int(t["first"])), epoch + timedelta(days=int(t["last"]))

    out = []
    with Registry("sqlite://") as reg:
        for j, t in enumerate(tests):
            s, e = span(t)
            out += [(int(c.other[1:]), j) for c in reg.conflicts(t["geos"], s, e, washout_days=0)]
            reg.add(
                f"t{j}", cells=list(t["geos"]), start=s, end=e, washout_days=0, allow_overlap=True
            )
    return sorted(out)


def guardrail_ratio(
    plan: np.ndarray, history: np.ndarray, current: np.ndarray, max_change: float
) -> float:
    """Largest change of a line within any 7-day window, over ``max_change * current`` (<= 1 keeps the rule).

    ``plan`` and ``history`` are days x lines; :func:`allocation.constraints.guardrail_violation` is the rule.
    """
    return guardrail_violation(
        np.asarray(plan).T, np.asarray(history).T, np.asarray(current), max_change
    )
