"""The structural response model against the simulated worlds' truth (quick versions of docs/calibration.md)."""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest
from scipy import stats

from allocation.calibration import Lift
from allocation.curves import CurveSet
from allocation.structural import MediatorWarning, StructuralModel, resolve_clusters
from allocation.structural_inputs import shape_log_prior
from allocation.structural_result import grid_edges
from causal import response as R
from causal.errors import ConfigError, DataError
from causal.panel import load_panel
from causal.world import CLUSTERS, Experiment, World

CONTROLS = ["launch", "competitor_price"]


def clusters_of(world: World) -> dict[str, str]:
    return {g: CLUSTERS[c] for g, c in zip(world.geos, world.cluster_of)}


def lift_from_truth(t: dict, rel_sd: float = 0.1) -> Lift:
    inc = t["true_incremental"]
    half = 1.6448536269514722 * abs(inc) * rel_sd
    return Lift.from_dict(
        {
            "channel": t["channel"],
            "treated": t["geos"],
            "test_period": [t["start"], t["end"]],
            "incremental": inc,
            "incremental_ci": [inc - half, inc + half],
            "confidence": 0.9,
            "spend_delta": t["spend_delta"],
        },
        f"{t['channel']} lift",
    )


def ratios(model: StructuralModel, truth: dict) -> dict[str, float]:
    c = model.contributions_.set_index("channel")
    return {ch: float(c.loc[ch, "total"] / truth["contributions"][ch]) for ch in c.index}


@functools.cache
def fitted_world(n_geos: int, n_days: int, seed: int):
    """A world, the structural model fitted on it without lifts, its truth and panel (fitted once)."""
    world = World(n_geos, n_days, seed=seed)
    panel, truth = world.simulate()
    model = StructuralModel(controls=CONTROLS, clusters=clusters_of(world), n_draws=100).fit(
        load_panel(panel)
    )
    return world, model, truth, panel


@pytest.fixture(scope="module", params=[(20, 365, 5), (30, 365, 1)], ids=["20x365-s5", "30x365-s1"])
def no_lift(request):
    return fitted_world(*request.param)


@pytest.fixture(scope="module")
def one_world():
    """The first of the worlds above: for checks that one world settles."""
    return fitted_world(20, 365, 5)


def test_no_lift_every_channel_within_2x_of_truth(no_lift):
    _, model, truth, _ = no_lift
    r = ratios(model, truth)
    assert all(0.5 <= v <= 2.0 for v in r.values()), r
    # Mediation: the upper-funnel channels have a mediated part, the others none.
    c = model.contributions_.set_index("channel")
    assert (c.loc[["ctv", "programmatic"], "mediated"] > 0).all()
    assert (c.loc[["brand_search", "social", "nonbrand_search"], "mediated"] == 0).all()
    assert np.allclose(c["direct"] + c["mediated"], c["total"])


def test_plausible_positive_and_draws_coherent(no_lift):
    world, model, truth, _ = no_lift
    curves = model.to_curves()
    assert curves["draws"]["n"] == 100
    lines = curves["channels"]
    assert len(lines) == len(world.geos) * len(world.channels)
    assert {ln["market"] for ln in lines} == set(world.geos)
    assert all(ln["cluster"] == clusters_of(world)[ln["market"]] for ln in lines)
    total = sum(ln["contribution"]["calibrated"] for ln in lines)
    assert 0 < total < truth["total_signups"]
    for ln in lines:
        assert ln["response"]["beta"] >= 0 and ln["response"]["form"] == "hill"
        assert ln["adstock"]["form"] == "geometric"
        d = ln["response_draws"]
        assert (
            len(d["beta"]) == len(d["half_saturation"]) == len(ln["adstock_draws"]["decay"]) == 100
        )
        assert min(d["beta"]) >= 0
    # Draw i is one joint posterior draw: two markets of a cluster share its shape and coefficient per unit size.
    a, b = [ln for ln in lines if ln["name"] == "ctv" and ln["cluster"] == "NA"][:2]
    sa, sb = model.size_[a["market"]], model.size_[b["market"]]
    assert np.allclose(
        np.array(a["response_draws"]["beta"]) / sa,
        np.array(b["response_draws"]["beta"]) / sb,
        rtol=1e-4,
    )
    assert a["adstock_draws"] == b["adstock_draws"]
    # Cluster aggregates sum the markets; identification per channel.
    agg = [x for x in curves["aggregates"] if x["name"] == "ctv"]
    assert np.isclose(
        sum(x["contribution"]["calibrated"] for x in agg),
        sum(ln["contribution"]["calibrated"] for ln in lines if ln["name"] == "ctv"),
    )
    assert set(curves["identification"]) == set(world.channels)
    assert all(v["lift_checked"] is False for v in curves["identification"].values())
    # the grid-edge flag is the model's own draws' (structural_result.grid_edges), for every channel
    edges = grid_edges(model.grid_, model.half_saturations, model.draws_["shape"], model.channels_)
    assert {
        ch: v["half_saturation_at_grid_edge"] for ch, v in curves["identification"].items()
    } == edges
    flagged = [ch for ch, e in edges.items() if e]
    assert all(
        any(n.startswith(f"{ch}: ") and "grid's" in n for n in model.notes_) for ch in flagged
    )
    CurveSet.from_dict(curves)  # the file it writes passes the loader's checks
    json.dumps(curves)  # serialisable, no NaN objects
    # The curve draws at the panel's mean spend agree with the summed line responses of the same draw.
    social = [ln for ln in lines if ln["name"] == "social"]
    X = sum(ln["current_spend"] for ln in social)
    band = model.curve_draws("social", np.array([X]))
    assert band.shape == (100, 1) and (band >= 0).all()
    size = model.size_
    summed = sum(
        R.value(
            "hill",
            X * size[ln["market"]] / size.sum(),
            {k: np.array(ln["response_draws"][k]) for k in ("beta", "half_saturation", "shape")},
        )
        for ln in social
    )
    assert np.allclose(summed, band[:, 0], rtol=1e-4)
    fig, ax = model.plot("social")
    assert ax.get_lines()
    assert list(model.conf_int().columns) == ["lo", "hi"]


