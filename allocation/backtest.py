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
  model (:class:`allocation.response_model.ResponseModel`) on the panel so far and re-plan
  on it; ``calibrated=True`` calibrates it on the battery's lifts first
  (:func:`allocation.calibration.calibrate`). The observational policy jumps to
  its model's optimum (the quarterly way); the default calibrated one moves each
  line within a trust region (``max_step=2``: half to double the plan in force),
  because a fitted curve and a go-dark lift speak only for spend near the
  current one.
* :class:`DailyLoop` — each week proposes a go-dark test of one channel in one
  cluster, on markets the design module picks among those no other test occupies
  (the loop's experiment registry decides, :class:`experiments.registry.Registry`), runs it in the world, reads it out
  (:func:`experiments.readout.read_out`) when it ends, recalibrates weekly (the
  response model is refitted every four weeks and reused in between), and
  re-plans every day within the 15%-per-7-days guardrail. Every decision goes
  to the audit trail (:class:`allocation.audit.AuditLog`).
* :class:`~allocation.backtest_structural.StructuralLoop` (``compare_tests=True``) — the daily loop
  on the product's default calibration (:class:`allocation.structural.StructuralModel`, refitted
  weekly), its tests chosen by value of information (:func:`allocation.next_test.propose_tests`),
  round-robin, or none, at equal test budget.
* :class:`GuardedOracle` (``compare_tests=True``) — the oracle held to the daily guardrail.
* :class:`Oracle` — the best allocation on the world's true steady-state curves.

The world adapter and the planner are in :mod:`allocation.backtest_setting`, the policies in
:mod:`allocation.backtest_policies` and :mod:`allocation.backtest_structural`; this module runs them.

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

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allocation.audit import AuditLog
from allocation.backtest_policies import (  # noqa: F401  (public names of allocation.backtest)
    PLANNED_BIAS,
    DailyLoop,
    GuardedOracle,
    Oracle,
    QuarterlyModel,
    StatusQuo,
    confounding_prior,
    true_curve_fns,
)
from allocation.backtest_setting import (  # noqa: F401
    QUARTER,
    WEEK,
    Setting,
    _date,
    best_allocation,
    guardrail_ratio,
    make_setting,
    overlapping_tests,
    plan_lines,
)
from causal.progress import progress
from causal.summary import Summary
from causal.world import World


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
    loops, loop_tests : dict loop name -> dict, list
        Every loop's test count, ``given_up``, ``guardrail`` and ``overlaps``; its tests. ``tests``,
        ``given_up``, ``guardrail`` and ``overlaps`` above are the first loop's.
    credit : DataFrame or None
        Loops with a model of channel credit (:class:`allocation.backtest_structural.StructuralLoop`):
        each channel's credit over the panel at the horizon's end, over its true contribution.
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
    loops: dict = field(default_factory=dict)
    loop_tests: dict = field(default_factory=dict)
    credit: pd.DataFrame | None = None

    def summary(self) -> Summary:
        """The scoreboard as text (``print(result.summary())``), with ``summary_table`` as its table."""
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
        for name, r in self.loops.items():
            lines.append(
                f"  {name}: {r['n_tests']} tests, signups given up {r['given_up']['signups']:,.0f}, "
                + (
                    f"extra spend of heavy-ups {r['given_up']['extra_spend']:,.0f}, "
                    if r["given_up"].get("extra_spend")
                    else ""
                )
                + f"guardrail ratio {r['guardrail']:.3f} (<= 1 kept), overlapping tests "
                f"{len(r['overlaps'])}"
            )
        tables = {"policies": t}
        if self.credit is not None:
            lines.append("  each channel's credit at the end of the horizon, x its truth:")
            for name, r in self.credit.iterrows():
                ratios = "  ".join(f"{ch} {v:.2f}x" for ch, v in r.items())
                lines.append(f"  {name:<{width}} {ratios}")
            tables["credit"] = self.credit
        return Summary("\n".join(lines), tables)

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
            "loops": self.loops,
            "loop_tests": self.loop_tests,
            "credit": None if self.credit is None else self.credit.to_dict(orient="index"),
        }

    def plot(self, *, ax=None):
        """Cumulative true incremental signups per policy; returns ``(fig, ax)``."""
        import matplotlib.pyplot as plt

        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 4))
        for name, g in self.daily.groupby("policy", sort=False):
            ax.plot(pd.to_datetime(g["date"]), g["cum_incremental"], label=name)
        ax.set_ylabel("cumulative true incremental signups")
        ax.legend()
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


# Horizons at least this long average the daily loop's last 13 weekly calibrations
# (``DailyLoop(average_weeks=13)``); shorter ones plan on the week's own. Averaging pays where the
# response model, refitted every 28 days, re-picks its curves' shape several times within the window
# (the half-year: +7 and +9 points of the oracle's gain on seeds 1 and 2, -3 on seed 3); over eight
# weeks there are two refits, and averaging only keeps calibrations with fewer lifts (the notebook's
# 16-market world: 24% of the oracle's gain with the week's own curves, 12% / 0% / -16% averaging
# 2 / 4 / 13 weeks). docs/backtest.md has the study. The same horizons also average the response
# model's calibration with the structural model's fit (``DailyLoop(average_models=True)``): on the
# half-year, seeds 0-11, docs/backtest.md "Two model classes averaged".
AVERAGE_FROM_DAYS = 182


