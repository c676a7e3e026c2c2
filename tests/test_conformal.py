"""Conformal (CWZ 2021) and placebo inference: known answers and GeoLift's p-value."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_file

from causal.conformal import ConformalTest, conformal_inference, placebo_in_space, placebo_in_time
from causal.errors import ConfigError
from causal.panel import load_panel
from causal.synthetic_control import SyntheticControl


def _factor_data(seed, T0=80, T1=10, J=12, effect=0.0, rho=0.0):
    rng = np.random.default_rng(seed)
    T = T0 + T1
    f = rng.normal(size=(T, 2)).cumsum(axis=0)
    load = rng.uniform(0.5, 1.5, (2, J + 1))
    e = rng.normal(size=(T, J + 1))
    for t in range(1, T):
        e[t] += rho * e[t - 1]
    Y = f @ load + e + 10
    y = Y[:, 0] + np.r_[np.zeros(T0), np.full(T1, effect)]
    return y[:T0], y[T0:], Y[:T0, 1:], Y[T0:, 1:]


def test_block_permutations_are_all_cyclic_shifts():
    y0, y1, X0, X1 = _factor_data(0)
    sc = SyntheticControl().fit(y0, X0, X1)
    t = ConformalTest(sc, y0, y1, X0, X1)
    assert t.index.shape == (90, 10)
    np.testing.assert_array_equal(t.index[0], np.arange(80, 90))
    np.testing.assert_array_equal(t.index[15], (np.arange(80, 90) + 15) % 90)
    assert 1 / 90 <= t.p_value(0.0) <= 1.0


def test_huge_effect_gets_the_smallest_p_and_an_interval_around_it():
    y0, y1, X0, X1 = _factor_data(1, effect=50.0)
    sc = SyntheticControl().fit(y0, X0, X1)
    inf = conformal_inference(sc, y0, X0, y1, X1, alpha=0.1)
    assert inf.p_value == pytest.approx(1 / 90)
    lo, hi = inf.effect_ci
    # A single draw need not cover the truth; the interval is around the estimate and near the truth.
    assert lo <= inf.effect <= hi and abs(inf.effect - 500) < 100 and hi - lo < 250
    assert inf.counterfactual_lo.shape == (10,) and (inf.counterfactual_lo < inf.counterfactual_hi).all()


def test_iid_permutations_are_seeded_and_options_checked():
    y0, y1, X0, X1 = _factor_data(2, effect=1.0)
    sc = SyntheticControl().fit(y0, X0, X1)
    a = conformal_inference(sc, y0, X0, y1, X1, permutation="iid", seed=5)
    b = conformal_inference(sc, y0, X0, y1, X1, permutation="iid", seed=5)
    assert a.p_value == b.p_value and a.effect_ci == b.effect_ci
    with pytest.raises(ConfigError):
        ConformalTest(sc, y0, y1, X0, X1, permutation="wild")
    with pytest.raises(ConfigError):
        ConformalTest(sc, y0, y1, X0, X1, statistic="max")


def test_geolift_p_value():
    """GeoLift's headline test (i.i.d. permutations, sum of |residuals|): p about 0.01."""
    panel = load_panel(reference_file("geolift", "GeoLift_Test.csv"), y="Y", geo_col="location")
    W = panel.wide()
    tr = ["chicago", "portland"]
    ctl = [g for g in panel.geos if g not in tr]
    pre = W.index < "2021-04-01"
    y, X = W[tr].to_numpy().mean(axis=1), W[ctl].to_numpy()
    sc = SyntheticControl().fit(y[pre], X[pre], X[~pre])
    for seed in range(3):
        inf = conformal_inference(sc, y[pre], X[pre], y[~pre], X[~pre], permutation="iid", statistic="abs", seed=seed)
        assert 0.005 <= inf.p_value <= 0.03


def test_placebos():
    y0, y1, X0, X1 = _factor_data(3, effect=30.0)
    sc = SyntheticControl().fit(y0, X0, X1)
    space = placebo_in_space(sc, y0, X0, y1, X1, [f"g{j}" for j in range(12)])
    assert len(space.scores) == 12 and space.p_value == pytest.approx(1 / 13)
    time = placebo_in_time(sc, y0, X0, 10, actual_score=space.actual_score)
    assert len(time.scores) == 7  # windows starting at 70, 60, ..., 10
    assert time.p_value == pytest.approx(1 / 8)
    assert set(space.to_dict()) >= {"scores", "p_value", "actual_score"}


@pytest.mark.slow
def test_block_conformal_coverage_under_autocorrelation():
    """AR(1) errors (rho 0.8): moving-block intervals cover at about the nominal 90%."""
    covered, rejected = [], []
    for seed in range(200):
        y0, y1, X0, X1 = _factor_data(100 + seed, T0=150, T1=14, rho=0.8)
        sc = SyntheticControl().fit(y0, X0, X1)
        inf = conformal_inference(sc, y0, X0, y1, X1, alpha=0.1)
        covered.append(inf.effect_ci[0] <= 0 <= inf.effect_ci[1])
        rejected.append(inf.p_value <= 0.1)
    assert 0.82 <= np.mean(covered) <= 0.97
    assert 0.03 <= np.mean(rejected) <= 0.18
