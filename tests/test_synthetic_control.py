"""Synthetic control and augmented synthetic control: known answers and GeoLift parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import reference_file

from causal.base import clone, make_estimator
from causal.errors import DataError, NotFittedError
from causal.panel import load_panel
from causal.synthetic_control import (
    AugmentedSyntheticControl,
    SyntheticControl,
    simplex_least_squares,
)

TREATED = ["chicago", "portland"]


@pytest.fixture(scope="module")
def geolift():
    panel = load_panel(reference_file("geolift", "GeoLift_Test.csv"), y="Y", geo_col="location")
    W = panel.wide()
    control = [g for g in panel.geos if g not in TREATED]
    pre = W.index < "2021-04-01"
    return W, control, pre


def _fit(est, W, control, pre):
    return est.fit(
        W.loc[pre, TREATED].to_numpy(),
        W.loc[pre, control].to_numpy(),
        W.loc[~pre, control].to_numpy(),
    )


def test_simplex_least_squares_matches_cvxpy():
    import cvxpy as cp

    rng = np.random.default_rng(3)
    for _ in range(5):
        A = rng.normal(size=(40, 12)).cumsum(axis=0) * rng.uniform(1, 100)
        b = A @ rng.dirichlet(np.ones(12)) + rng.normal(size=40)
        w = simplex_least_squares(A, b)
        v = cp.Variable(12)
        cp.Problem(cp.Minimize(cp.sum_squares(A @ v - b)), [v >= 0, cp.sum(v) == 1]).solve()
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
        ours, theirs = (float(np.sum((A @ x - b) ** 2)) for x in (w, v.value))
        assert ours <= theirs * (1 + 1e-6) + 1e-9


def test_treated_copy_of_one_donor_gets_weight_one():
    X = np.random.default_rng(0).normal(size=(50, 6)).cumsum(axis=0)
    sc = SyntheticControl().fit(X[:40, 2] + 7.0, X[:40], X[40:])
    assert sc.weights_[2] == pytest.approx(1.0, abs=1e-6)
    assert sc.intercept_ == pytest.approx(7.0, abs=1e-6)
    np.testing.assert_allclose(sc.counterfactual_post_, X[40:, 2] + 7.0, atol=1e-5)
    # Without fixed effects the level cannot be absorbed: the fit is worse than with them.
    plain = SyntheticControl(fixed_effects=False).fit(X[:40, 2] + 7.0, X[:40], X[40:])
    assert plain.intercept_ == 0.0 and plain.pre_rmse_ > sc.pre_rmse_


def test_geolift_parity_sc(geolift):
    """GeoLift walkthrough: ATT 155.556, incremental 4667, lift 5.4%, weights, imbalance 0.1636."""
    W, control, pre = geolift
    sc = _fit(SyntheticControl(), W, control, pre)
    y_post = W.loc[~pre, TREATED].to_numpy().mean(axis=1)
    att = float(np.mean(y_post - sc.counterfactual_post_))
    assert att == pytest.approx(155.556, rel=0.01)
    assert att * 15 * 2 == pytest.approx(4667, rel=0.01)
    assert att * 15 / sc.counterfactual_post_.sum() == pytest.approx(0.054, abs=0.0005)
    w = pd.Series(sc.weights_, index=control)
    for geo, published in {"cincinnati": 0.2272, "miami": 0.2028, "baton rouge": 0.1335}.items():
        assert w[geo] == pytest.approx(published, abs=0.01)
    assert list(w.nlargest(3).index) == ["cincinnati", "miami", "baton rouge"]
    assert sc.scaled_l2_imbalance_ == pytest.approx(0.1636, abs=0.001)


def test_geolift_parity_asc(geolift):
    """GeoLift with ridge augmentation: ATT 156.805, incremental 4704, lift 5.5%."""
    W, control, pre = geolift
    asc = _fit(AugmentedSyntheticControl(), W, control, pre)
    y_post = W.loc[~pre, TREATED].to_numpy().mean(axis=1)
    att = float(np.mean(y_post - asc.counterfactual_post_))
    assert att == pytest.approx(156.805, rel=0.01)
    assert att * 30 == pytest.approx(4704, rel=0.01)
    assert round(att * 15 / asc.counterfactual_post_.sum(), 3) == pytest.approx(0.055, abs=0.001)
    assert asc.weights_.sum() == pytest.approx(1.0)
    assert asc.lambda_ > 0 and asc.cv_errors_.shape == (20,)


def test_asc_limits(geolift):
    W, control, pre = geolift
    sc = _fit(SyntheticControl(), W, control, pre)
    huge = _fit(AugmentedSyntheticControl(lam=1e15), W, control, pre)
    np.testing.assert_allclose(huge.counterfactual_post_, sc.counterfactual_post_, rtol=1e-5)
    small = _fit(AugmentedSyntheticControl(lam=1e-3), W, control, pre)
    assert small.pre_rmse_ < sc.pre_rmse_  # the ridge correction improves the pre-fit
    assert small.weights_.min() < 0  # ... at the price of negative weights
    assert small.refit_params() == {"lam": 1e-3}


@pytest.mark.parametrize("name", ["sc", "asc"])
def test_contract(name, geolift):
    W, control, pre = geolift
    est = make_estimator(name)
    with pytest.raises(NotFittedError):
        from causal.base import check_is_fitted

        check_is_fitted(est)
    assert clone(est).get_params() == est.get_params()
    assert _fit(est, W, control, pre) is est
    for attr in (
        "weights_",
        "counterfactual_pre_",
        "counterfactual_post_",
        "pre_rmse_",
        "pre_r2_",
        "scaled_l2_imbalance_",
        "n_treated_",
        "n_controls_",
        "intercept_",
    ):
        assert hasattr(est, attr), attr
    assert est.counterfactual_post_.shape == ((~pre).sum(),)
    with pytest.raises(DataError, match="needs at least"):
        make_estimator(name).fit(np.ones(2), np.ones((2, 3)))
