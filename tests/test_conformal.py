"""Conformal (CWZ 2021) and placebo inference: known answers and GeoLift's p-value."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_file

from causal.conformal import ConformalTest, conformal_inference, placebo_in_space, placebo_in_time
from causal.errors import ConfigError
from causal.panel import load_panel
from causal.synthetic_control import SyntheticControl


def _factor_data(seed, T0=80, T1=10, J=12, effect=0.0, rho=0.0, calm=None):
    rng = np.random.default_rng(seed)
    T = T0 + T1
    f = rng.normal(size=(T, 2)).cumsum(axis=0)
    load = rng.uniform(0.5, 1.5, (2, J + 1))
    e = rng.normal(size=(T, J + 1))
    for t in range(1, T):
        e[t] += rho * e[t - 1]
    if calm is not None:  # (factor, n): the treated noise times factor except in the last n periods
        e[: T - calm[1], 0] *= calm[0]
    Y = f @ load + e + 10
    y = Y[:, 0] + np.r_[np.zeros(T0), np.full(T1, effect)]
    return y[:T0], y[T0:], Y[:T0, 1:], Y[T0:, 1:]


def test_block_permutations_are_all_cyclic_shifts():
    y0, y1, X0, X1 = _factor_data(0)
    sc = SyntheticControl().fit(y0, X0, X1)
    t = ConformalTest(sc, y0, y1, X0, X1, permutation="block")
    assert t.index.shape == (90, 10)
    np.testing.assert_array_equal(t.index[0], np.arange(80, 90))
    np.testing.assert_array_equal(t.index[15], (np.arange(80, 90) + 15) % 90)
    # A permutation p-value over the 90 shifts: a whole number of ninetieths, the identity counted.
    p = t.p_value(0.0)
    assert 1 / 90 <= p <= 1.0 and round(p * 90) == pytest.approx(p * 90, abs=1e-9)


def test_recent_permutations_are_the_cyclic_shifts_of_the_last_segment():
    y0, y1, X0, X1 = _factor_data(4, T0=200, T1=10)
    sc = SyntheticControl().fit(y0, X0, X1)
    t = ConformalTest(sc, y0, y1, X0, X1)
    # The default: the last W = 16 test lengths = 160 periods, all their 160 cyclic shifts.
    assert t.permutation == "recent" and t.index.shape == (160, 10) and t.segment_start == 50
    np.testing.assert_array_equal(t.index[0], np.arange(200, 210))
    np.testing.assert_array_equal(t.index[15], 50 + (np.arange(150, 160) + 15) % 160)
    u = t.residuals(0.0)
    seg = u[50:] - u[50:].mean()
    assert t.statistics(u)[0] == pytest.approx(abs(seg[-10:].sum()) / np.sqrt(10))
    # Stacked residual series give the rows of the single-series statistics.
    U = np.vstack([u, t.residuals(1.0)])
    np.testing.assert_allclose(t.statistics(U)[1], t.statistics(t.residuals(1.0)))
    assert t.p_values(t.statistics(U))[0] == t.p_value(0.0)
    # A history no longer than the segment: exactly the whole-period moving-block test.
    short = ConformalTest(
        SyntheticControl().fit(y0[:100], X0[:100], X1), y0[:100], y1, X0[:100], X1
    )
    block = ConformalTest(
        SyntheticControl().fit(y0[:100], X0[:100], X1),
        y0[:100],
        y1,
        X0[:100],
        X1,
        permutation="block",
    )
    np.testing.assert_array_equal(short.index, block.index)
    assert short.p_value(0.3) == block.p_value(0.3)


def test_recent_permutations_keep_their_size_after_a_calm_past():
    """The treated series' noise was half as large except in the last 260 of 414 periods (a design
    search picks such histories): against all shifts of the whole period the window looks extreme
    too often (0.21 at alpha 0.1 over 100 histories); within the recent segment it does not (0.13,
    as both give without the calm past on these data)."""
    rejected = {"block": [], "recent": []}
    for seed in range(100):
        y0, y1, X0, X1 = _factor_data(300 + seed, T0=400, T1=14, rho=0.8, calm=(0.5, 260))
        sc = SyntheticControl().fit(y0, X0, X1)
        for perm, out in rejected.items():
            out.append(ConformalTest(sc, y0, y1, X0, X1, permutation=perm).p_value(0.0) <= 0.1)
    assert np.mean(rejected["block"]) >= 0.17
    assert 0.04 <= np.mean(rejected["recent"]) <= 0.16
    assert np.mean(rejected["recent"]) < np.mean(rejected["block"])


def test_recent_permutations_reduce_over_rejection_under_drift():
    """A drift no convex mix of donors follows: the last block is extreme among all shifts of a long
    history (0.37 at alpha 0.1); the recent segment sees a quarter of the drift (0.29): better, not cured."""
    rejected = {"block": [], "recent": []}
    for seed in range(100):
        y0, y1, X0, X1 = _factor_data(200 + seed, T0=400, T1=14, rho=0.8)
        drift = 6.0 * np.linspace(-1.0, 1.0, 414)
        y0, y1 = y0 + drift[:400], y1 + drift[400:]
        sc = SyntheticControl().fit(y0, X0, X1)
        for perm, out in rejected.items():
            out.append(ConformalTest(sc, y0, y1, X0, X1, permutation=perm).p_value(0.0) <= 0.1)
    assert np.mean(rejected["block"]) >= 0.3
    assert np.mean(rejected["recent"]) <= np.mean(rejected["block"]) - 0.05


def test_huge_effect_gets_the_smallest_p_and_an_interval_around_it():
    y0, y1, X0, X1 = _factor_data(1, effect=50.0)
    sc = SyntheticControl().fit(y0, X0, X1)
    inf = conformal_inference(sc, y0, X0, y1, X1, alpha=0.1)
    assert inf.p_value == pytest.approx(1 / 90)
    lo, hi = inf.effect_ci
    # A single draw need not cover the truth; the interval is around the estimate and near the truth.
    assert lo <= inf.effect <= hi and abs(inf.effect - 500) < 100 and hi - lo < 250
    assert (
        inf.counterfactual_lo.shape == (10,)
        and (inf.counterfactual_lo < inf.counterfactual_hi).all()
    )


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
        inf = conformal_inference(
            sc, y[pre], X[pre], y[~pre], X[~pre], permutation="iid", statistic="abs", seed=seed
        )
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
