import json

import numpy as np
import pandas as pd
import pytest

from causal.errors import ConfigError
from causal.world import Experiment, World
from causal.world_io import simulate, truth_clusters


def test_same_seed_same_world_and_truth():
    a_panel, a_truth = simulate(10, 90, seed=4)
    b_panel, b_truth = simulate(10, 90, seed=4)
    pd.testing.assert_frame_equal(a_panel, b_panel)
    assert json.dumps(a_truth, sort_keys=True) == json.dumps(b_truth, sort_keys=True)
    c_panel, _ = simulate(10, 90, seed=5)
    assert not a_panel["signups"].equals(c_panel["signups"])


def test_panel_layout(small_world):
    world, panel = small_world
    assert len(panel) == 12 * 200
    assert list(panel.columns[:3]) == ["date", "geo", "signups"]
    spend = [c for c in panel if c.startswith("spend_")]
    assert spend == [
        f"spend_{c}" for c in ("brand_search", "nonbrand_search", "social", "programmatic", "ctv")
    ]
    assert {"brand_queries", "launch", "competitor_price"} <= set(panel.columns)
    assert (panel[spend] >= 0).all().all()
    assert not panel.isna().any().any()
    assert set(world.cluster_of) == {0, 1, 2, 3}


def test_geo_noise_is_autocorrelated(default_world):
    """Daily market deviations persist: residual autocorrelation at lag 1 is well above zero."""
    world, _ = default_world
    log_dev = np.log(world.organic) - np.log(world.organic).mean(axis=0)
    # Remove the common (cluster and calendar) part: deviation of each geo from its cluster mean.
    resid = np.column_stack(
        [
            log_dev[:, g] - log_dev[:, world.cluster_of == world.cluster_of[g]].mean(axis=1)
            for g in range(world.n_geos)
        ]
    )
    r1 = np.mean([np.corrcoef(resid[1:, g], resid[:-1, g])[0, 1] for g in range(world.n_geos)])
    assert r1 > 0.5


def test_experiment_truth_is_the_difference_of_two_runs():
    world = World(12, 120, seed=3)
    e = Experiment("ctv", ("NA01", "EM01"), "2024-03-01", "2024-03-28", 0.0)
    truth = world.experiment_truth(e)
    base = world.run()
    treated = world.run(world._multipliers([e]))
    rows = (world.dates >= "2024-03-01") & (world.dates <= "2024-03-28")
    cols = [world.geos.index("NA01"), world.geos.index("EM01")]
    expected = (treated.signups[rows][:, cols] - base.signups[rows][:, cols]).sum()
    assert truth["true_incremental"] == pytest.approx(expected)
    assert truth["true_incremental"] < 0 and truth["spend_delta"] < 0
    # The untreated geos are untouched by the intervention.
    others = [i for i in range(world.n_geos) if i not in cols]
    np.testing.assert_array_equal(treated.signups[:, others], base.signups[:, others])


def test_contributions_are_positive_and_below_total(small_world):
    world, _ = small_world
    truth = world.truth()
    for ch, c in truth["contributions"].items():
        assert 0 < c < 0.2 * truth["total_signups"], ch
    assert truth["organic_signups"] < truth["total_signups"]


def test_brand_search_spend_follows_demand(default_world):
    world, panel = default_world
    # Within geo, branded-search spend tracks organic demand closely.
    bs = world.run().spend["brand_search"]
    r = np.mean([np.corrcoef(bs[:, g], world.organic[:, g])[0, 1] for g in range(world.n_geos)])
    assert r > 0.8


def test_naive_regression_over_credits_brand_and_under_credits_ctv(default_world):
    """The world exhibits the problem the toolkit exists for (issue 2's acceptance test)."""
    world, panel = default_world
    truth = world.truth()
    spend_cols = [c for c in panel if c.startswith("spend_")]
    # Pooled OLS with geo fixed effects (within transformation).
    demeaned = panel[["signups", *spend_cols]] - panel.groupby("geo")[
        ["signups", *spend_cols]
    ].transform("mean")
    coef, *_ = np.linalg.lstsq(
        demeaned[spend_cols].to_numpy(), demeaned["signups"].to_numpy(), rcond=None
    )
    credit = {c[len("spend_") :]: b * panel[c].sum() for c, b in zip(spend_cols, coef)}
    assert credit["brand_search"] >= 3 * truth["contributions"]["brand_search"]
    assert credit["ctv"] < truth["contributions"]["ctv"]


def test_plan_override_replaces_spend():
    world = World(8, 60, seed=1)
    zero = {ch: np.zeros((60, 8)) for ch in world.channels}
    run = world.run(spend=zero)
    off = world.run({ch: 0.0 for ch in world.channels})
    np.testing.assert_allclose(run.signups, off.signups)


