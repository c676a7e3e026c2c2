"""BSTS (CausalImpact): R parity on the fixtures, contract, recovery and coverage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import reference_file
from test_tbr import world_case

from causal.base import check_is_fitted, clone, get_tags, make_estimator
from causal.bsts import BayesianStructuralTimeSeries, causalimpact_summary
from causal.errors import ConfigError, DataError, NotFittedError

# The five CausalImpact scenarios of ../shared/data/causalimpact_r/ (r_reference_dtw.json
# holds dynamic-time-warping distances, not CausalImpact output).
SCENARIOS = ["basic", "covariates", "no_effect", "seasonal", "strong_effect"]
FAST = {"niter": 3000, "nwarmup": 300}


def _fixture(name):
    d = json.loads(reference_file("causalimpact_r", f"r_reference_{name}.json").read_text())
    y = np.asarray(d["data"]["y"], float)
    X = (
        np.column_stack([np.asarray(v, float) for v in d["data"]["x"].values()])
        if d["data"]["x"]
        else None
    )
    kw = {"nseasons": d["model_args"]["nseasons"]} if "nseasons" in d["model_args"] else {}
    return d, y, X, kw


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_r_parity(scenario):
    d, y, X, kw = _fixture(scenario)
    n0 = d["n_pre"]
    est = BayesianStructuralTimeSeries(**kw).fit_series(
        y[:n0], len(y) - n0, None if X is None else X[:n0], None if X is None else X[n0:]
    )
    ours, r = causalimpact_summary(y[n0:], est.predictive_draws_, 0.05), d["r_output"]
    for key in ("point_effect_mean", "ci_lower", "ci_upper", "cumulative_effect_total"):
        assert ours[key] == pytest.approx(r[key], rel=0.05), key
    assert abs(ours["p_value"] - r["p_value"]) < 0.03
    # the same figures through the estimator contract (sum over the test at 95%)
    inf = est.effect_inference(y[n0:], confidence=0.95)
    T1 = len(y) - n0
    assert inf.effect_ci[0] / T1 == pytest.approx(r["ci_lower"], rel=0.05)
    assert inf.effect_ci[1] / T1 == pytest.approx(r["ci_upper"], rel=0.05)
    assert inf.tail_probability == pytest.approx(ours["p_value"])


def test_deterministic_given_seed():
    d, y, X, _ = _fixture("covariates")
    a = BayesianStructuralTimeSeries(**FAST, seed=5).fit(y[:70], X[:70], X[70:])
    b = BayesianStructuralTimeSeries(**FAST, seed=5).fit(y[:70], X[:70], X[70:])
    np.testing.assert_array_equal(a.predictive_draws_, b.predictive_draws_)
    c = BayesianStructuralTimeSeries(**FAST, seed=6).fit(y[:70], X[:70], X[70:])
    assert not np.array_equal(a.predictive_draws_, c.predictive_draws_)


def test_contract():
    est = BayesianStructuralTimeSeries(**FAST)
    params = est.get_params()
    assert params["niter"] == 3000 and set(params) == {
        "niter",
        "nwarmup",
        "nseasons",
        "prior_level_sd",
        "expected_model_size",
        "standardize",
        "calibration",
        "n_placebo",
        "placebo_niter",
        "seed",
    }
    assert clone(est).get_params() == params
    assert isinstance(make_estimator("bsts"), BayesianStructuralTimeSeries)
    assert (
        get_tags(BayesianStructuralTimeSeries()).own_inference
        and BayesianStructuralTimeSeries.name == "bsts"
    )
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    Y, X0, X1, Y1, *_ = world_case(0)
    assert est.fit(Y, X0, X1) is est
    for attr in (
        "counterfactual_pre_",
        "counterfactual_post_",
        "predictive_draws_",
        "coef_",
        "inclusion_probs_",
        "sigma_obs_",
        "placebo_z_",
        "n_treated_",
        "n_controls_",
    ):
        assert hasattr(est, attr), attr
    assert est.predictive_draws_.shape == (3000, 28) and est.counterfactual_pre_.shape == (84,)
    inf = est.effect_inference(Y1, confidence=0.9)
    assert inf.effect_ci[0] < inf.effect < inf.effect_ci[1] and 0 < inf.p_value <= 1
    assert np.all(inf.counterfactual_lo < inf.counterfactual_hi)


def test_no_test_period_and_bad_input():
    Y, X0, X1, *_ = world_case(1)
    est = BayesianStructuralTimeSeries(**FAST).fit(Y, X0)
    assert est.counterfactual_post_.shape == (0,)
    with pytest.raises(ConfigError):
        BayesianStructuralTimeSeries(niter=0).fit(Y, X0, X1)
    with pytest.raises(DataError, match="constant"):
        BayesianStructuralTimeSeries(**FAST).fit(np.ones_like(Y), X0, X1)
    with pytest.raises(DataError, match="seasons"):
        BayesianStructuralTimeSeries(**FAST, nseasons=7).fit(Y[:10], X0[:10], X1)


def test_placebo_calibration_option():
    Y, X0, X1, Y1, *_ = world_case(3)
    est = BayesianStructuralTimeSeries(
        **FAST, calibration="placebo", n_placebo=12, placebo_niter=300
    ).fit(Y, X0, X1)
    assert est.placebo_z_.size == 12
    inf = est.effect_inference(Y1, confidence=0.9)
    sd = est.predictive_draws_.sum(axis=1).std(ddof=1)
    q = np.quantile(np.abs(est.placebo_z_), 0.9)
    assert inf.effect_ci[1] - inf.effect_ci[0] == pytest.approx(2 * q * sd)
    assert "placebo" in inf.method
    with pytest.raises(ConfigError):
        BayesianStructuralTimeSeries(**FAST, calibration="conformal").fit(Y, X0, X1)


def test_pre_period_fit_tracks_series():
    d, y, _, kw = _fixture("seasonal")
    est = BayesianStructuralTimeSeries(**FAST, **kw).fit_series(y[:84], 28)
    assert np.std(y[:84] - est.counterfactual_pre_) < 0.5 * np.std(y[:84])


def test_recovers_injected_lift_quick():
    errs = []
    for seed in range(4):
        Y, X0, X1, Y1, truth, base = world_case(seed, lift=0.1)
        inf = (
            BayesianStructuralTimeSeries(**FAST).fit(Y, X0, X1).effect_inference(Y1, confidence=0.9)
        )
        errs.append((inf.effect - truth) / base)
    assert abs(np.mean(errs)) < 0.05


@pytest.mark.slow
def test_coverage_study():
    covered, rejected = [], []
    for seed in range(200):
        Y, X0, X1, Y1, truth, _ = world_case(seed)
        inf = (
            BayesianStructuralTimeSeries(niter=5000, nwarmup=500)
            .fit(Y, X0, X1)
            .effect_inference(Y1, confidence=0.9)
        )
        covered.append(inf.effect_ci[0] <= truth <= inf.effect_ci[1])
        rejected.append(inf.p_value < 0.1)
    # R-faithful posterior intervals under-cover on autocorrelated geo data: this pins the
    # documented miss (docs/estimators_tbr_did_bsts.md, coverage about 0.64, FPR about 0.36).
    assert 0.5 <= np.mean(covered) <= 0.8
    assert 0.2 <= np.mean(rejected) <= 0.5
