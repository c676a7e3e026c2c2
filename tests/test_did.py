"""Difference-in-differences: contract, the 2x2 known answer, recovery and coverage."""

from __future__ import annotations

import numpy as np
import pytest
from test_tbr import world_case

from causal.base import check_is_fitted, clone, get_tags, make_estimator
from causal.did import DifferenceInDifferences
from causal.errors import ConfigError, DataError, NotFittedError


def test_contract():
    est = DifferenceInDifferences(inference="cluster", n_placebo=50, seed=3)
    assert est.get_params() == {"inference": "cluster", "scale": "rmse", "n_placebo": 50, "seed": 3}
    assert clone(est).get_params() == est.get_params()
    assert isinstance(make_estimator("did"), DifferenceInDifferences)
    assert (
        get_tags(DifferenceInDifferences()).own_inference and DifferenceInDifferences.name == "did"
    )
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    Y, X0, X1, Y1, *_ = world_case(0)
    assert est.fit(Y, X0, X1) is est
    for attr in ("counterfactual_pre_", "counterfactual_post_", "n_treated_", "n_controls_"):
        assert hasattr(est, attr)
    for inference in ("placebo", "cluster"):
        inf = (
            DifferenceInDifferences(inference=inference)
            .fit(Y, X0, X1)
            .effect_inference(Y1, confidence=0.9)
        )
        assert inf.effect_ci[0] < inf.effect < inf.effect_ci[1] and 0 < inf.p_value <= 1
        assert inf.counterfactual_lo.shape == (28,)


def test_two_by_two_equals_difference_of_means():
    # one pre and one post period, 2 treated and 3 control geos
    Y_pre, Y_post = np.array([[10.0, 14.0]]), np.array([[20.0, 26.0]])
    X_pre, X_post = np.array([[5.0, 7.0, 9.0]]), np.array([[8.0, 9.0, 13.0]])
    inf = (
        DifferenceInDifferences().fit(Y_pre, X_pre, X_post).effect_inference(Y_post, confidence=0.9)
    )
    expected = (Y_post.mean() - Y_pre.mean()) - (X_post.mean() - X_pre.mean())
    assert inf.effect == pytest.approx(expected)


def test_equals_two_way_fixed_effects_ols():
    rng = np.random.default_rng(0)
    T0, T1, N1, J = 6, 4, 2, 5
    Y = rng.normal(size=(T0 + T1, N1 + J)) + np.arange(N1 + J)
    Y[T0:, :N1] += 1.5
    rows, D = [], []
    for t in range(T0 + T1):
        for i in range(N1 + J):
            x = np.zeros(T0 + T1 + N1 + J)
            x[t], x[T0 + T1 + i] = 1, 1
            rows.append(x[1:])  # drop one period dummy (collinearity)
            D.append(float(t >= T0 and i < N1))
    A = np.column_stack([np.array(rows), D])
    beta = np.linalg.lstsq(A, Y.ravel(), rcond=None)[0]
    inf = (
        DifferenceInDifferences()
        .fit(Y[:T0, :N1], Y[:T0, N1:], Y[T0:, N1:])
        .effect_inference(Y[T0:, :N1])
    )
    assert inf.effect / T1 == pytest.approx(beta[-1])


def test_fit_with_no_test_period_and_bad_input():
    Y, X0, *_ = world_case(1)
    est = DifferenceInDifferences().fit(Y, X0)
    assert est.counterfactual_post_.shape == (0,)
    with pytest.raises(ConfigError):
        DifferenceInDifferences(inference="bootstrap").fit(Y, X0)
    with pytest.raises(ConfigError):
        DifferenceInDifferences(scale="sd").fit(Y, X0)
    est = DifferenceInDifferences().fit(Y, X0[:, :2], X0[:5, :2])
    with pytest.raises(ConfigError, match="more control geos"):
        est.effect_inference(Y[:5])
    with pytest.raises(DataError):
        est.effect_inference(Y[:4])


def test_placebo_groups_are_seeded():
    Y, X0, X1, Y1, *_ = world_case(2, n_treated=3)
    a = DifferenceInDifferences(n_placebo=200, seed=1).fit(Y, X0, X1).effect_inference(Y1)
    b = DifferenceInDifferences(n_placebo=200, seed=1).fit(Y, X0, X1).effect_inference(Y1)
    assert a.effect_ci == b.effect_ci and a.p_value == b.p_value


def test_recovers_injected_lift_quick():
    errs = []
    for seed in range(6):
        Y, X0, X1, Y1, truth, base = world_case(seed, lift=0.1)
        inf = DifferenceInDifferences().fit(Y, X0, X1).effect_inference(Y1, confidence=0.9)
        errs.append((inf.effect - truth) / base)
    assert abs(np.mean(errs)) < 0.05


@pytest.mark.slow
def test_coverage_study():
    covered, rejected = [], []
    for seed in range(200):
        Y, X0, X1, Y1, truth, _ = world_case(seed)
        inf = DifferenceInDifferences().fit(Y, X0, X1).effect_inference(Y1, confidence=0.9)
        covered.append(inf.effect_ci[0] <= truth <= inf.effect_ci[1])
        rejected.append(inf.p_value < 0.1)
    assert 0.85 <= np.mean(covered) <= 0.95
    assert 0.05 <= np.mean(rejected) <= 0.15
