"""Time-based regression: contract, known answers, recovery and coverage on the simulated world."""

from __future__ import annotations

import numpy as np
import pytest

from causal.base import check_is_fitted, clone, get_tags, make_estimator
from causal.errors import ConfigError, DataError, NotFittedError
from causal.tbr import TimeBasedRegression
from causal.world import World


def world_case(seed: int, *, n_geos=30, pre=84, test=28, n_treated=2, lift=0.0):
    """Treated pre/post and controls pre/post from a simulated world with a multiplicative lift."""
    rng = np.random.default_rng(10_000 + seed)
    y = World(n_geos, pre + test + 40, seed=seed).run().signups.astype(float)
    start = int(rng.integers(pre, y.shape[0] - test + 1))
    tr = rng.choice(n_geos, n_treated, replace=False)
    co = np.setdiff1d(np.arange(n_geos), tr)
    a, b = slice(start - pre, start), slice(start, start + test)
    y0 = y[b][:, tr]
    return (
        y[a][:, tr],
        y[a][:, co],
        y[b][:, co],
        y0 * (1 + lift),
        lift * y0.mean(axis=1).sum(),
        y0.mean(axis=1).sum(),
    )


def test_contract():
    est = TimeBasedRegression(errors="ar1", n_placebo=50)
    assert est.get_params() == {
        "errors": "ar1",
        "calibration": "placebo",
        "n_placebo": 50,
        "seed": 0,
    }
    assert clone(est).get_params() == est.get_params()
    assert isinstance(make_estimator("tbr"), TimeBasedRegression)
    assert get_tags(TimeBasedRegression()).own_inference and TimeBasedRegression.name == "tbr"
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    with pytest.raises(NotFittedError):
        est.effect_inference(np.ones(3))
    Y, X0, X1, Y1, *_ = world_case(0)
    assert est.fit(Y, X0, X1) is est
    for attr in (
        "coef_",
        "resid_",
        "sigma_",
        "error_model_",
        "counterfactual_pre_",
        "counterfactual_post_",
        "prediction_cov_",
        "df_",
        "placebo_z_",
        "n_treated_",
        "n_controls_",
    ):
        assert hasattr(est, attr), attr
    assert est.counterfactual_pre_.shape == (84,) and est.counterfactual_post_.shape == (28,)
    inf = est.effect_inference(Y1, confidence=0.9)
    assert inf.counterfactual_lo.shape == (28,) and inf.effect_ci[0] < inf.effect < inf.effect_ci[1]
    assert 0 <= inf.p_value <= 1
    # 1-D treated average gives the same answer
    assert est.effect_inference(Y1.mean(axis=1), confidence=0.9).effect == pytest.approx(inf.effect)


def test_fit_with_no_test_period():
    Y, X0, *_ = world_case(1)
    est = TimeBasedRegression().fit(Y, X0)
    assert est.counterfactual_post_.shape == (0,)
    assert est.effect_inference(np.empty((0, 2))).effect == 0.0


def test_bad_input():
    Y, X0, X1, Y1, *_ = world_case(2)
    with pytest.raises(ConfigError):
        TimeBasedRegression(errors="hac").fit(Y, X0, X1)
    with pytest.raises(ConfigError):
        TimeBasedRegression(calibration="bootstrap").fit(Y, X0, X1)
    with pytest.raises(DataError, match="needs at least"):
        TimeBasedRegression().fit(Y[:3], X0[:3], X1)
    with pytest.raises(DataError, match="constant"):
        TimeBasedRegression().fit(Y, np.ones_like(X0), X1)
    est = TimeBasedRegression().fit(Y, X0, X1)
    with pytest.raises(DataError, match="periods"):
        est.effect_inference(Y1[:5])
    with pytest.raises(ConfigError):
        est.effect_inference(Y1, confidence=1.5)


def test_noise_free_no_effect_is_zero():
    rng = np.random.default_rng(3)
    X = 100 + rng.normal(0, 5, (60, 4))
    y = 7.0 + 0.4 * X.mean(axis=1)
    est = TimeBasedRegression().fit(y[:45], X[:45], X[45:])
    np.testing.assert_allclose(est.coef_, [7.0, 0.4], atol=1e-9)
    inf = est.effect_inference(y[45:], confidence=0.9)
    assert inf.effect == pytest.approx(0.0, abs=1e-8)
    np.testing.assert_allclose(est.counterfactual_post_, y[45:], atol=1e-9)


