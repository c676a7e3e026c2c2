"""The causal channel graph: identification of total effects, refutations, graph files."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from causal.errors import DataError
from causal.graph import (
    analyse,
    default_graph,
    joint_controls,
    normalise,
    parse_dot,
    read_graph,
    to_gml,
)
from causal.panel import load_panel

CHANNELS = ["brand_search", "nonbrand_search", "social", "programmatic", "ctv"]


def test_default_graph_structure():
    g = default_graph(CHANNELS)
    assert nx.is_directed_acyclic_graph(g)
    assert g.has_edge("brand_queries", "spend_brand_search")
    assert g.has_edge("spend_ctv", "brand_queries") and g.has_edge(
        "spend_programmatic", "brand_queries"
    )
    assert all(g.has_edge(f"spend_{c}", "signups") for c in CHANNELS)
    # Branded queries descend from CTV: a joint model must not adjust for them.
    assert joint_controls(
        g, CHANNELS, ["brand_queries", "launch", "competitor_price", "other"]
    ) == ["launch", "competitor_price"]


@pytest.fixture(scope="module")
def analysis(small_world):
    _, df = small_world
    return analyse(
        load_panel(df), experimental={"ctv": (0.01, 0.005, 0.015)}, num_simulations=10, seed=1
    )


def test_total_effect_adjustment_sets(analysis):
    t = analysis.table
    assert t.loc["brand_search", "adjustment_set"] == "brand_queries"
    # Mediators are not adjusted for when estimating CTV's or programmatic's total effect.
    assert "brand_queries" not in t.loc["ctv", "adjustment_set"]
    assert "brand_queries" not in t.loc["programmatic", "adjustment_set"]
    # Adjusting for branded queries removes most of branded search's confounding.
    assert t.loc["brand_search", "naive"] > 2 * t.loc["brand_search", "adjusted"]
    assert t.loc["ctv", "experimental"] == 0.01 and np.isnan(t.loc["social", "experimental"])
    assert (t["adjusted_lo"] < t["adjusted"]).all() and (t["adjusted"] < t["adjusted_hi"]).all()


def test_refuters_give_sensible_output(analysis):
    r = analysis.refutations
    assert set(r["refuter"]) == {"placebo treatment", "random common cause", "data subset (80%)"}
    assert len(r) == 3 * len(CHANNELS)
    # No NaN p-value (DoWhy's default placebo has sd 0 and returns NaN; we permute instead).
    assert np.isfinite(r["p_value"]).all()
    placebo = r[r["refuter"] == "placebo treatment"]
    assert np.isfinite(placebo["permutation_p"]).all()
    assert (placebo["new_effect"].abs() < 0.5 * placebo["estimate"].abs()).all()
    rcc = r[r["refuter"] == "random common cause"]
    assert np.allclose(rcc["new_effect"], rcc["estimate"], rtol=0.1)
    assert not analysis.notes
    d = analysis.to_dict()
    assert len(d["estimates"]) == len(CHANNELS) and ["spend_ctv", "brand_queries"] in d["edges"]


def test_parse_dot_and_gml(tmp_path):
    g = parse_dot(
        'digraph G { // comment\n "a b" -> c -> d [color=red]; x -> {c d}; node [shape=box]; }'
    )
    assert set(g.edges) == {("a b", "c"), ("c", "d"), ("x", "c"), ("x", "d")}
    path = tmp_path / "g.gml"
    path.write_text(to_gml(default_graph(["ctv"])))
    g2 = read_graph(path)
    assert g2.has_edge("spend_ctv", "brand_queries")
    dot = tmp_path / "g.dot"
    dot.write_text("digraph { ctv -> signups; brand_queries -> spend_ctv }")
    g3 = normalise(read_graph(dot), ["ctv"], "signups")
    assert set(g3.edges) == {("spend_ctv", "signups"), ("brand_queries", "spend_ctv")}


def test_bad_graphs(tmp_path):
    cyc = tmp_path / "c.dot"
    cyc.write_text("digraph { a -> b -> a }")
    with pytest.raises(DataError, match="cycle"):
        read_graph(cyc)
    und = tmp_path / "u.dot"
    und.write_text("graph { a -- b }")
    with pytest.raises(DataError):
        read_graph(und)
    with pytest.raises(DataError, match="no node 'signups'"):
        normalise(nx.DiGraph([("a", "b")]), ["ctv"], "signups")
    with pytest.raises(DataError, match="cannot read graph"):
        read_graph(tmp_path / "absent.dot")


def test_graph_layout_does_not_depend_on_the_hash_seed(tmp_path):
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json; from causal.graph import default_graph, graph_layout; "
        "g = default_graph(['brand_search', 'nonbrand_search', 'social', 'programmatic', 'ctv']); "
        "g.add_edges_from({('zeta', 'signups'), ('alpha', 'signups'), ('mid', 'brand_queries')}); "
        "print(json.dumps(sorted((str(k), v) for k, v in graph_layout(g)[1].items())))"
    )
    outs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.append(
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", code],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
        )
    assert outs[0] == outs[1] == outs[2]


def test_identifiability_check():
    from causal.errors import DataError
    from causal.graph import check_identifiable, default_graph

    chans = ["brand_search", "ctv"]
    g = default_graph(chans)
    sets = check_identifiable(g, chans, observed=["brand_queries", "launch"])
    assert "brand_queries" in sets["brand_search"] and "brand_queries" not in sets["ctv"]
    with pytest.raises(DataError, match="channel 'brand_search' is not identifiable"):
        check_identifiable(g, chans, observed=["launch"])