def test_a_lift_pins_its_channel_within_1_3x():
    world = World(16, 300, seed=3)
    exp = Experiment("social", tuple(world.geos[::2]), "2024-08-01", "2024-09-11", 0.0)
    panel, truth = world.simulate([exp])
    lift = lift_from_truth(truth["experiments"][0])
    model = StructuralModel(controls=CONTROLS, clusters=clusters_of(world), n_draws=100).fit(
        load_panel(panel), [lift]
    )
    r = ratios(model, truth)
    assert 1 / 1.3 <= r["social"] <= 1.3, r
    assert all(0.5 <= v <= 2.0 for v in r.values()), r
    curves = model.to_curves()
    assert curves["identification"]["social"]["lift_checked"] is True
    (row,) = curves["lifts"]
    assert row["ci_lo"] <= row["predicted_after"] <= row["ci_hi"]


def test_without_the_mediator_it_warns_and_widens(one_world):
    world, model, truth, panel = one_world
    with pytest.warns(MediatorWarning, match="brand_queries"):
        bare = StructuralModel(controls=CONTROLS, clusters=clusters_of(world), n_draws=100).fit(
            load_panel(panel.drop(columns="brand_queries"))
        )
    # Branded search's observational coefficient gets a confounding bias: the panel no longer narrows it.
    assert bare.demand_ == ["brand_search"] and model.demand_ == []
    assert bare.identification_["brand_search"]["posterior_sd_over_prior_sd"] > 0.8
    assert any("brand_queries" in n for n in bare.notes_)
    assert bare.identification_["brand_search"]["demand_adjusted"] is False
    with pytest.raises(DataError, match="brand_queries"):
        StructuralModel(controls=CONTROLS, strict_mediator=True, n_draws=20).fit(
            load_panel(panel.assign(brand_queries=1.0))
        )


def test_clusters_from_mapping_or_column_and_bad_input(no_lift):
    world, _, _, panel = no_lift
    p = load_panel(panel)
    mapping = clusters_of(world)
    assert resolve_clusters(p, mapping) == mapping
    col = load_panel(panel.assign(region=panel["geo"].map(mapping)))
    assert resolve_clusters(col, column="region") == mapping
    holes = panel.assign(region=panel["geo"].map(mapping).where(panel["geo"] != world.geos[3], ""))
    with pytest.raises(
        DataError, match=f"cluster column 'region' is empty at geo '{world.geos[3]}'"
    ):
        resolve_clusters(load_panel(holes), column="region")
    short = dict(list(mapping.items())[1:])
    with pytest.raises(DataError, match=world.geos[0]):
        resolve_clusters(p, short, source="map.csv")
    # Implausible fits are refused, never written.
    with pytest.raises(DataError, match="fit refused"):
        StructuralModel(controls=CONTROLS, n_draws=20, min_baseline=0.999).fit(p)


def test_deterministic_given_the_seed(one_world):
    world, model, _, panel = one_world
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = StructuralModel(controls=CONTROLS, clusters=clusters_of(world), n_draws=100).fit(
            load_panel(panel)
        )
    assert np.array_equal(again.draws_["theta"], model.draws_["theta"])