def test_iid_interval_is_the_papers_formula():
    rng = np.random.default_rng(4)
    x = 50 + rng.normal(0, 3, (50, 3))
    y = 2 + 0.8 * x.mean(axis=1) + rng.normal(0, 1, 50)
    est = TimeBasedRegression(errors="iid", calibration=None).fit(y[:40], x[:40], x[40:])
    Z0 = np.column_stack([np.ones(40), x[:40].mean(axis=1)])
    Z1 = np.column_stack([np.ones(10), x[40:].mean(axis=1)])
    s2 = est.resid_ @ est.resid_ / 38
    v = s2 * (10 + np.ones(10) @ Z1 @ np.linalg.inv(Z0.T @ Z0) @ Z1.T @ np.ones(10))
    assert est.prediction_cov_.sum() == pytest.approx(v, rel=1e-9)


def test_recovers_injected_lift_quick():
    errs = []
    for seed in range(6):
        Y, X0, X1, Y1, truth, base = world_case(seed, lift=0.1)
        inf = TimeBasedRegression().fit(Y, X0, X1).effect_inference(Y1, confidence=0.9)
        errs.append((inf.effect - truth) / base)
    assert abs(np.mean(errs)) < 0.04  # bias within 4 lift points over 6 worlds (RMSE is about 5)


def test_autocorrelation_aware_interval_is_wider_than_iid():
    Y, X0, X1, Y1, *_ = world_case(5)
    wide = TimeBasedRegression(calibration=None).fit(Y, X0, X1).effect_inference(Y1, confidence=0.9)
    narrow = (
        TimeBasedRegression(errors="iid", calibration=None)
        .fit(Y, X0, X1)
        .effect_inference(Y1, confidence=0.9)
    )
    assert np.diff(wide.effect_ci)[0] > 1.5 * np.diff(narrow.effect_ci)[0]
    assert "t interval" in wide.method


def test_placebo_calibration_matches_a_hand_computed_placebo():
    Y, X0, X1, Y1, *_ = world_case(6, n_treated=1)
    est = TimeBasedRegression(n_placebo=10_000).fit(Y, X0, X1)
    J = X0.shape[1]
    assert est.placebo_z_.size == J  # one treated geo: every control is a placebo once
    g = 3
    rest = np.delete(np.arange(J), g)
    ref = TimeBasedRegression(calibration=None).fit(X0[:, g], X0[:, rest], X1[:, rest])
    z = ref.effect_inference(X1[:, g]).effect / np.sqrt(ref.prediction_cov_.sum())
    assert est.placebo_z_[g] == pytest.approx(z)
    inf = est.effect_inference(Y1, confidence=0.9)
    assert "placebo" in inf.method
    q = np.quantile(np.abs(est.placebo_z_), 0.9)
    assert np.diff(inf.effect_ci)[0] == pytest.approx(2 * q * np.sqrt(est.prediction_cov_.sum()))


@pytest.mark.slow
def test_coverage_study():
    covered, rejected = [], []
    for seed in range(200):
        Y, X0, X1, Y1, truth, _ = world_case(seed)
        inf = TimeBasedRegression().fit(Y, X0, X1).effect_inference(Y1, confidence=0.9)
        covered.append(inf.effect_ci[0] <= truth <= inf.effect_ci[1])
        rejected.append(inf.p_value < 0.1)
    assert 0.85 <= np.mean(covered) <= 0.95
    assert 0.05 <= np.mean(rejected) <= 0.15


@pytest.mark.parametrize("name", ["tbr", "did", "bsts"])
def test_every_parameter_and_attribute_is_documented(name):
    from causal.base import estimator_class

    cls = estimator_class(name)
    doc = cls.__doc__
    params = doc[doc.index("Parameters\n") : doc.index("Attributes\n")]
    for p in cls._param_names():
        assert f"{p} :" in params, f"{cls.__name__} parameter {p} is not documented"
    assert "References" in doc and "Examples" in doc
