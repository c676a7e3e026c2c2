"""Quick version of benchmarks/study_structural.py (issue 13): two small worlds, daily and weekly.

The long study (ten worlds of 50 geos x 728 days) writes docs/structural_study.md.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from study_structural import (  # noqa: E402
    DEFAULT_MODEL,
    QUICK_WORLDS,
    fold_error,
    goals,
    negative_curves,
    run_study,
)

from causal.world import World  # noqa: E402


@pytest.fixture(scope="module")
def study():
    return run_study(QUICK_WORLDS, DEFAULT_MODEL, verbose=False)


def test_study_compares_each_channel_with_the_worlds_truth(study):
    df = study["rows"]
    spec = QUICK_WORLDS[0]
    world = World(spec.n_geos, spec.n_days, seed=spec.seed, **spec.options)
    truth = world.true_contributions()
    sub = df[(df["world"] == spec.name) & (df["case"] == "no lift")].set_index("channel")
    assert list(sub.index) == list(world.channels)
    for ch in world.channels:
        assert sub.loc[ch, "truth"] == truth[ch]
        assert sub.loc[ch, "ratio"] == pytest.approx(sub.loc[ch, "estimate"] / truth[ch])
        assert sub.loc[ch, "lo"] <= sub.loc[ch, "estimate"] <= sub.loc[ch, "hi"]
    # Two worlds x five channels x two fits (no lift, lifts).
    assert len(df) == 2 * 5 * 2
    assert set(df["world"]) == {s.name for s in QUICK_WORLDS}


def test_coverage_is_computed_from_the_intervals(study):
    df, g = study["rows"], study["goals"]
    inside = (df["lo"] <= df["truth"]) & (df["truth"] <= df["hi"])
    assert g["coverage_pairs"] == len(df) == 20
    assert g["coverage_all"] == pytest.approx(inside.mean())
    assert g["coverage_no_lift"] == pytest.approx(inside[df["case"] == "no lift"].mean())
    assert 0.0 <= g["coverage_no_lift"] <= 1.0


def test_lifted_channels_within_1_3x(study):
    df = study["rows"]
    lifted = df[df["lifted"]]
    assert len(lifted) == 2  # a CTV lift in each world
    assert (fold_error(lifted["ratio"]) <= 1.3).all(), lifted[["world", "channel", "ratio"]]


def test_no_lift_every_channel_within_2x(study):
    g = study["goals"]
    assert g["no_lift_pairs"] == 10
    assert g["no_lift_within_2x"] == g["no_lift_pairs"], f"worst {g['no_lift_worst_fold']:.1f}x"


def test_channels_never_credited_more_than_the_panel(study):
    assert study["goals"]["worlds_over_panel"] == 0
    assert study["goals"]["negative_curves"] == 0


def test_goal_helpers_count_negative_estimates_and_curves():
    assert fold_error(pd.Series([2.0, 0.5, -1.0, 1.0])).tolist() == [2.0, 2.0, np.inf, 1.0]
    curves = [
        {"name": "ctv", "market": "NA", "response": {"beta": 3.0}},
        {"name": "brand_search", "market": "EMEA", "response": {"beta": -755.0}},
    ]
    assert negative_curves(curves) == ["brand_search/EMEA response beta -755"]
    rows = pd.DataFrame(
        {
            "case": ["no lift"] * 2,
            "queries": [True, True],
            "lifted": [False, False],
            "ratio": [1.5, 3.0],
            "covered": [True, False],
            "truth": [100.0, 200.0],
            "lo": [80.0, 100.0],
            "hi": [130.0, 180.0],
        }
    )
    worlds = pd.DataFrame({"over_panel": [False], "negative_curves": [[]], "refused": [{}]})
    g = goals(rows, worlds)
    assert (
        g["no_lift_within_2x"] == 1
        and g["no_lift_worst_fold"] == 3.0
        and g["coverage_no_lift"] == 0.5
    )
    assert g["median_width_no_lift"] == pytest.approx(np.median([0.5, 0.4]))
