"""Power by simulation: the fast path makes the readout's decisions, the refit path is the readout."""

from __future__ import annotations

import numpy as np
import pytest

from causal.base import make_estimator
from causal.errors import ConfigError
from causal.panel import load_panel
from causal.synthetic_control import simplex_least_squares, simplex_path
from experiments.power import (
    candidate_power,
    fine_grid,
    inject_lift,
    mirrored,
    simulation_windows,
    window_decisions,
)
from experiments.readout import read_out


@pytest.fixture(scope="module")
def panel(small_world):
    return load_panel(small_world[1])


def _split(Y, t, c, s, d):
    return Y[:s, t], Y[s : s + d, t], Y[:s, c], Y[s : s + d, c]


def test_simplex_path_equals_nnls_along_the_path():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(40, 8)).cumsum(axis=0)
    A -= A.mean(axis=0)
    b0 = A[:, :3].mean(axis=1) + rng.normal(scale=0.5, size=40)
    b1 = np.r_[np.zeros(30), rng.normal(3.0, 1.0, 10)]
    b1 -= b1.mean()
    pieces = simplex_path(A, b0, b1, 2.0, simplex_least_squares(A, b0))
    assert pieces[0][0] == 0.0 and pieces[-1][1] == 2.0
    for t in np.linspace(0.0, 2.0, 9):
        lo, hi, S, p, q = next(pc for pc in pieces if pc[0] <= t <= pc[1])
        w = np.zeros(A.shape[1])
        w[S] = p + t * q
        ref = simplex_least_squares(A, b0 + t * b1)
        np.testing.assert_allclose(w, ref, atol=1e-6)


@pytest.mark.parametrize("name", ["sc", "asc"])
def test_fast_path_makes_the_same_decisions_as_refitting(panel, name):
    Y = panel.wide().to_numpy()
    t, c = [0, 3], [i for i in range(Y.shape[1]) if i not in (0, 3)]
    lifts = mirrored([0, 0.05, 0.1, 0.2])
    est = make_estimator(name)
    for s in (120, 150, 186)[: 3 if name == "sc" else 1]:
        fast = window_decisions(est, *_split(Y, t, c, s, 14), lifts, 0.1, method="fast")
        slow = window_decisions(est, *_split(Y, t, c, s, 14), lifts, 0.1, method="refit")
        np.testing.assert_allclose(fast.p_values, slow.p_values, atol=1e-12)
        np.testing.assert_array_equal(fast.detections(0.1), slow.detections(0.1))
        np.testing.assert_allclose(fast.effects, slow.effects, rtol=1e-10)


def test_refit_path_is_the_readout(panel):
    """One window, one injected lift: the simulated p-value is read_out's."""
    Y = panel.wide().to_numpy()
    geos = panel.geos
    t = [0, 3]
    c = [i for i in range(len(geos)) if i not in t]
    s, d, lift = 150, 14, 0.08
    wd = window_decisions(
        make_estimator("sc"), *_split(Y, t, c, s, d), np.array([0.0, lift]), 0.1, method="fast"
    )
    injected = inject_lift(panel, [geos[i] for i in t], s, d, lift)
    # The readout of the window sees only the periods up to its end.
    ro = read_out(
        injected, [geos[i] for i in t], (panel.dates[s], panel.dates[s + d - 1]), placebos=False
    )
    assert wd.p_values[1] == pytest.approx(ro.to_dict()["p_value"], abs=1e-12)
    assert wd.effects[1] * len(t) == pytest.approx(ro.to_dict()["incremental"], rel=1e-9)


def test_power_curve_rises_and_false_positives_stay_near_alpha(panel):
    Y = panel.wide().to_numpy()
    t, c = [1, 2, 5], [i for i in range(Y.shape[1]) if i not in (1, 2, 5)]
    starts = simulation_windows(Y.shape[0], 14, n_windows=25, min_pre=56)
    r = candidate_power(Y, t, c, 14, starts, [0, 0.1, 0.3, 0.6], names=panel.geos)
    assert r.power[0] == r.false_positive_rate
    assert r.power[-1] >= r.power[1]
    assert r.power[-1] > 0.9
    assert r.mde is not None and r.power_at(r.mde) >= 0
    assert r.mde_incremental == pytest.approx(r.mde * r.baseline)
    assert set(r.to_dict()) >= {"treated", "mde", "power_curve", "false_positive_rate"}


def test_windows_and_grid():
    s = simulation_windows(100, 10, n_windows=5, min_pre=30)
    assert s[0] == 90 and s.min() >= 30 and len(s) == 5
    with pytest.raises(ConfigError, match="needs at least 60 periods"):
        simulation_windows(50, 30, min_pre=30)
    g = fine_grid([0, 0.1])
    assert 0.0025 in g and -0.1 in g and g.max() == pytest.approx(0.1)
