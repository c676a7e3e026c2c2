"""Lift readouts: GeoLift parity, totals vs incremental, spend, bad input, and a quick simulation study."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import reference_file

from causal.base import CounterfactualEstimator
from causal.errors import ConfigError, DataError
from causal.inference import EffectInference
from causal.panel import load_panel
from causal.world import Experiment, World
from experiments.readout import parse_cells, read_out, read_out_cells

INTERFACE_KEYS = {
    "outcome",
    "estimator",
    "confidence",
    "treated",
    "control",
    "pre_period",
    "test_period",
    "observed",
    "counterfactual",
    "incremental",
    "incremental_ci",
    "lift",
    "lift_ci",
    "p_value",
    "channel",
    "spend_delta",
    "incremental_per_spend",
    "cost_per_incremental",
}
# The simulation study is a benchmark script (benchmarks/study_readout.py), not library code.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

TEST = ("2021-04-01", "2021-04-15")


@pytest.fixture(scope="module")
def geolift():
    return load_panel(reference_file("geolift", "GeoLift_Test.csv"), y="Y", geo_col="location")


@pytest.fixture(scope="module")
def geolift_readout(geolift):
    return read_out(geolift, ["chicago", "portland"], TEST, inference="geolift")


def test_geolift_parity_readout(geolift_readout):
    r = geolift_readout
    assert r.att == pytest.approx(155.556, rel=0.01)
    assert r.incremental == pytest.approx(4667, rel=0.01)
    assert r.lift == pytest.approx(0.054, abs=0.0005)
    assert 0.005 <= r.p_value <= 0.03
    top = r.weights.nlargest(3)
    assert top.to_dict() == pytest.approx(
        {"cincinnati": 0.2272, "miami": 0.2028, "baton rouge": 0.1335}, abs=0.01
    )
    assert r.fit["scaled_l2_imbalance"] == pytest.approx(0.1636, abs=0.001)


def test_totals_are_kept_apart(geolift, geolift_readout):
    r = geolift_readout
    W = geolift.wide().loc["2021-04-01":"2021-04-15", ["chicago", "portland"]]
    assert r.observed == pytest.approx(W.to_numpy().sum())
    assert r.counterfactual == pytest.approx(r.observed - r.incremental)
    assert r.incremental == pytest.approx(r.att * 2 * 15)
    assert r.lift == pytest.approx(r.incremental / r.counterfactual)
    lo, hi = r.incremental_ci
    assert r.lift_ci[0] == pytest.approx(lo / (r.observed - lo)) and r.lift_ci[1] == pytest.approx(
        hi / (r.observed - hi)
    )
    t = r.table
    assert t.loc["observed (total) Y", "estimate"] == r.observed
    assert t.loc["incremental Y", "estimate"] == r.incremental
    test = r.series[r.series["period"] == "test"]
    assert test["incremental"].sum() == pytest.approx(r.incremental)
    assert test["cumulative_incremental"].iloc[-1] == pytest.approx(r.incremental)


def test_to_dict_has_every_interface_key(geolift_readout):
    d = geolift_readout.to_dict()
    assert INTERFACE_KEYS <= set(d)
    assert d["pre_period"] == ["2021-01-01", "2021-03-31"] and d["test_period"] == list(TEST)
    assert d["channel"] is None and d["spend_delta"] is None and d["cost_per_incremental"] is None
    assert len(d["series"]["date"]) == 15 and d["weights"]["cincinnati"] > 0.2
    assert d["placebo"]["space"]["p_value"] > 0


def test_summary_text_and_plots(geolift_readout):
    r = geolift_readout
    assert "incremental" in str(r.summary()) and "<pre>" in r.summary()._repr_html_()
    assert "4,667" in r.text
    import matplotlib.pyplot as plt

    for kind in ("counterfactual", "incremental", "cumulative", "placebo", "weights"):
        fig, ax = r.plot(kind=kind)
        assert ax.has_data()
        plt.close(fig)
    with pytest.raises(ValueError):
        r.plot(kind="pie")


def test_default_inference_is_block_conformal(geolift):
    r = read_out(geolift, ["chicago", "portland"], TEST, placebos=False)
    assert "moving-block" in r.inference_method
    assert r.incremental_ci[0] < r.incremental < r.incremental_ci[1]


def test_asc_readout(geolift):
    r = read_out(geolift, ["chicago", "portland"], TEST, estimator="asc", placebos=False)
    assert r.incremental == pytest.approx(4704, rel=0.01)
    assert round(r.lift, 3) == pytest.approx(0.055)


def test_multicell_parity():
    """GeoLift multi-cell walkthrough (ridge augmentation): cell lifts 22.8% and 7.1%."""
    panel = load_panel(
        reference_file("geolift", "GeoLift_Test_MultiCell.csv"), y="Y", geo_col="location"
    )
    cells = parse_cells("c1=chicago,cincinnati;c2=honolulu,indianapolis")
    m = read_out_cells(panel, cells, TEST, estimator="asc", placebos=False)
    assert m.cells["c1"].lift == pytest.approx(0.228, rel=0.02)
    assert m.cells["c2"].lift == pytest.approx(0.071, rel=0.02)
    assert m.cells["c1"].incremental == pytest.approx(20215, rel=0.02)
    assert m.cells["c2"].incremental == pytest.approx(6493, rel=0.02)
    for r in m.cells.values():  # every cell against the untreated geos only
        assert not {"chicago", "cincinnati", "honolulu", "indianapolis"} & set(r.control)
    assert set(m.to_dict()["cells"]) == {"c1", "c2"} and INTERFACE_KEYS <= set(
        m.to_dict()["cells"]["c2"]
    )
    assert list(m.table.index) == ["c1", "c2"]
    with pytest.raises(DataError, match="two cells"):
        read_out_cells(panel, {"a": ["chicago"], "b": ["chicago", "miami"]}, TEST)


@pytest.fixture(scope="module")
def world_experiment():
    world = World(16, 240, seed=11)
    e = Experiment("ctv", ("NA01", "EM02", "LA03"), "2024-07-01", "2024-07-28", 0.0)
    frame, truth = world.simulate([e])
    return load_panel(frame), truth["experiments"][0]


def test_channel_spend_delta_and_cost(world_experiment):
    panel, truth = world_experiment
    r = read_out(
        panel, ["NA01", "EM02", "LA03"], ("2024-07-01", "2024-07-28"), channel="ctv", placebos=False
    )
    # go-dark: spend falls; the counterfactual spend is estimated like the outcome's.
    assert r.spend_delta < 0
    assert r.spend_delta == pytest.approx(truth["spend_delta"], rel=0.25)
    assert r.incremental_per_spend == pytest.approx(r.incremental / r.spend_delta)
    assert r.cost_per_incremental == pytest.approx(r.spend_delta / r.incremental)
    assert "spend change (ctv)" in r.table.index
    lo, hi = r.incremental_ci
    assert lo <= truth["true_incremental"] <= hi


class _OwnInference(CounterfactualEstimator):
    """A mean-difference estimator that carries its own (fixed) inference: +- width x the treated pre-mean.

    Relative to the data's level, as any real inference is (the readout fits on rescaled data)."""

    name = "own"

    def __liftlab_tags__(self):
        return replace(super().__liftlab_tags__(), own_inference=True)

    def __init__(self, *, width: float = 1.0) -> None:
        self.width = width

    def _fit(self, Y, X0, X1):
        level = Y.mean() - X0.mean()
        self.y_level_ = float(Y.mean())
        self.counterfactual_pre_ = X0.mean(axis=1) + level
        self.counterfactual_post_ = X1.mean(axis=1) + level

    def effect_inference(self, Y_treated_post, confidence=0.9):
        alpha = 1 - confidence
        eff = float(np.sum(np.asarray(Y_treated_post).mean(axis=1) - self.counterfactual_post_))
        cf = self.counterfactual_post_
        w = self.width * self.y_level_
        return EffectInference(
            eff, (eff - w, eff + w), 0.5, cf - 1, cf + 1, f"own, alpha {alpha:.2f}"
        )


