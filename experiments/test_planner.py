r"""Which test next: candidate experiments ranked by the expected value of their information.

A test is worth what it changes in the budget decision. With posterior draws
:math:`s = 1..S` of the response curves (weights :math:`w_s`, equal at first),
the plan made today is :math:`x(w)` and its expected regret is

.. math:: R(w) = \sum_s w_s \,[V_s(x^*_s) - V_s(x(w))],

the outcome lost by planning on the posterior instead of on the truth
(:math:`V_s` is draw :math:`s`'s outcome of a plan, :math:`x^*_s` its best
plan). A candidate test :math:`\tau` would report a lift
:math:`\hat L = L_s(\tau) + \sigma_\tau z`, where :math:`L_s(\tau)` is the
incremental outcome draw :math:`s` predicts for it and :math:`\sigma_\tau` the
readout's standard error (from the design's power machinery). Its expected
value of sample information (Raiffa & Schlaifer 1961; preposterior analysis) is

.. math:: \mathrm{EVSI}(\tau) = \mathbb{E}_{s, z}\big[V_s(x(w'(\hat L)))\big] - \sum_s w_s V_s(x(w)),

where :math:`w'_{s'} \propto w_{s'}\,\phi((\hat L - L_{s'}(\tau))/\sigma_\tau)` is
the posterior after the test, reweighted over the same draws (importance
weighting: no refit per simulated outcome). Each simulated readout's gain is
computed under that posterior, :math:`\max(0, \sum_{s'} w'_{s'}[V_{s'}(x(w')) - V_{s'}(x(w))])`:
the re-made plan is adopted only if the updated posterior prefers it to
today's (the plan maker is an approximation, so a re-made plan can be worse),
and averaging over :math:`w'` instead of reading the gain at the draw that
generated :math:`\hat L` has the same expectation with far less Monte-Carlo
noise. Before this (issue 16, session 5) a go-dark's estimate was often
negative: the approximate re-plans' losses outweighed its information. It is never negative, tends to zero as :math:`\sigma_\tau \to \infty` and to the
expected value of perfect information on the test's lift as
:math:`\sigma_\tau \to 0`. The value per period times the periods left in the
horizon, less the test's cost (outcome forgone in the treated markets), ranks
the candidates.

This module knows nothing of curves or optimisers: the caller passes the plan
maker and the value of a plan under every draw (``allocation`` does, from
curves.json's posterior draws), keeping ``experiments`` independent of
``allocation``.

References
----------
Raiffa, H. and Schlaifer, R. (1961). Applied Statistical Decision Theory. Harvard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from causal.errors import ConfigError

#: A plan maker: posterior weights over the draws -> a plan (any object ``value`` understands).
PlanMaker = Callable[[np.ndarray], Any]
#: The outcome per period of a plan under each draw: plan -> array of shape (S,).
PlanValue = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class CandidateTest:
    """One test that could be run.

    Parameters
    ----------
    channel : str
        The channel whose spend the test moves.
    markets : tuple of str
        Treated markets.
    periods : int
        Test length in the panel's periods.
    intensity : float
        Spend multiplier in the treated markets during the test (0 = go-dark,
        0.5 = half, 1.5 = heavy-up).
    se : float
        Standard error of the readout's incremental outcome for this test.
    lift_draws : ndarray of shape (S,)
        Incremental outcome of the test under each posterior draw.
    spend_delta : float
        Spend change the test causes (negative for a cut).
    mde : float or None
        The design's minimum detectable incremental outcome, for the report.
    period : str
        The panel's period name ("day", "week"), for the label.
    """

    channel: str
    markets: tuple[str, ...]
    periods: int
    intensity: float
    se: float
    lift_draws: np.ndarray
    spend_delta: float
    mde: float | None = None
    period: str = "period"

    @property
    def label(self) -> str:
        kind = "go-dark" if self.intensity == 0 else (f"x{self.intensity:g}")
        length = f"{self.periods} {self.period}{'s' if self.periods != 1 else ''}"
        return f"{self.channel} {kind} in {len(self.markets)} markets for {length}"


@dataclass
class TestValue:
    """The value of one candidate test (all in outcome units)."""

    test: CandidateTest
    evsi_per_period: float
    evsi_se: float
    value: float
    cost: float
    net_value: float
    prior_sd: float
    posterior_sd: float
    detectable_share: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        t = self.test
        return {
            "channel": t.channel,
            "markets": list(t.markets),
            "periods": t.periods,
            "intensity": t.intensity,
            "label": t.label,
            "se": t.se,
            "mde": t.mde,
            "spend_delta": t.spend_delta,
            "expected_lift": float(np.mean(t.lift_draws)),
            "evsi_per_period": self.evsi_per_period,
            "evsi_se": self.evsi_se,
            "value": self.value,
            "cost": self.cost,
            "net_value": self.net_value,
            "lift_sd_before": self.prior_sd,
            "lift_sd_after": self.posterior_sd,
            "detectable_share": self.detectable_share,
            **self.extra,
        }


def reweight(weights: np.ndarray, lift_draws: np.ndarray, observed: float, se: float) -> np.ndarray:
    """Posterior weights over the draws after a readout of ``observed`` with standard error ``se``."""
    logw = np.log(np.maximum(weights, 1e-300)) - 0.5 * ((observed - lift_draws) / se) ** 2
    logw -= logw.max()
    w = np.exp(logw)
    return w / w.sum()


def evaluate_tests(
    tests: Sequence[CandidateTest],
    plan: PlanMaker,
    value: PlanValue,
    *,
    horizon: int,
    weights: np.ndarray | None = None,
    n_outcomes: int = 64,
    alpha: float = 0.1,
    seed: int = 0,
    spend_value: float = 0.0,
    track: dict[str, Callable[[np.ndarray], float]] | None = None,
) -> list[TestValue]:
    """Rank candidate tests by net expected value of information (best first).

    Parameters
    ----------
    tests : sequence of CandidateTest
        Candidates; every ``lift_draws`` has the length S of the posterior.
    plan : callable
        Posterior weights (S,) -> a plan.
    value : callable
        A plan -> its outcome per period under each draw, shape (S,).
    horizon : int
        Periods over which a better plan pays (e.g. the quarter after the test).
    weights : ndarray, optional
        Current posterior weights over the draws (default equal).
    n_outcomes : int, default=64
        Simulated readouts per test (truth draws with common random numbers across tests).
    alpha : float, default=0.1
        Test level, for the share of truths under which the test would detect its effect.
    seed : int
        Seed of the simulated readouts.
    spend_value : float, default=0
        Outcome one unit of spend earns at the plan's margin: a test's cost is the
        outcome it forgoes plus ``spend_value`` times the spend it adds (minus for
        spend it frees), and never below zero.
    track : dict of name -> callable, optional
        Statistics of the posterior weights (e.g. a channel's interval width),
        averaged over the simulated readouts and stored in ``extra`` as ``name``.

    Returns
    -------
    list of TestValue, by ``net_value`` descending.
    """
    if not tests:
        raise ConfigError("no candidate test to rank: no channel and free markets could be tested")
    S = len(tests[0].lift_draws)
    w0 = np.full(S, 1.0 / S) if weights is None else np.asarray(weights, float) / np.sum(weights)
    rng = np.random.default_rng(seed)
    truths = rng.choice(S, size=n_outcomes, p=w0)
    z = rng.standard_normal(n_outcomes)
    base_plan = plan(w0)
    base_value = value(base_plan)  # (S,)
    crit = _normal_quantile(1 - alpha / 2)
    out = []
    for t in tests:
        L = np.asarray(t.lift_draws, float)
        if L.shape != (S,):
            raise ConfigError(f"test '{t.label}': lift_draws has shape {L.shape}, expected ({S},)")
        if not (np.isfinite(t.se) and t.se > 0):
            raise ConfigError(
                f"test '{t.label}': standard error must be finite and > 0, got {t.se}"
            )
        gains = np.empty(n_outcomes)
        post_sd = np.empty(n_outcomes)
        tracked = {name: np.empty(n_outcomes) for name in (track or {})}
        for k, (s, zk) in enumerate(zip(truths, z)):
            y = L[s] + t.se * zk
            w1 = reweight(w0, L, y, t.se)
            v1 = value(plan(w1))
            # After the readout the new plan is adopted only if the updated posterior prefers it to
            # today's (the plan maker is an approximation that can be worse); its gain is averaged
            # over that posterior, not read at the one draw s that generated the readout (same
            # expectation, far less noise; Rao-Blackwell). Each gain is then >= 0, as EVSI is.
            gains[k] = max(float(w1 @ (v1 - base_value)), 0.0)
            m = float(w1 @ L)
            post_sd[k] = float(np.sqrt(max(w1 @ (L - m) ** 2, 0.0)))
            for name, fn in (track or {}).items():
                tracked[name][k] = fn(w1)
        evsi = float(gains.mean())
        evsi_se = float(gains.std(ddof=1) / np.sqrt(n_outcomes)) if n_outcomes > 1 else float("nan")
        mean_lift = float(w0 @ L)
        prior_sd = float(np.sqrt(w0 @ (L - mean_lift) ** 2))
        # Outcome forgone in the test, plus what the spend it moves would earn at the plan's margin. A test
        # that earns more than it forgoes costs nothing; it is not credited with that gain, which belongs to
        # the plan (the guardrail, not ignorance, stops the plan from taking it).
        cost = max(0.0, -mean_lift + spend_value * t.spend_delta)
        val = evsi * horizon
        detect = float(w0 @ (np.abs(L) / t.se > crit))
        extra = {name: float(v.mean()) for name, v in tracked.items()}
        out.append(
            TestValue(
                t,
                evsi,
                evsi_se,
                val,
                cost,
                val - cost,
                prior_sd,
                float(post_sd.mean()),
                detect,
                extra,
            )
        )
    return sorted(out, key=lambda r: -r.net_value)


def expected_regret(
    plan: PlanMaker, value: PlanValue, best_values: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Expected outcome per period lost by planning on the posterior instead of the truth.

    ``best_values[s]`` is draw s's outcome under its own best plan.
    """
    S = len(best_values)
    w = np.full(S, 1.0 / S) if weights is None else np.asarray(weights, float) / np.sum(weights)
    return float(w @ (np.asarray(best_values, float) - value(plan(w))))


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Quantiles ``q`` of ``values`` under ``weights`` (inverse of the weighted empirical distribution)."""
    order = np.argsort(values)
    cw = np.cumsum(np.asarray(weights, float)[order])
    cw /= cw[-1]
    return np.asarray(values, float)[order][
        np.minimum(np.searchsorted(cw, np.asarray(q)), len(cw) - 1)
    ]


def ranking_table(values: Sequence[TestValue]) -> pd.DataFrame:
    """One row per candidate, best first: value, cost, net value, detectable effect, lift sd before/after."""
    return pd.DataFrame([v.to_dict() for v in values])


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))
