"""Value-of-information ranking of candidate tests on a problem with a closed-form plan (issue 16)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from causal.errors import ConfigError
from experiments.test_planner import CandidateTest, evaluate_tests, expected_regret, reweight

BUDGET = 10.0
S = 400


@pytest.fixture(scope="module")
def draws():
    rng = np.random.default_rng(0)
    # Channel a is well known; channel b's return is very uncertain.
    return np.column_stack([rng.normal(1.0, 0.02, S), np.exp(rng.normal(0.0, 0.6, S))])


def _plan(b):
    def plan(w):
        eb = w @ b  # expected coefficient per channel
        return eb * (BUDGET + 2) / eb.sum() - 1.0  # water-filling of sum eb_i log(1 + x_i)

    return plan


def _value(b):
    return lambda x: b @ np.log1p(np.maximum(x, 0.0))


def _test(b, channel, se, scale=5.0):
    return CandidateTest(
        channel=str(channel),
        markets=("m1",),
        periods=14,
        intensity=0.0,
        se=se,
        lift_draws=-scale * b[:, channel],
        spend_delta=-1.0,
    )


def test_uncertain_channel_is_worth_testing_and_precision_pays(draws):
    plan, value = _plan(draws), _value(draws)
    ranked = evaluate_tests(
        [_test(draws, 0, 0.5), _test(draws, 1, 0.5)], plan, value, horizon=1, n_outcomes=200
    )
    by = {r.test.channel: r for r in ranked}
    assert by["1"].evsi_per_period > by["0"].evsi_per_period + 3 * by["1"].evsi_se
    # A well-known channel's test changes the plan hardly at all (each simulated gain is >= 0).
    assert 0.0 <= by["0"].evsi_per_period < 0.01 * by["1"].evsi_per_period
    assert by["1"].posterior_sd < by["1"].prior_sd
    evsi = [
        evaluate_tests([_test(draws, 1, se)], plan, value, horizon=1, n_outcomes=200)[
            0
        ].evsi_per_period
        for se in (0.05, 1.0, 1e6)
    ]
    assert evsi[0] > evsi[1] > abs(evsi[2])
    assert abs(evsi[2]) < 1e-6
    # A perfect test is worth (almost) all the regret: channel b is the only unknown.
    best = np.array([value(_plan(draws)(np.eye(S)[s]))[s] for s in range(S)])
    assert evsi[0] == pytest.approx(expected_regret(plan, value, best), rel=0.15)


def test_net_value_charges_the_signups_forgone(draws):
    ranked = evaluate_tests(
        [_test(draws, 1, 0.5, scale=50.0), _test(draws, 1, 0.5, scale=5.0)],
        _plan(draws),
        _value(draws),
        horizon=1,
        n_outcomes=50,
    )
    assert all(r.cost == pytest.approx(-np.mean(r.test.lift_draws)) for r in ranked)
    priced = evaluate_tests(
        [_test(draws, 1, 0.5)],
        _plan(draws),
        _value(draws),
        horizon=1,
        n_outcomes=5,
        spend_value=2.0,
    )[0]
    assert priced.cost == pytest.approx(-np.mean(priced.test.lift_draws) - 2.0)
    assert [r.net_value for r in ranked] == sorted((r.net_value for r in ranked), reverse=True)


def test_reweighting_is_bayes_on_the_draws():
    w = reweight(np.full(3, 1 / 3), np.array([0.0, 1.0, 2.0]), observed=2.0, se=1.0)
    assert w[2] > w[1] > w[0] and w.sum() == pytest.approx(1.0)


def test_bad_candidates_are_refused(draws):
    with pytest.raises(ConfigError, match="no candidate test"):
        evaluate_tests([], _plan(draws), _value(draws), horizon=1)
    with pytest.raises(ConfigError, match="standard error"):
        evaluate_tests([_test(draws, 1, 0.0)], _plan(draws), _value(draws), horizon=1)


def test_a_test_that_earns_more_than_it_forgoes_costs_nothing(draws):
    heavy_up = CandidateTest(
        channel="1",
        markets=("m1",),
        periods=14,
        intensity=1.5,
        se=0.5,
        lift_draws=5.0 * draws[:, 1],
        spend_delta=1.0,
    )
    r = evaluate_tests(
        [heavy_up], _plan(draws), _value(draws), horizon=1, n_outcomes=5, spend_value=0.1
    )[0]
    assert r.cost == 0.0 and r.net_value == r.value


def test_the_proposal_says_when_no_test_pays_for_itself(draws):
    from allocation.next_test import verdict

    r = evaluate_tests(
        [_test(draws, 1, 0.5)], _plan(draws), _value(draws), horizon=1, n_outcomes=50
    )[0]
    good = replace(r, cost=0.0, net_value=r.value)
    assert r.value > 2 * r.evsi_se and verdict(good, 1) == []
    assert verdict(replace(r, cost=r.value + 1, net_value=-1.0), 1)[0].startswith(
        "no candidate's information"
    )
    noisy = replace(good, evsi_se=r.value)
    assert "within two Monte-Carlo standard errors" in verdict(noisy, 1)[0]
    # Worth next to nothing against the plan's own outcome: said so.
    assert (
        verdict(good, 1, plan_outcome=10 * good.value / 1e-4)[0].startswith(
            "the best candidate's value"
        )
        and "under 0.01%" in verdict(good, 1, plan_outcome=10 * good.value / 1e-4)[0]
    )
    assert verdict(good, 1, plan_outcome=good.value) == []


def test_a_worse_re_plan_is_not_adopted(draws):
    """An approximate plan maker that sometimes re-plans badly: the readout's decision keeps today's
    plan when the updated posterior prefers it, so no test is valued below zero (it was before)."""
    good = _plan(draws)
    w0 = np.full(S, 1.0 / S)

    def clumsy(w):
        # Any posterior other than today's gets its plan pushed off the optimum.
        x = good(w)
        return x if np.allclose(w, w0) else x + np.array([1.5, -1.5])

    r = evaluate_tests([_test(draws, 0, 0.5)], clumsy, _value(draws), horizon=1, n_outcomes=50)[0]
    assert r.evsi_per_period == pytest.approx(0.0, abs=1e-9)
    informative = evaluate_tests(
        [_test(draws, 1, 0.05)], clumsy, _value(draws), horizon=1, n_outcomes=50
    )[0]
    assert informative.evsi_per_period > 0