def test_estimator_with_own_inference_is_asked_for_it(geolift):
    r = read_out(
        geolift, ["chicago", "portland"], TEST, estimator=_OwnInference(width=0.5), placebos=False
    )
    assert r.inference_method == "own, alpha 0.10" and r.p_value == 0.5
    pre = (
        r.series[r.series["period"] == "pre"]["observed"].mean() / 2
    )  # the treated average's pre-mean
    assert r.incremental_ci[1] - r.incremental_ci[0] == pytest.approx(2 * 0.5 * pre * 2)
    assert r.estimator == "own"


def test_bad_input(geolift):
    with pytest.raises(DataError, match="'gotham' is not in the panel"):
        read_out(geolift, ["gotham"], TEST)
    with pytest.raises(DataError, match="both as treated and as control"):
        read_out(geolift, ["chicago"], TEST, control=["chicago", "miami"])
    with pytest.raises(DataError, match="outside the data"):
        read_out(geolift, ["chicago"], ("2021-04-01", "2021-05-15"))
    with pytest.raises(DataError, match="needs at least"):
        read_out(geolift, ["chicago"], TEST, pre_period=("2021-03-30", "2021-03-31"))
    with pytest.raises(DataError, match="starts 2021-04-15 after it ends"):
        read_out(geolift, ["chicago"], ("2021-04-15", "2021-04-01"))
    with pytest.raises(DataError, match="no spend column 'spend_tv'"):
        read_out(geolift, ["chicago"], TEST, channel="tv")
    with pytest.raises(ConfigError, match="unknown estimator"):
        read_out(geolift, ["chicago"], TEST, estimator="magic")
    with pytest.raises(ConfigError, match="confidence"):
        read_out(geolift, ["chicago"], TEST, confidence=1.5)
    frame = geolift.data.copy()
    frame.loc[frame["location"] == "chicago", "Y"] = 0
    with pytest.raises(DataError, match="treated geo 'chicago' has 'Y' all zero"):
        read_out(load_panel(frame, y="Y", geo_col="location"), ["chicago"], TEST)
    frame.loc[frame["location"] == "chicago", "Y"] = 5
    with pytest.raises(DataError, match="constant 'Y'"):
        read_out(load_panel(frame, y="Y", geo_col="location"), ["chicago"], TEST)