def default_policies(
    audit: AuditLog | None = None,
    *,
    compare_tests: bool = False,
    days: int = 182,
    daily_options: dict | None = None,
) -> list:
    """The scoreboard's policies; ``compare_tests`` adds the structural-model loops with no tests,
    round-robin tests and tests chosen by value of information, and the oracle within the guardrail.
    ``days`` (the horizon) sets whether the daily loop averages its calibrations
    (:data:`AVERAGE_FROM_DAYS`); ``daily_options`` are more of :class:`DailyLoop`'s parameters
    (e.g. ``intensities``)."""
    from allocation.backtest_structural import StructuralLoop

    extra = (
        [
            StructuralLoop(proposer="none"),
            StructuralLoop(proposer="design"),
            StructuralLoop(proposer="voi"),
            GuardedOracle(),
        ]
        if compare_tests
        else []
    )
    return [
        StatusQuo(),
        QuarterlyModel(calibrated=False),
        QuarterlyModel(calibrated=True, max_step=2.0),
        DailyLoop(
            audit=audit,
            **{
                "average_weeks": 13 if days >= AVERAGE_FROM_DAYS else 1,
                "average_models": days >= AVERAGE_FROM_DAYS,
                **(daily_options or {}),
            },
        ),
        *extra,
        Oracle(),
    ]


def backtest(
    world: World,
    *,
    days: int = 182,
    seed: int = 0,
    policies: list | None = None,
    audit: AuditLog | None = None,
    compare_tests: bool = False,
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
    compare_tests : bool, default=False
        With the default policies, add the structural-model loops (no tests, round-robin, value of
        information) and the oracle within the guardrail (:func:`default_policies`).

    Returns
    -------
    BacktestResult
    """
    setting = make_setting(world, days, seed=seed)
    policies = (
        default_policies(audit, compare_tests=compare_tests, days=days)
        if policies is None
        else policies
    )
    rows, spent, incs, plans, loops = [], {}, {}, {}, []
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
            loops.append((pol, plan, inc, sp))
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
    per_loop = {pol.name: _loop_record(setting, pol, plan, inc, sp) for pol, plan, inc, sp in loops}
    credit = [pol.credit(setting, plan) for pol, plan, _, _ in loops if hasattr(pol, "credit")]
    first = per_loop[loops[0][0].name] if loops else None
    tests = first["tests"] if first else []
    decisions = pd.DataFrame(loops[0][0].log_) if loops else pd.DataFrame()
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
        daily,
        table,
        tests,
        decisions,
        first["given_up"] if first else {"signups": 0.0, "spend": 0.0},
        first["guardrail"] if first else 0.0,
        first["overlaps"] if first else [],
        settings,
        plans,
        loops={k: {kk: v for kk, v in r.items() if kk != "tests"} for k, r in per_loop.items()},
        loop_tests={k: r["tests"] for k, r in per_loop.items()},
        credit=pd.DataFrame(credit) if credit else None,
    )


def _loop_record(
    setting: Setting, pol: DailyLoop, plan: np.ndarray, inc: np.ndarray, sp: np.ndarray
) -> dict:
    """A loop's tests, what they cost (its plan run without them minus with them), guardrail, overlaps.

    ``given_up``: ``signups`` and ``spend`` are the plan run without the tests minus with them (a
    heavy-up gains signups for extra spend, so both can be negative); ``extra_spend`` is what the
    heavy-ups added over the plan (a test cost: the plan's budget is spent besides), ``saved_spend``
    what cuts saved; ``by_intensity`` counts the tests of each intensity. ``net_signups`` puts both
    on one scale, the spend moved valued at ``marginal_return`` (the true marginal return of the
    status quo's spend, spend-weighted over lines): ``signups - marginal_return * spend``, what the
    tests cost against spending the same money on the plan.
    """
    clean = setting.run(plan)
    moved = setting.test_spend(plan, pol.tests_)
    lam = status_quo_marginal_return(setting)
    signups = float(setting.incremental(clean).sum() - inc.sum())
    spend = float(setting.spend(clean).sum() - sp.sum())
    counts = dict(Counter(t.get("intensity", "go-dark") for t in pol.tests_))
    return {
        "n_tests": len(pol.tests_),
        "given_up": {
            "signups": signups,
            "spend": spend,
            "net_signups": signups - lam * spend,
            "marginal_return": lam,
            "extra_spend": moved["extra"],
            "saved_spend": moved["saved"],
            "by_intensity": counts,
        },
        "guardrail": guardrail_ratio(
            plan, np.tile(setting.status_quo, (WEEK - 1, 1)), setting.status_quo, pol.max_change
        ),
        "overlaps": overlapping_tests(pol.tests_),
        "tests": [{k: v for k, v in t.items() if k not in ("first", "last")} for t in pol.tests_],
    }


def line_marginal_returns(fns: list, x: np.ndarray) -> np.ndarray:
    """Each line's marginal return at spend ``x``: central difference of its curve function."""
    h = np.maximum(x, 1.0) * 1e-4
    return np.array(
        [
            float((f(np.array([xi + hi])) - f(np.array([xi - hi])))[0] / (2 * hi))
            for f, xi, hi in zip(fns, x, h)
        ]
    )


def status_quo_marginal_return(setting: Setting) -> float:
    """True signups per extra unit of spend at the status quo: each line's true marginal return
    (:func:`line_marginal_returns` on its steady-state curve), weighted by the line's spend."""
    x = setting.status_quo
    return float(line_marginal_returns(true_curve_fns(setting), x) @ x / x.sum())
