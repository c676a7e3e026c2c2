"""Which test next, on the calibrated curves: candidates from the design search, valued by their information.

This is the allocation side of :mod:`experiments.test_planner`. It turns a
curves.json with posterior draws into what the planner needs:

* the **plan** made under posterior weights over the draws: the one static
  allocator (:class:`allocation.optimize.Allocator`) on curves whose
  coefficients give the weighted posterior's marginal return at current spend
  (shapes stay at their point values, an S-shaped line is replaced by its
  local concave stand-in, so the parametrised problem is built once and
  re-solved, not rebuilt);
* the plan's **outcome under every draw** (the curve core, vectorised over draws);
* **candidate tests**: treated market sets and lengths from the design search
  among the free markets (the registry's busy markets excluded), each channel
  that spends in them, at each intensity; a test's standard error comes from
  the design's simulated MDE, ``se = MDE / (z_{1-alpha/2} + z_{power})``, widened as the
  readout of a chosen set widens it (:mod:`experiments.readout_selection`), and its
  lift under each draw from the draw's curves over the test's markets;
* its **cost** in outcome units: the outcome forgone in the treated markets,
  less what the spend it frees would earn at the plan's marginal return (or
  plus what the extra spend of a heavy-up would have earned elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from allocation.business_rules import Rules
from allocation.curves import CurveSet
from allocation.optimize import Allocator
from causal import response as R
from causal.base import make_estimator
from causal.errors import ConfigError, DataError
from causal.panel import Panel
from experiments.design import design_experiment
from experiments.readout_selection import set_selection_scale
from experiments.test_planner import (
    CandidateTest,
    TestValue,
    evaluate_tests,
    ranking_table,
    weighted_quantile,
)

INTENSITIES = {"go-dark": 0.0, "half": 0.5, "heavy-up": 1.5}


def posterior(curves: CurveSet, *, max_draws: int | None = None) -> CurveSet:
    """``curves`` with at most ``max_draws`` of its posterior draws; an error if it has fewer than two."""
    n = curves.n_draws
    if n < 2:
        raise DataError(
            f"{curves.source}: the curves have {'no' if n == 0 else 'one'} posterior draw "
            "('response_draws'); the test planner needs the calibration's posterior draws "
            "(write the curves with liftlab calibrate)"
        )
    k = min(n, max_draws or n)
    return replace(
        curves, draws=[{key: np.asarray(v)[:k] for key, v in d.items()} for d in curves.draws]
    )


def draw_marginals(curves: CurveSet, spend: np.ndarray) -> np.ndarray:
    """Marginal outcome per unit of spend of each line (rows) under every draw (columns)."""
    return np.array(
        [
            R.derivative(c.form, x, {**c.params, **{k: v for k, v in d.items() if k != "decay"}})
            for c, x, d in zip(curves, np.asarray(spend, float), curves.draws)
        ]
    )


def local_concave(curves: CurveSet, spend: np.ndarray) -> CurveSet:
    """``curves`` with each S-shaped line replaced by the power curve through its value and slope at
    ``spend`` (exponent = the curve's elasticity there, at most 1).

    The test planner re-makes the plan hundreds of times under reweighted posteriors, inside the
    guardrail band around current spend: there a curve is described by its level and slope, and a
    concave stand-in keeps every re-plan a re-solve of one convex problem (an S-shaped line would
    make each one a piecewise-linear model). The plans are valued on the true draws, not on these.
    """
    lines = []
    for c, x in zip(curves, np.asarray(spend, float)):
        if c.is_concave:
            lines.append(c)
            continue
        level, slope = float(c.evaluate(x)), float(c.marginal(x))
        e = float(np.clip(slope * x / level, 0.05, 1.0)) if x > 0 and level > 0 else 1.0
        beta = level / x**e if x > 0 and level > 0 else 0.0
        lines.append(replace(c, form="power", params={"beta": beta, "exponent": e}))
    return replace(curves, curves=lines)


def subset(curves: CurveSet, idx: Sequence[int]) -> CurveSet:
    """The lines ``idx`` of ``curves``, with their draws."""
    return replace(
        curves, curves=[curves.curves[i] for i in idx], draws=[curves.draws[i] for i in idx]
    )


@dataclass
class Proposal:
    """Ranked candidate tests and what they are worth; ``to_dict()`` is proposals.json."""

    values: list[TestValue]
    horizon: int
    period: str
    n_draws: int
    channel_intervals: pd.DataFrame
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def best(self) -> TestValue:
        return self.values[0]

    @property
    def table(self) -> pd.DataFrame:
        return ranking_table(self.values)

    def summary(self) -> str:
        lines = [
            f"{len(self.values)} candidate tests ranked by net value over {self.horizon} {self.period}s "
            f"({self.n_draws} posterior draws)",
            "",
        ]
        head = f"{'#':>2}  {'test':<52} {'value':>10} {'cost':>10} {'net':>10} {'lift sd now -> after':>22}"
        lines.append(head)
        for i, v in enumerate(self.values[:10], 1):
            lines.append(
                f"{i:>2}  {v.test.label:<52} {v.value:>10,.0f} {v.cost:>10,.0f} {v.net_value:>10,.0f} "
                f"{v.prior_sd:>10,.0f} -> {v.posterior_sd:>9,.0f}"
            )
        lines += ["", "markets of the best: " + ", ".join(self.best.test.markets)]
        lines += [f"warning: {w}" for w in self.warnings] + [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "period": self.period,
            "n_draws": self.n_draws,
            "best": self.best.to_dict(),
            "candidates": [v.to_dict() for v in self.values],
            "channels": self.channel_intervals.reset_index().to_dict(orient="records"),
            "settings": self.settings,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    def plot(self, *, ax=None, top: int = 12):
        import matplotlib.pyplot as plt

        rows = self.values[:top][::-1]
        if ax is None:
            fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
        else:
            fig = ax.figure
        y = np.arange(len(rows))
        ax.barh(
            y + 0.2,
            [v.value for v in rows],
            height=0.4,
            color="#2f5fa7",
            label="value of information",
        )
        ax.barh(
            y - 0.2,
            [v.cost for v in rows],
            height=0.4,
            color="#c0504d",
            label="cost (outcome forgone)",
        )
        ax.set_yticks(y, [v.test.label for v in rows], fontsize=8)
        ax.axvline(0, color="#444", lw=0.8)
        ax.set_xlabel(f"signups over {self.horizon} {self.period}s")
        ax.set_title("Candidate tests: expected value of information vs cost")
        # below the axes: the bars fill the plot, a legend inside would cover some
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
        fig.tight_layout()
        return fig, ax


class _Planner:
    """Plan maker and plan value over the posterior draws, on the one static allocator."""

    def __init__(
        self, post: CurveSet, *, budget: float, max_change: float | None, solver: str
    ) -> None:
        self.post = post
        self.curves = post
        self.current = self.curves.current(
            required=True, why="the test planner needs (it values moves from it)"
        )
        self.rules = Rules(budget=budget, max_change=max_change)
        self.allocator = Allocator(solver=solver, s_curves="envelope")
        self.local = local_concave(self.curves, self.current)
        # Marginal return of each line at current spend under each draw, and the point curve's own.
        self._marg = draw_marginals(post, self.current)  # (lines, S)
        self._point_marg = np.array(
            [c.marginal(x) for c, x in zip(self.curves, self.current)], float
        )
        self._cache: dict[bytes, np.ndarray] = {}

    def plan(self, w: np.ndarray) -> np.ndarray:
        """The plan under posterior weights ``w``: each line's coefficient scaled so that its marginal
        return at current spend is the weighted posterior's; shapes stay fixed, so the parametrised
        problem is built once and re-solved."""
        # Readouts that barely move the posterior give the same plan: no new solve.
        key = np.round(w * len(w), 3).tobytes()
        if key not in self._cache:
            ratio = np.where(
                self._point_marg > 0,
                (self._marg @ w) / np.where(self._point_marg > 0, self._point_marg, 1.0),
                1.0,
            )
            params = [
                {**c.params, "beta": float(c.params["beta"]) * float(r)}
                for c, r in zip(self.local, ratio)
            ]
            plan = self.allocator.solve(self.local.with_params(params), self.rules)
            self._cache[key] = np.asarray(plan.to_frame()["spend"], float)
        return self._cache[key]

    def value(self, spend: np.ndarray) -> np.ndarray:
        return self.post.draw_values(spend).sum(axis=0)


def propose_tests(
    curves: CurveSet,
    panel: Panel,
    *,
    channels: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    excluded_by: str = "other tests",
    n_treated: tuple[int, int] | None = None,
    durations: Sequence[int] | None = None,
    intensities: Sequence[str] = ("go-dark", "heavy-up"),
    n_sets: int = 3,
    budget: float | None = None,
    max_change: float | None = 0.15,
    replan_every: int | None = None,
    horizon: int | None = None,
    alpha: float = 0.1,
    power_target: float = 0.8,
    n_outcomes: int = 16,
    max_draws: int | None = 100,
    n_windows: int = 12,
    n_screen_windows: int = 2,
    solver: str = "CLARABEL",
    seed: int = 0,
) -> Proposal:
    """Rank candidate tests by the expected value of their information for the budget decision.

    Parameters
    ----------
    curves : CurveSet
        Calibrated per-market curves with posterior draws (``liftlab calibrate``).
    panel : Panel
        The history the design search simulates tests on.
    channels : sequence of str, optional
        Channels that may be tested (default: every channel of the curves).
    exclude : sequence of str
        Markets that cannot be treated (e.g. the registry's busy markets).
    excluded_by : str, default="other tests"
        What occupies the excluded markets, for the message when too few are free (e.g. the
        registry's tests over the candidate window).
    n_treated : (low, high), optional
        Treated-set sizes of the design search (default 3 to a quarter of the markets: weak
        channels need large tests to be seen at all).
    durations : sequence of int, optional
        Test lengths in the panel's periods (default: what
        :func:`experiments.design.design_experiment` chooses for the history).
    intensities : sequence of {"go-dark", "half", "heavy-up"}
    n_sets : int
        Best market sets of the design search to consider.
    budget, max_change : float
        The plan the test would inform: its budget (default current spend) and guardrail.
    replan_every : int, optional
        Periods between re-plans when ``max_change`` is a guardrail per re-plan (e.g. 7 for a weekly
        guardrail on a daily panel). The plan a test informs is then the one reachable over the
        horizon: lines may move ``(1 + max_change) ** (horizon / replan_every) - 1``, at most
        ``MAX_PLAN_BAND`` (50%: the re-plans' stand-ins of S-shaped lines are local). ``None`` holds
        every plan of the horizon to one step of the guardrail, as if the plan could never move
        farther.
    horizon : int, optional
        Periods the better plan pays over (default: a year of the panel's periods).
    n_outcomes, max_draws, n_windows : simulated readouts per candidate, posterior draws
        used, and historical windows per design candidate.
    n_screen_windows : int, default=2
        Windows on which the design search screens every market set before simulating its best on
        ``n_windows`` (the search's default is 4; the screen only ranks sets, the finalists' noise
        comes from all ``n_windows``, and 2 halves the proposal's design time on 50 markets).

    Raises
    ------
    ConfigError
        No free markets, no channel with spend to test, an unknown intensity.
    """
    post = posterior(curves, max_draws=max_draws)
    names = list(dict.fromkeys(curves.names))
    channels = list(channels) if channels else names
    for ch in channels:
        if ch not in names:
            raise ConfigError(f"channel '{ch}' is not in the curves ({', '.join(names)})")
    for k in intensities:
        if k not in INTENSITIES:
            raise ConfigError(f"unknown intensity '{k}' (use {', '.join(INTENSITIES)})")
    markets = {m for m in curves.markets if m is not None}
    unknown = sorted(markets - set(panel.geos))
    if unknown:
        raise DataError(
            f"{curves.source}: market '{unknown[0]}' of the curves is not a geo of the panel"
        )
    free = [g for g in panel.geos if g not in set(exclude)]
    if n_treated is None:
        n_treated = (min(3, max(1, len(free) - 1)), max(6, len(free) // 4))
        n_treated = (n_treated[0], min(n_treated[1], max(n_treated[0], len(free) - 2)))
    if len(free) < n_treated[0] + 2:
        raise ConfigError(
            f"only {len(free)} markets are free of {excluded_by}, fewer than the {n_treated[0] + 2} a test "
            f"of {n_treated[0]} treated markets and 2 controls needs; wait for a test to end or allow overlap"
        )
    current = curves.current(required=True, why="the test planner needs")
    spend_by_channel = {
        ch: float(sum(x for c, x in zip(curves, current) if c.name == ch)) for ch in channels
    }
    testable = [ch for ch in channels if spend_by_channel[ch] > 0]
    if not testable:
        raise ConfigError(
            f"no channel among {', '.join(channels)} has spend to cut or raise in the curves"
        )
    budget = float(np.sum(current)) if budget is None else float(budget)
    per = panel.period_name
    per_year = {"day": 365, "week": 52, "month": 12, "year": 1}.get(per, 365)
    horizon = int(horizon or per_year)

    kw = {} if durations is None else {"durations": tuple(int(d) for d in durations)}
    # The search only has to supply a few good market sets and their noise: fewer windows and finalists,
    # no greedy refinement and no separate null windows keep it a fraction of a full design search.
    design = design_experiment(
        panel,
        n_treated=tuple(n_treated),
        exclude=list(exclude),
        alpha=alpha,
        power_target=power_target,
        n_windows=n_windows,
        n_screen_windows=n_screen_windows,
        n_finalists=2 * n_sets,
        greedy_rounds=0,
        n_null_windows=0,
        seed=seed,
        **kw,
    )
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power_target)
    sets, seen = [], set()
    for d in design.candidates:
        dd = d.to_dict()
        inc = dd.get("mde_incremental")
        key = (tuple(sorted(d.treated)), d.duration)
        if inc is None or not np.isfinite(inc) or key in seen:
            continue
        seen.add(key)
        sets.append((tuple(d.treated), int(d.duration), abs(float(inc)) / z, abs(float(inc))))
        if len(sets) >= n_sets:
            break
    if not sets:
        raise ConfigError(
            "the design search found no market set that reaches the power target among the free "
            "markets; widen --treated or allow longer tests"
        )

    sets = _selection_widened(panel, sets, exclude, seed)
    band = _horizon_band(max_change, horizon, replan_every)
    planner = _Planner(post, budget=budget, max_change=band, solver=solver)
    base_plan = planner.plan(np.full(post.n_draws, 1.0 / post.n_draws))
    lam = _marginal_return(planner, base_plan)
    tests = []
    for ch in testable:
        idx_all = [i for i, c in enumerate(curves) if c.name == ch]
        for treated, periods, se, mde in sets:
            idx = [i for i in idx_all if curves.curves[i].market in set(treated)]
            if not idx:
                continue
            x0 = current[idx]
            if x0.sum() <= 0:
                continue
            for kname in intensities:
                k = INTENSITIES[kname]
                sub = subset(post, idx)
                lift = periods * (sub.draw_values(k * x0) - sub.draw_values(x0)).sum(axis=0)
                dspend = periods * float(((k - 1.0) * x0).sum())
                tests.append(
                    CandidateTest(
                        ch, tuple(treated), periods, k, se, lift, dspend, mde=mde, period=per
                    )
                )
    if not tests:
        raise ConfigError(
            "no candidate test: none of the channels spends in the market sets the design found"
        )
    channel_draws = _channel_draws(post, current, names)
    level = 0.9
    q = ((1 - level) / 2, (1 + level) / 2)
    track = {
        f"width:{ch}": (lambda w, d=d: float(np.diff(weighted_quantile(d, w, q))[0]))
        for ch, d in channel_draws.items()
    }
    values = evaluate_tests(
        tests,
        planner.plan,
        planner.value,
        horizon=horizon,
        n_outcomes=n_outcomes,
        alpha=alpha,
        seed=seed,
        spend_value=lam,
        track=track,
    )
    intervals = _channel_intervals(channel_draws, values, level)
    notes = [
        f"market sets from the design search ({len(sets)} kept of {len(design.candidates)}); standard "
        f"error = MDE / {z:.2f}, widened as the readout of a chosen set widens it",
        f"plans re-made under reweighted posteriors by the static allocator (guardrail {max_change}"
        + (
            f" every {replan_every} {per}s: over the horizon " + f"a band of {band:.0%}"
            if replan_every
            else ""
        )
        + ", budget "
        f"{budget:,.0f}); marginal return of spend {lam:.4g} {curves.outcome} per unit",
    ]
    settings = {
        "n_treated": list(n_treated),
        "durations": sorted({s[1] for s in sets}),
        "intensities": list(intensities),
        "budget": budget,
        "max_change": max_change,
        "replan_every": replan_every,
        "plan_band": band,
        "alpha": alpha,
        "power_target": power_target,
        "n_outcomes": n_outcomes,
        "n_screen_windows": n_screen_windows,
        "seed": seed,
        "exclude": sorted(exclude),
    }
    return Proposal(
        values,
        horizon,
        per,
        post.n_draws,
        intervals,
        settings,
        notes,
        verdict(values[0], horizon, float(np.mean(planner.value(base_plan)))),
    )


#: Largest move of a line the re-plans may make: they plan S-shaped lines through local stand-ins
#: (power curves through the value and slope at current spend), trusted near current spend only. With
#: no band the re-plans jumped to corners of near-linear stand-ins and the values were artifacts (the
#: demo's seed 2: a branded-search heavy-up "worth" 15,635 signups, everything within its noise).
MAX_PLAN_BAND = 0.5


def _horizon_band(max_change: float | None, horizon: int, replan_every: int | None) -> float | None:
    """How far a line may move over the horizon under a guardrail of ``max_change`` per re-plan."""
    if max_change is None or not replan_every:
        return max_change
    if replan_every < 1:
        raise ConfigError(
            f"replan_every must be a whole number of periods >= 1, got {replan_every}"
        )
    band = (1.0 + max_change) ** (horizon / replan_every) - 1.0
    return float(min(band, MAX_PLAN_BAND))


def _selection_widened(panel: Panel, sets: list, exclude: Sequence[str], seed: int) -> list:
    """Each market set's standard error as its readout will have it: the design search chose the set
    for its calm history, and the readout of a chosen set widens its interval by how much calmer that
    history is than random sets' of its size (:mod:`experiments.readout_selection`). Without this the
    planner expects intervals narrower than the readout gives."""
    wide = panel.wide()
    out = []
    for treated, periods, se, mde in sets:
        control = [g for g in panel.geos if g not in set(treated) and g not in set(exclude)]
        Y, X = wide[list(treated)].to_numpy(float), wide[control].to_numpy(float)
        factor = set_selection_scale(make_estimator("sc"), Y, X, int(periods), seed=seed)
        out.append((treated, periods, se * factor, mde * factor))
    return out


#: A test whose information is worth less than this share of the plan's outcome changes nothing.
NEGLIGIBLE_SHARE = 1e-4


def verdict(best: TestValue, horizon: int, plan_outcome: float | None = None) -> list[str]:
    """What the ranking means, said first: whether the best test is worth its cost at all.

    ``plan_outcome`` is today's plan's expected outcome per period: a best value below
    ``NEGLIGIBLE_SHARE`` of it over the horizon is called negligible.
    """
    if best.net_value <= 0:
        return [
            "no candidate's information is worth its cost over the horizon: the posterior already decides "
            "the plan, and the first row is the least costly test, not one worth its price"
        ]
    if best.value < 2 * best.evsi_se * horizon:
        return [
            f"the best candidate's value of information ({best.value:,.0f}) is within two Monte-Carlo "
            "standard errors of zero: it ranks first mostly on its low cost"
        ]
    if plan_outcome is not None and best.value < NEGLIGIBLE_SHARE * plan_outcome * horizon:
        return [
            f"the best candidate's value of information ({best.value:,.0f} over {horizon} periods) is "
            f"under {NEGLIGIBLE_SHARE:.2%} of the plan's outcome: no candidate can change the plan "
            "much (the guardrail bounds it, and no test here is precise enough to move the posterior "
            "far); it ranks first mostly on its low cost"
        ]
    return []


def _marginal_return(planner: _Planner, spend: np.ndarray) -> float:
    """Expected outcome per extra unit of spend at the plan: the spend-weighted mean marginal return."""
    marg = draw_marginals(planner.post, spend).mean(axis=1)
    w = spend / spend.sum() if spend.sum() > 0 else np.full(len(spend), 1.0 / len(spend))
    return float(w @ marg)


def _channel_draws(
    post: CurveSet, current: np.ndarray, channels: Sequence[str]
) -> dict[str, np.ndarray]:
    """Each channel's outcome per period at current spend under each draw."""
    lv = post.draw_values(current)
    return {
        ch: lv[[i for i, c in enumerate(post.curves) if c.name == ch]].sum(axis=0)
        for ch in channels
    }


def _channel_intervals(
    draws: dict[str, np.ndarray], values: list[TestValue], level: float
) -> pd.DataFrame:
    """Each channel's outcome per period at current spend: its interval now, and expected width after the
    best-ranked test of that channel (averaged over the simulated readouts)."""
    rows = []
    for ch, d in draws.items():
        lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
        best = next((v for v in values if v.test.channel == ch), None)
        rows.append(
            {
                "channel": ch,
                "mean": float(d.mean()),
                "lo": float(lo),
                "hi": float(hi),
                "width_now": float(hi - lo),
                "width_after_its_best_test": None if best is None else best.extra[f"width:{ch}"],
                "best_test": None if best is None else best.test.label,
            }
        )
    return pd.DataFrame(rows).set_index("channel")