def test_quick_simulation_study():
    """A few dozen replications on the simulated world: sc's interval and test behave."""
    from study_readout import StudyDesign, run_study, summarise  # benchmarks/, not the library

    res = run_study(
        ["sc"],
        24,
        design=StudyDesign(
            n_geos=20, n_days=220, n_worlds=2, lifts=(0.0, 0.15), world_experiments=True
        ),
        seed=3,
    )
    s = summarise(res)
    null = s.loc[("sc", "lift 0%")]
    assert null["reps"] == 24 and null["coverage"] >= 0.75 and null["reject_rate"] <= 0.25
    assert s.loc[("sc", "lift 15%"), "reject_rate"] >= 0.5
    assert abs(s.loc[("sc", "lift 0%"), "bias_pp"]) < 2.0
    assert s.loc[("sc", "in-world experiment"), "coverage"] >= 0.7
    assert isinstance(res, pd.DataFrame) and res["error"].isna().all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sc", "asc", "sdid"])
def test_simulation_study_conformal_estimators(name):
    """40 replications with in-world experiments: the conformal family keeps its nominal rates roughly."""
    from study_readout import StudyDesign, run_study, summarise  # benchmarks/, not the library

    res = run_study([name], 40, design=StudyDesign(lifts=(0.0, 0.1)), seed=21)
    s = summarise(res)
    assert res["error"].isna().all()
    null = s.loc[(name, "lift 0%")]
    assert 0.75 <= null["coverage"] <= 1.0 and null["reject_rate"] <= 0.25
    assert s.loc[(name, "lift 10%"), "reject_rate"] > null["reject_rate"]
    assert s.loc[(name, "in-world experiment"), "coverage"] >= 0.7


def test_miscalibrated_estimator_says_so(geolift, monkeypatch):
    import experiments.readout as readout_module

    # bsts's posterior inference, gbr without a channel and trimmed_match (slightly) miss the nominal rates.
    assert set(readout_module.MISCALIBRATED) == {
        "bsts:posterior",
        "gbr",
        "trimmed_match",
        "tbr:conformal-fallback",
    }
    monkeypatch.setitem(
        readout_module.MISCALIBRATED, "asc", "asc's intervals covered 1% (a test note)"
    )
    r = read_out(geolift, ["chicago", "portland"], TEST, estimator="asc", placebos=False)
    assert "asc's intervals covered 1% (a test note)" in r.notes
    assert not any(
        "covered" in n for n in read_out(geolift, ["chicago"], TEST, placebos=False).notes
    )


def test_sdid_reads_out_with_its_placebo_inference(geolift):
    r = read_out(geolift, ["chicago", "portland"], TEST, estimator="sdid", placebos=False)
    assert "relative placebo-in-space" in r.inference_method
    assert not any("covered" in n for n in r.notes)
    d = r.to_dict()
    lo, hi = d["incremental_ci"]
    assert lo <= d["incremental"] <= hi and 0 < d["p_value"] <= 1
    assert r.weights is not None and r.weights.sum() == pytest.approx(1.0)
    # The conformal test stays available for sdid.
    from causal.sdid import SyntheticDiD

    c = read_out(
        geolift,
        ["chicago", "portland"],
        TEST,
        estimator=SyntheticDiD(inference="conformal"),
        placebos=False,
    )
    assert "relative placebo" not in c.inference_method and c.to_dict()[
        "incremental"
    ] == pytest.approx(d["incremental"])