def test_experiment_parse_errors():
    from causal.errors import ConfigError

    with pytest.raises(ConfigError, match="CHANNEL:KIND"):
        Experiment.parse("ctv:go_dark")
    with pytest.raises(ConfigError, match="neither a kind"):
        Experiment.parse("ctv:sideways:NA01:2024-01-01:2024-01-10")
    world = World(8, 60, seed=1)
    with pytest.raises(ConfigError, match="outside the world"):
        world.experiment_truth(Experiment("ctv", ("NA01",), "2023-01-01", "2023-01-10"))
    with pytest.raises(ConfigError, match="'ZZ99' is not in this world"):
        world.experiment_truth(Experiment("ctv", ("ZZ99",), "2024-01-05", "2024-01-10"))


# -- study-world options (issue 13) ------------------------------------------


def test_default_options_leave_the_world_unchanged():
    world = World(8, 56, seed=2)
    assert world.options == {}
    assert "options" not in world.truth()
    same = World(8, 56, seed=2, brand_spend_noise=0.05, demand_following=0.0, brand_strength=1.0)
    pd.testing.assert_frame_equal(world.panel(), same.panel())


def test_brand_queries_column_can_be_withheld():
    seen, hidden = World(8, 56, seed=2), World(8, 56, seed=2, observe_queries=False)
    assert "brand_queries" in seen.panel() and "brand_queries" not in hidden.panel()
    pd.testing.assert_frame_equal(seen.panel().drop(columns="brand_queries"), hidden.panel())
    assert hidden.truth()["options"] == {"observe_queries": False}


def test_brand_strength_scales_branded_search_only():
    weak, strong = (
        World(8, 120, seed=2, brand_strength=0.2),
        World(8, 120, seed=2, brand_strength=6.0),
    )
    cw, cs = weak.true_contributions(), strong.true_contributions()
    assert cs["brand_search"] > 15 * cw["brand_search"]
    for ch in ("nonbrand_search", "social", "ctv"):
        assert cs[ch] == pytest.approx(cw[ch], rel=0.1), ch
    # Spend does not depend on the effect: the same in both worlds.
    spend = [c for c in weak.panel() if c.startswith("spend_")]
    pd.testing.assert_frame_equal(weak.panel()[spend], strong.panel()[spend])


def _corr_with_demand(world: World, channel: str) -> float:
    x = world.run().spend[channel]
    return float(
        np.mean([np.corrcoef(x[:, g], world.organic[:, g])[0, 1] for g in range(world.n_geos)])
    )


def test_confounding_strength_is_set_by_the_options():
    strong = World(12, 200, seed=7, demand_following=0.7)
    weak = World(12, 200, seed=7, brand_spend_noise=0.3)
    assert _corr_with_demand(strong, "brand_search") > 0.8 > _corr_with_demand(weak, "brand_search")
    for ch in ("ctv", "social"):  # CTV's flighting weeks keep its correlation lower
        assert _corr_with_demand(strong, ch) > _corr_with_demand(weak, ch) + 0.1, ch
    with pytest.raises(ConfigError, match="brand_spend_noise"):
        World(8, 56, brand_spend_noise=-1.0)


def test_clusters_mapping_matches_truth():
    world = World(12, 56, seed=1)
    clusters = world.clusters()
    assert list(clusters.columns) == ["geo", "cluster"] and list(clusters["geo"]) == world.geos
    assert dict(zip(clusters["geo"], clusters["cluster"])) == {
        g["geo"]: g["cluster"] for g in world.truth()["geos"]
    }
    pd.testing.assert_frame_equal(truth_clusters(world.truth()), clusters)


def test_to_weekly_sums_the_same_world():
    from causal.world_io import to_weekly

    panel, truth = simulate(8, 56, seed=2)
    weekly, wtruth = to_weekly(panel, truth)
    assert len(weekly) == 8 * 8 and list(weekly.columns) == list(panel.columns)
    assert weekly["date"].iloc[0] == "2024-01-01" and weekly["date"].nunique() == 8
    for col in ("signups", "spend_ctv", "brand_queries"):
        assert weekly[col].sum() == pytest.approx(panel[col].sum())
    first = panel[(panel["geo"] == "NA01") & (panel["date"] <= "2024-01-07")]
    row = weekly[(weekly["geo"] == "NA01") & (weekly["date"] == "2024-01-01")].iloc[0]
    assert row["signups"] == first["signups"].sum()
    assert row["competitor_price"] == pytest.approx(first["competitor_price"].mean())
    assert wtruth["period"] == "week" and wtruth["contributions"] == truth["contributions"]
    with pytest.raises(ConfigError, match="whole weeks"):
        to_weekly(simulate(8, 60, seed=2)[0])
