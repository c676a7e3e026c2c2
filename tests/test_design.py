"""design_experiment: constraints, candidates, ranking, cells, and honest power on the simulated world."""

from __future__ import annotations

import numpy as np
import pytest

from causal.errors import ConfigError, DataError
from causal.panel import load_panel
from causal.world import World
from experiments.candidates import (
    generate_candidates,
    n_combinations,
    neighbours,
    similarity_matrix,
)
from experiments.design import design_experiment
from experiments.power import inject_lift
from experiments.readout import read_out

FAST = dict(
    durations=(14,), effect_sizes=(0, 0.1, 0.2, 0.4), n_windows=8, n_screen_windows=3, n_finalists=6
)


@pytest.fixture(scope="module")
def panel(small_world):
    return load_panel(small_world[1])


@pytest.fixture(scope="module")
def result(panel):
    return design_experiment(
        panel,
        n_treated=(2, 3),
        include=["NA01"],
        exclude=["LA01"],
        cost_per_incremental=10.0,
        **FAST,
    )


def test_design_json_has_the_interface_keys(result):
    d = result.to_dict()
    for key in (
        "outcome",
        "estimator",
        "alpha",
        "power_target",
        "treated",
        "control",
        "duration_days",
        "mde",
        "mde_incremental",
        "power_curve",
        "false_positive_rate",
        "candidates",
        "investment",
        "fit",
        "cells",
    ):
        assert key in d
    assert d["outcome"] == "signups" and d["estimator"] == "sc"
    assert all({"treated", "mde"} <= set(c) for c in d["candidates"])
    assert [p["lift"] for p in d["power_curve"]] == [0, 0.1, 0.2, 0.4]
    assert d["power_curve"][0]["power"] == d["false_positive_rate"]
    assert not set(d["treated"]) & set(d["control"])
    assert d["investment"] == pytest.approx(d["mde_incremental"] * 10.0)
    assert "MDE" in result.summary().text
    fig, ax = result.plot()
    assert ax.get_xlabel() == "injected lift"


def test_constraints_hold_in_every_candidate(result):
    for c in result.candidates:
        assert "NA01" in c.treated and "LA01" not in c.treated
        assert 2 <= len(c.treated) <= 3
    ranks = [c.rank for c in result.candidates]
    assert ranks == sorted(ranks) == list(range(1, len(ranks) + 1))
    feasible = [c.feasible for c in result.candidates]
    assert feasible == sorted(feasible, reverse=True)  # feasible designs first


def test_candidates_generators(panel):
    Y = panel.wide().to_numpy()
    geos = panel.geos
    every = generate_candidates(Y, geos, n_treated=(2, 2), method="exhaustive")
    assert len(every) == n_combinations(len(geos), [2]) == len(set(every))
    matched = generate_candidates(Y, geos, n_treated=(3, 3), include=["NA01"], method="matched")
    S = similarity_matrix(Y)
    i = geos.index("NA01")
    nearest = geos[int(np.argsort(-np.where(np.arange(len(geos)) == i, -np.inf, S[i]))[0])]
    assert all("NA01" in m for m in matched)
    strat = generate_candidates(Y, geos, n_treated=(3, 3), method="stratified", n_random=5, seed=1)
    assert strat == generate_candidates(
        Y, geos, n_treated=(3, 3), method="stratified", n_random=5, seed=1
    )
    assert nearest in {g for m in matched for g in m}
    moves = neighbours(
        ("NA01", "EM01", "AP01"),
        geos,
        n_treated=(2, 4),
        include=["NA01"],
        exclude=["LA01"],
        similarity=S,
        n_similar=3,
    )
    assert moves and all("NA01" in m and "LA01" not in m and 2 <= len(m) <= 4 for m in moves)
    assert len(moves) == len(set(moves)) <= 2 * 3 + 2 + 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(include=["NA01"], exclude=["NA01"]), "both included and excluded"),
        (dict(n_treated=(20, 25)), "the panel has 12"),
        (dict(durations=(190,)), "days of history"),
        (dict(cost_per_incremental=10.0, budget=1.0), "below the cheapest design"),
        (dict(include=["XX99"]), "not in the panel"),
        (dict(treated_share=(0.95, 1.0)), "share of 'signups'"),
    ],
)
def test_bad_input(panel, kwargs, message):
    args = dict(FAST, n_treated=(2, 2), method="matched")
    args.update(kwargs)
    with pytest.raises((ConfigError, DataError), match=message):
        design_experiment(panel, **args)


def test_treated_share_limits_the_candidates(panel):
    Y = panel.wide()
    share = Y.sum() / Y.to_numpy().sum()
    r = design_experiment(
        panel, n_treated=(2, 3), treated_share=(0.1, 0.3), method="matched", **FAST
    )
    for c in r.candidates:
        assert 0.1 <= share[list(c.treated)].sum() <= 0.3


def test_multi_cell_designs_are_disjoint(panel):
    r = design_experiment(panel, n_treated=(2, 2), n_cells=2, method="matched", **FAST)
    a, b = (set(c.treated) for c in r.cells)
    assert not a & b
    assert not (a | b) & set(r.control)
    assert len(r.to_dict()["cells"]) == 2


def test_parallel_equals_serial(panel):
    kw = dict(n_treated=(2, 2), method="matched", **FAST)
    assert (
        design_experiment(panel, n_jobs=2, **kw).to_dict()
        == design_experiment(panel, n_jobs=1, **kw).to_dict()
    )


def test_honest_power_on_held_out_periods():
    """Design on the first 400 days; inject the reported MDE after them and read out with read_out.

    The first world of benchmarks/study_design_power.py (which runs five), on every fourth
    held-out window instead of every second.
    """
    world = World(20, 600, seed=0)
    raw = world.panel()
    full = load_panel(raw)
    H = 400
    history = load_panel(raw.iloc[: H * 20])
    r = design_experiment(
        history,
        n_treated=(2, 4),
        durations=(14,),
        effect_sizes=np.arange(0, 0.2001, 0.025),
        n_windows=40,
    )
    best = r.best
    assert best.mde is not None
    d = best.duration
    hits, false = [], []
    for s in range(H, full.dates.size - d + 1, 4):
        for lift, out in ((0.0, false), (best.mde, hits)):
            ro = read_out(
                inject_lift(full, best.treated, s, d, lift),
                list(best.treated),
                (full.dates[s], full.dates[s + d - 1]),
                confidence=1 - r.alpha,
                placebos=False,
            ).to_dict()
            out.append(ro["p_value"] <= r.alpha and (lift == 0 or ro["incremental"] > 0))
    assert abs(np.mean(hits) - best.power.mde_power) <= 0.1
    assert abs(np.mean(false) - r.alpha) <= 0.05
