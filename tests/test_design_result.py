"""Design results follow the result protocol: Summary with readable numbers, to_dict, plot(ax=None)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from causal.panel import load_panel
from causal.summary import Summary
from experiments.design import CandidateDesign, DesignResult, design_experiment

FAST = dict(
    durations=(14,), effect_sizes=(0, 0.1, 0.2, 0.4), n_windows=8, n_screen_windows=3, n_finalists=4
)


@pytest.fixture(scope="module")
def result(small_world):
    # A large cost prior makes the investment a six-digit number: printed with separators.
    return design_experiment(
        load_panel(small_world[1]), n_treated=(2, 2), cost_per_incremental=250.0, **FAST
    )


@pytest.fixture
def no_show(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("plt.show() called by library code")

    monkeypatch.setattr(plt, "show", refuse)


def test_summary_is_a_summary_with_readable_numbers(result):
    assert isinstance(result, DesignResult)
    s = result.summary()
    assert isinstance(s, Summary)
    text = str(s)
    assert "e+0" not in text and "e-0" not in text
    assert "test level alpha 0.1" in text and "MDE" in text
    inv = result.best.investment
    assert inv is not None and inv >= 1000
    assert f"investment {inv:,.0f}" in text
    assert list(s.tables["candidates"]["rank"]) == [c.rank for c in result.candidates]
    assert s.tables["cells"]["treated"].iloc[0] == ", ".join(result.best.treated)
    json.dumps(result.to_dict())  # plain JSON


def test_candidate_design_summary_and_plot(result, no_show):
    c = result.candidates[0]
    assert isinstance(c, CandidateDesign)
    s = c.summary()
    assert isinstance(s, Summary) and str(s).startswith("treat ")
    assert list(s.tables["power_curve"]["lift"]) == [0, 0.1, 0.2, 0.4]
    fig, ax = plt.subplots()
    assert c.plot(ax=ax) == (fig, ax)
    assert ax.get_xlabel() == "injected lift"
    plt.close(fig)


def test_result_plot_draws_on_the_axes_given_and_never_shows(result, no_show):
    fig, ax = plt.subplots()
    assert result.plot(ax=ax) == (fig, ax)
    assert len(ax.lines) >= 2  # a curve per design plus the target and alpha lines
    plt.close(fig)
    fig, ax = result.plot()
    assert ax.figure is fig
    plt.close(fig)