@pytest.mark.parametrize(("n_geos", "n_days", "seed"), [(20, 365, 5), (30, 365, 1)])
def test_a_prior_on_the_marginal_return_keeps_shapes_off_the_flat_edge(n_geos, n_days, seed):
    # Issue 14 (docs/backtest.md, session 10): with the prior on the Hill coefficient the marginal
    # likelihood's Occam factor favours the flattest shape wherever the panel cannot tell shapes
    # apart, and programmatic piled on the grid's largest half-saturation; with the prior on the
    # marginal return at mean spend (the default) the shapes weigh by fit and lifts.
    world = World(n_geos, n_days, seed=seed)
    panel, _ = world.simulate()
    edges = {}
    for prior_on in ("coefficient", "marginal_return"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MediatorWarning)
            m = StructuralModel(
                controls=CONTROLS, clusters=clusters_of(world), n_draws=100, prior_on=prior_on
            ).fit(load_panel(panel))
        edges[prior_on] = grid_edges(m.grid_, m.half_saturations, m.draws_["shape"], m.channels_)
        if prior_on == "marginal_return":
            # the prior's scale is today's at the grid's centre (half-saturation at mean spend, exponent 1)
            k = m.channels_.index("programmatic")
            centre = [
                j
                for j, sh in enumerate(m.grid_["programmatic"])
                if np.isclose(sh.half_saturation, m.grid_["programmatic"][0].half_saturation * 2)
                and sh.shape == 1.0
            ]
            assert np.allclose(m._slope[k, centre], 1.0)
    assert edges["coefficient"]["programmatic"]["edge"] == "largest"
    assert edges["marginal_return"]["programmatic"] is None
    with pytest.raises(ConfigError, match="prior_on"):
        StructuralModel(prior_on="roi").fit(load_panel(panel))


def test_the_meridian_shape_prior_weighs_the_grid_by_its_cells():
    # Meridian's default half-saturation prior, TruncatedNormal(0.8, 0.8) on [0.1, 10], integrated
    # over each grid point's cell (geometric midpoints; the end cells reach to the bounds), computed
    # here with scipy.stats independently of the product's code; the exponent is held at 1.
    log_w = shape_log_prior((0.5, 1.0, 2.0, 4.0), (1.0, 1.25, 1.5), "meridian").reshape(4, 3)
    prior = stats.truncnorm((0.1 - 0.8) / 0.8, (10 - 0.8) / 0.8, loc=0.8, scale=0.8)
    cells = prior.cdf([0.1, np.sqrt(0.5), np.sqrt(2), np.sqrt(8), 10])
    assert np.allclose(np.exp(log_w[:, 0]), np.diff(cells))
    assert np.all(log_w[:, 1:] == -np.inf)
    # the grid's order does not matter; uniform weighs every pair equally
    shuffled = shape_log_prior((2.0, 0.5, 4.0, 1.0), (1.0,), "meridian")
    assert np.allclose(shuffled, log_w[[2, 0, 3, 1], 0])
    assert np.array_equal(shape_log_prior((0.5, 1.0), (1.0, 1.5), "uniform"), np.zeros(4))
    with pytest.raises(ConfigError, match="exponent"):
        shape_log_prior((0.5, 1.0), (1.25, 1.5), "meridian")


def test_a_fit_under_the_meridian_shape_prior():
    world = World(16, 300, seed=2)
    panel, _ = world.simulate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MediatorWarning)
        m = StructuralModel(
            controls=CONTROLS, clusters=clusters_of(world), n_draws=40, shape_prior="meridian"
        ).fit(load_panel(panel))
    # media channels keep the exponent 1; a query-bound capture channel's grid stays uniform
    media = [k for k in range(len(m.channels_)) if k not in m._query_bound]
    exponents = {m.grid_[m.channels_[k]][j].shape for k in media for j in m.draws_["shape"][:, k]}
    assert media and exponents == {1.0}
    assert any("Meridian" in note for note in m.notes_)
    with pytest.raises(ConfigError, match="shape_prior"):
        StructuralModel(shape_prior="flat").fit(load_panel(panel))


@pytest.mark.parametrize(
    ("option", "value", "key"),
    [("--prior-on", "marginal_return", "prior_on"), ("--shape-prior", "meridian", "shape_prior")],
)
def test_calibrate_structural_priors_from_the_command_line(tmp_path, run_cli, option, value, key):
    world = World(16, 300, seed=2)
    panel, _ = world.simulate()
    (tmp_path / "panel.csv").write_text(panel.to_csv(index=False))
    data = ["--data", str(tmp_path / "panel.csv"), "--draws", "20"]
    out = tmp_path / "c.json"
    code, _, err = run_cli("calibrate", *data, option, value, "--out", str(out))
    assert code == 0, err
    assert json.loads(out.read_text())["fit"][key] == value
    # the regression has no prior per curve shape: refused in one line, nothing written
    bad = tmp_path / "r.json"
    code, _, err = run_cli(
        "calibrate", *data, "--model", "regression", option, value, "--out", str(bad)
    )
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and option in lines[0] and not bad.exists(), err
