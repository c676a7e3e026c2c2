"""Response curves: recovery of a known curve, pooling, clusters, backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allocation.response_model import ResponseModel, infer_clusters
from causal.errors import ConfigError, DataError
from causal.panel import load_panel
from causal.transforms import geometric_adstock, hill
from causal.world import CLUSTERS


def _known_panel(
    seed: int = 0, n_geos: int = 8, n_days: int = 400, beta: float = 60.0, decay: float = 0.5
):
    """One exogenous channel with a known Hill curve on top of a seasonal organic base."""
    rng = np.random.default_rng(seed)
    geos = [f"{p}{i:02d}" for p in ("NA", "EM") for i in range(1, n_geos // 2 + 1)]
    size = rng.uniform(0.5, 2.0, len(geos))
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    t = np.arange(n_days)
    season = 1 + 0.1 * np.cos(2 * np.pi * t / 365.25)
    x = 1500 * size * np.exp(rng.normal(0, 0.5, (n_days // 7 + 1, len(geos))))[t // 7]
    effect = size * beta * hill(geometric_adstock(x / size, decay), 1500.0, 1.0)
    y = (
        size * 300 * season[:, None]
        + effect
        + rng.normal(0, 3, (n_days, len(geos))) * np.sqrt(size)
    )
    df = pd.DataFrame(
        {
            "date": np.repeat(dates, len(geos)),
            "geo": np.tile(geos, n_days),
            "signups": y.ravel(),
            "spend_tv": x.ravel(),
        }
    )
    return load_panel(df), float(effect.sum())


def test_recovers_known_curve_contribution_and_forecasts():
    panel, truth = _known_panel()
    m = ResponseModel(holdout=60).fit(panel)
    assert m.contribution_["tv"] == pytest.approx(truth, rel=0.1)
    assert m.curves_["tv"].adstock["decay"] == pytest.approx(0.5, abs=0.15)
    assert m.backtest_ is not None and m.backtest_.wape_total < 0.03
    assert m.r2_ > 0.9


def test_clusters_from_a_mapping_or_none():
    # No cluster from geo-id prefixes: one market unless the user maps geos to clusters.
    assert infer_clusters(["NA01", "LA02", "EM03", "AP04"]) is None
    assert infer_clusters(["a", "b"], {"a": "x", "b": "y"}) == {"a": "x", "b": "y"}
    with pytest.raises(DataError, match="geo 'b'"):
        infer_clusters(["a", "b"], {"a": "x"})


def test_partial_pooling_shrinks_cluster_coefficients(small_world):
    world, df = small_world
    panel = load_panel(df)
    clusters = {g: CLUSTERS[c] for g, c in zip(world.geos, world.cluster_of)}
    spread = {}
    for pooling in (0.02, 50.0):
        m = ResponseModel(
            controls=["launch", "competitor_price"],
            pooling=pooling,
            holdout=0,
            n_sweeps=1,
            forms=("exp",),
            clusters=clusters,
        ).fit(panel)
        coef = m.coef_.loc["social"]
        spread[pooling] = float(coef.std() / abs(coef.mean()))
        assert list(m.coef_.columns) == ["APAC", "EMEA", "LATAM", "NA"]
    assert spread[0.02] < 0.5 * spread[50.0]


def test_weibull_adstock_and_single_market():
    panel, truth = _known_panel(n_geos=4, n_days=300)
    m = ResponseModel(adstock="weibull", clusters={g: "all" for g in panel.geos}, holdout=0).fit(
        panel
    )
    assert m.curves_["tv"].adstock["form"] == "weibull"
    assert m.contribution_["tv"] == pytest.approx(truth, rel=0.25)
    assert m.clusters_ == ["all"]


def test_bad_parameters_and_data():
    panel, _ = _known_panel(n_geos=4, n_days=100)
    with pytest.raises(ConfigError, match="forms"):
        ResponseModel(forms=("cubic",)).fit(panel)
    with pytest.raises(ConfigError, match="adstock"):
        ResponseModel(adstock="delayed").fit(panel)
    with pytest.raises(DataError, match="spend_radio"):
        ResponseModel(channels=["radio"]).fit(panel)


def test_weekly_panel_holds_out_a_quarter():
    panel, truth = _known_panel(n_days=728)
    df = panel.data.copy()
    df["date"] = df["date"].dt.to_period("W-SUN").dt.start_time
    weekly = load_panel(df.groupby(["date", "geo"], as_index=False)[["signups", "spend_tv"]].sum())
    m = ResponseModel().fit(weekly)
    assert m.backtest_ is not None and m.backtest_.n_periods == 13 and m.period_ == "week"
    assert m.backtest_.wape_total < 0.05
    assert m.contribution_["tv"] == pytest.approx(truth, rel=0.2)


def test_public_fitted_attributes_and_summary():
    panel, _ = _known_panel(n_days=200)
    clusters = {g: g[:2] for g in panel.geos}
    m = ResponseModel(holdout=0, clusters=clusters).fit(panel)
    # Other modules read these, never the private design (issue 19).
    assert set(m.spend_) == {"tv"} and m.spend_["tv"].shape == (len(m.dates_), len(m.geos_))
    assert m.n_coef_per_channel_ == 1 + len(m.clusters_) == 3
    assert list(m.cluster_index_) == [m.clusters_.index(clusters[g]) for g in m.geos_]
    assert m.column_index("tv") == slice(0, 3)
    s = m.summary()
    assert "R^2" in s and "channels" in s.tables
    assert s.tables["channels"].loc["tv", "form"] == m.to_frame().loc["tv", "form"]
    assert "e+" not in str(s)  # readable numbers
