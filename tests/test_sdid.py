"""Synthetic difference-in-differences: known answers."""

from __future__ import annotations

import numpy as np
import pytest

from causal.base import clone, get_tags
from causal.errors import ConfigError
from causal.sdid import SyntheticDiD


def _twfe(seed=0, T=40, J=8):
    rng = np.random.default_rng(seed)
    alpha, beta = rng.normal(0, 5, J + 1), rng.normal(size=T).cumsum()
    return alpha[None, :] + beta[:, None]


def test_recovers_effect_under_two_way_fixed_effects():
    Y = _twfe()
    y = Y[:, 0] + np.r_[np.zeros(30), np.full(10, 3.0)]
    m = SyntheticDiD().fit(y[:30], Y[:30, 1:], Y[30:, 1:])
    assert np.mean(y[30:] - m.counterfactual_post_) == pytest.approx(3.0, abs=1e-6)
    for w in (m.weights_, m.time_weights_):
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0)


def test_large_zeta_gives_uniform_unit_weights_and_paper_zeta():
    rng = np.random.default_rng(1)
    Y = _twfe(1) + rng.normal(size=(40, 9))
    m = SyntheticDiD(zeta=1e6).fit(Y[:30, :2], Y[:30, 2:], Y[30:, 2:])
    np.testing.assert_allclose(m.weights_, np.full(7, 1 / 7), atol=1e-4)
    p = SyntheticDiD().fit(Y[:30, :2], Y[:30, 2:], Y[30:, 2:])
    sigma = np.diff(Y[:30, 2:], axis=0).std(ddof=1)
    assert p.zeta_ == pytest.approx((2 * 10) ** 0.25 * sigma)
    assert p.refit_params() == {"zeta": p.zeta_, "inference": "conformal"}
    assert clone(p).get_params() == {
        "zeta": None,
        "inference": "placebo",
        "n_placebo": 200,
        "seed": 0,
    }


def test_time_weights_favour_periods_like_the_test():
    # Donors' test-period level equals their level in the last pre-periods only.
    T0, J = 30, 10
    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, (T0 + 5, J))
    base[T0 - 5 :] += np.linspace(0, 5, J)[None, :]
    m = SyntheticDiD().fit(base[:T0, 0], base[:T0, 1:], base[T0:, 1:])
    assert m.time_weights_[-5:].sum() > 0.8


def test_fit_without_test_period():
    Y = _twfe(3)
    m = SyntheticDiD().fit(Y[:, 0], Y[:, 1:], None)
    np.testing.assert_allclose(m.time_weights_, 1 / 40)
    np.testing.assert_allclose(m.counterfactual_pre_, Y[:, 0], atol=1e-6)


def test_placebo_inference_covers_zero_effect_and_rejects_a_large_one():
    # 12 geos sharing a factor with AR(1) deviations; the first two are "treated".
    rng = np.random.default_rng(3)
    T, J = 80, 12
    factor = 100 + np.cumsum(rng.normal(0, 1, T))
    dev = np.zeros((T, J))
    for t in range(1, T):
        dev[t] = 0.8 * dev[t - 1] + rng.normal(0, 1, J)
    Y = factor[:, None] * rng.uniform(0.5, 2, J)[None, :] + dev
    m = SyntheticDiD().fit(Y[:66, :2], Y[:66, 2:], Y[66:, 2:])
    assert (
        get_tags(m).own_inference and m.placebo_z_.size == 45
    )  # all C(10, 2) pairs of the 10 controls
    null = m.effect_inference(Y[66:, :2], confidence=0.9)
    assert null.effect_ci[0] <= null.effect <= null.effect_ci[1] and 0 < null.p_value <= 1
    lifted = Y[66:, :2] * 1.5
    assert m.effect_inference(lifted, confidence=0.9).p_value < 0.05
    with pytest.raises(ConfigError, match="parameter 'inference' must be one of"):
        SyntheticDiD(inference="bootstrap").fit(Y[:66, :2], Y[:66, 2:], Y[66:, 2:])
    assert not get_tags(SyntheticDiD(inference="conformal")).own_inference
