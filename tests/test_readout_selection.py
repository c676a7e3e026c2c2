"""The selection check: a treated set chosen for its calm history gets the interval of an unselected one."""

import numpy as np
import pytest

from causal.base import make_estimator
from causal.conformal import conformal_inference
from causal.errors import ConfigError
from causal.panel import load_panel
from causal.world import World
from experiments.readout import read_out
from experiments.readout_selection import selection_scale, window_spread

TEST = ("2024-09-01", "2024-09-28")


@pytest.fixture(scope="module")
def world_panel():
    world = World(24, 280, seed=3)
    return world, load_panel(world.panel())


def _calmest_set(panel, n=6, tries=40, seed=0):
    """What a design search does: among random sets, the one whose pre-period fits best."""
    wide = panel.wide()
    pre = wide.loc[:"2024-08-31"]
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(tries):
        treated = sorted(rng.choice(panel.geos, n, replace=False).tolist())
        control = [g for g in panel.geos if g not in treated]
        s = window_spread(
            make_estimator("sc"), pre[treated].mean(axis=1).to_numpy(), pre[control].to_numpy(), 28
        )
        if best is None or s < best[0]:
            best = (s, treated)
    return best[1]


def test_a_calm_chosen_set_is_widened_with_a_note(world_panel):
    _, panel = world_panel
    treated = _calmest_set(panel)
    r = read_out(panel, treated, TEST, placebos=False, selection_check=True)
    plain = read_out(panel, treated, TEST, placebos=False)  # off by default
    note = [n for n in r.notes if "calmer than" in n]
    assert len(note) == 1 and "widened x" in note[0]
    factor = float(note[0].rsplit("widened x", 1)[1].rstrip("."))
    assert factor > 1.0
    # Same estimate; each edge moved `factor` times as far from it.
    assert r.incremental == pytest.approx(plain.incremental)
    lo, hi = r.incremental_ci
    plo, phi = plain.incremental_ci
    assert lo - r.incremental == pytest.approx(factor * (plo - plain.incremental), rel=1e-2)
    assert hi - r.incremental == pytest.approx(factor * (phi - plain.incremental), rel=1e-2)
    # The p-value agrees with the interval: zero inside <=> p > alpha.
    assert (lo <= 0 <= hi) == (r.p_value > 0.1)
    assert r.p_value >= plain.p_value


def test_no_widening_without_enough_history_or_donors():
    rng = np.random.default_rng(0)
    Y, X = rng.normal(size=(60, 3)), rng.normal(size=(60, 1))
    assert selection_scale(make_estimator("sc"), Y, X, 28) == (1.0, None)  # 2 windows, 1 donor


def test_widen_must_be_at_least_one():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4)).cumsum(axis=0)
    y = X.mean(axis=1) + rng.normal(size=80)
    est = make_estimator("sc").fit(y[:60], X[:60], X[60:])
    with pytest.raises(ConfigError, match="widen"):
        conformal_inference(est, y[:60], X[:60], y[60:], X[60:], widen=0.5)


def test_the_registry_checks_selection_for_a_designed_test(world_panel, tmp_path):
    # A test registered from a design (a search picked its markets) is read out with the check;
    # one registered by hand is not, unless asked.
    from experiments.registry import Registry

    _, panel = world_panel
    treated = _calmest_set(panel)
    reg = Registry(f"sqlite:///{tmp_path / 'designed.db'}")
    reg.add("designed", start=TEST[0], end=TEST[1], design={"treated": treated})
    reg.start("designed")
    designed = reg.run_readout("designed", panel)[0].result
    reg = Registry(f"sqlite:///{tmp_path / 'by_hand.db'}")
    reg.add("by_hand", start=TEST[0], end=TEST[1], cells=treated)
    reg.start("by_hand")
    by_hand = reg.run_readout("by_hand", panel)[0].result
    asked = reg.run_readout("by_hand", panel, selection_check=True)[0].result
    assert any("calmer than" in n for n in designed["notes"])
    assert not any("calmer than" in n for n in by_hand["notes"])
    assert any("calmer than" in n for n in asked["notes"])


def test_no_widening_when_the_history_holds_the_recent_segment():
    # With 16 test lengths of history the recent-segment reference is calibrated for designed sets.
    rng = np.random.default_rng(2)
    X = rng.normal(size=(16 * 7, 6)).cumsum(axis=0)
    Y = X[:, :2] + 0.01 * rng.normal(size=(16 * 7, 2))  # as calm a treated set as can be
    assert selection_scale(make_estimator("sc"), Y, X[:, 2:], 7) == (1.0, None)
    assert selection_scale(make_estimator("sc"), Y[1:], X[1:, 2:], 7)[0] > 1.0


def test_a_widened_power_curve_detects_factor_times_larger_lifts():
    from experiments.power import PowerResult

    lifts = np.array([0.0, 0.05, 0.1, 0.2])
    plain = PowerResult(
        ("A",), 28, lifts, np.array([0.08, 0.4, 0.8, 1.0]), 0.08, 0.1, 0.8, 1000.0, 10,
        np.arange(10), np.zeros((10, 4), bool), mde_slope=6.0,
    )  # fmt: skip
    wide = plain.widened(2.0)
    assert wide.mde == pytest.approx(0.2) and wide.mde_incremental == pytest.approx(200.0)
    assert wide.power_at(0.2) == pytest.approx(plain.power_at(0.1))
    assert wide.power_at(0.1) == pytest.approx(plain.power_at(0.05))
    assert wide.false_positive_rate == plain.false_positive_rate and wide.power[0] == 0.08
    assert wide.selection_factor == 2.0 and wide.to_dict()["selection_factor"] == 2.0
    assert wide.mde_se == pytest.approx(2.0 * plain.mde_se)
    with pytest.raises(ValueError, match="at least 1"):
        plain.widened(0.5)


def test_a_design_claims_what_the_registry_readout_will_give(world_panel):
    """On a short history the design's claim is widened by the factor the readout will apply."""
    from experiments.design import design_experiment
    from experiments.readout_selection import set_selection_scale

    _, panel = world_panel
    kw = dict(n_treated=(4, 4), effect_sizes=(0, 0.05, 0.1, 0.2), n_windows=6, n_finalists=4)
    short = design_experiment(panel, durations=(28,), **kw).to_dict()
    wide = panel.wide()
    treated = short["treated"]
    control = [g for g in panel.geos if g not in treated]
    factor = set_selection_scale(
        make_estimator("sc"), wide[treated].to_numpy(float), wide[control].to_numpy(float), 28
    )
    assert short["selection_factor"] == pytest.approx(max(factor, 1.0))
    # 280 days hold 16 lengths of a 14-day test: the recent segment calibrates, no widening.
    long = design_experiment(panel, durations=(14,), **kw).to_dict()
    assert long["selection_factor"] == 1.0
