"""One contract over every estimator of ``causal`` (scikit-learn's ``check_estimator`` in small).

The estimators come from :func:`causal.base.all_estimators`, which walks the subclasses of
``BaseEstimator`` in every estimator module: a new estimator is covered without editing this file.
What its ``fit`` takes is read from its tags (``input``), never guessed from its name. Each check
is a plain function raising ``AssertionError``; ``test_the_checks_can_fail`` runs them on a
deliberately broken estimator, so a check that passes everything would be caught.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from causal.base import (
    BaseEstimator,
    CounterfactualEstimator,
    EstimatorTags,
    all_estimators,
    check_is_fitted,
    clone,
    get_tags,
)
from causal.errors import ConfigError, DataError, NotFittedError

ESTIMATORS = all_estimators()
# Shorter chains only where a default fit takes seconds (bsts: 10,000 Gibbs draws).
FAST = {"BayesianStructuralTimeSeries": {"niter": 400, "nwarmup": 50}}


def make(cls: type[BaseEstimator], **params) -> BaseEstimator:
    return cls(**{**FAST.get(cls.__name__, {}), **params})


# -- data by what fit takes ----------------------------------------------------------------------
def panel_data(seed: int = 0, scale: float = 1.0):
    """(Y_treated_pre, Y_control_pre, Y_control_post): 2 treated geos, 8 donors, 40 + 10 periods."""
    rng = np.random.default_rng(seed)
    T0, T1, J = 40, 10, 8
    X = 100 + rng.normal(0, 1, (T0 + T1, J)).cumsum(axis=0) + rng.uniform(0, 20, J)
    Y = np.column_stack([X[:, :3].mean(axis=1), X[:, 3:6].mean(axis=1)])
    Y = Y + rng.normal(0, 0.5, Y.shape)
    return Y[:T0] * scale, X[:T0] * scale, X[T0:] * scale, Y[T0:] * scale


def fit_args(est: BaseEstimator, scale: float = 1.0, seed: int = 0) -> tuple:
    kind = get_tags(est).input
    rng = np.random.default_rng(seed)
    if kind == "panel":
        return panel_data(seed, scale)[:3]
    if kind == "geos":
        y0 = rng.uniform(100, 1000, 20)
        delta = np.r_[np.full(10, 50.0), np.zeros(10)]
        y1 = 5 + 1.1 * y0 + 2.0 * delta + rng.normal(0, 1, 20) * np.sqrt(y0)
        return y1 * scale, y0 * scale, delta
    if kind == "pairs":
        dS = rng.uniform(1, 10, 12)
        dR = 1.5 * dS + rng.normal(0, 1, 12)
        return dR * scale, dS
    raise AssertionError(f"{type(est).__name__}: unknown input tag {kind!r}")


def prepared(cls: type[BaseEstimator], scale: float = 1.0, **params) -> BaseEstimator:
    """An unfitted estimator with what its tags say it needs from the data (predictors)."""
    est = make(cls, **params)
    if get_tags(est).per_unit_params:
        _, X0, _, _ = panel_data(0, scale)
        Y0 = panel_data(0, scale)[0].mean(axis=1)
        units = np.column_stack([Y0, X0])  # treated first, then the donors
        est.set_params(predictors=np.vstack([units.mean(axis=0), units[-1], units[0]]))
    return est


def fitted_output(est: BaseEstimator) -> np.ndarray:
    """What a fit produces, as one array: the counterfactual, or the estimate and its interval."""
    if isinstance(est, CounterfactualEstimator):
        return np.r_[est.counterfactual_pre_, est.counterfactual_post_]
    return np.r_[est.estimate_, est.conf_int()]


# -- the checks ----------------------------------------------------------------------------------
def check_construction(cls) -> None:
    est = make(cls)
    sig = inspect.signature(cls.__init__)
    for p in list(sig.parameters.values())[1:]:
        assert p.kind is p.KEYWORD_ONLY, f"{cls.__name__}: parameter {p.name} is not keyword-only"
    params = est.get_params()
    assert set(params) == set(cls._param_names())
    # The constructor stores its arguments unchanged and nothing else.
    assert set(vars(est)) == set(params), (
        f"{cls.__name__}.__init__ sets {sorted(set(vars(est)) - set(params))}"
    )
    assert repr(est).startswith(cls.__name__ + "(")
    twin = clone(est)
    assert twin is not est and type(twin) is cls and twin.get_params().keys() == params.keys()
    assert twin.set_params(**params) is twin
    with pytest.raises(ConfigError, match="has no parameter"):
        est.set_params(no_such_parameter=1)


def check_tags(cls) -> None:
    tags = get_tags(make(cls))
    assert isinstance(tags, EstimatorTags)
    assert tags.input in ("panel", "geos", "pairs")
    if tags.input == "panel":
        assert issubclass(cls, CounterfactualEstimator)
        assert tags.min_pre_periods == cls.min_pre_periods
    if tags.own_inference:
        assert callable(getattr(cls, "effect_inference", None)), f"{cls.__name__}: no inference"
    for name in cls._parameter_constraints:
        assert name in cls._param_names(), f"{cls.__name__}: constraint on unknown '{name}'"
    # The declared inference switches are valid parameter settings, and select an own inference.
    for choice, params in tags.inference_options.items():
        est = make(cls).set_params(**params)
        est._validate_params()
        assert get_tags(est).own_inference, f"{cls.__name__}: option '{choice}' is not its own"
    make(cls).set_params(**tags.without_own_inference)._validate_params()


def check_fit_returns_self_and_fitted_attributes(cls) -> None:
    est = prepared(cls)
    before = set(vars(est))
    with pytest.raises(NotFittedError):
        if isinstance(est, CounterfactualEstimator):
            check_is_fitted(est)
        else:
            est.conf_int()
    if get_tags(est).own_inference:
        with pytest.raises(NotFittedError):
            est.effect_inference(panel_data(0)[3])
    assert est.fit(*fit_args(est)) is est, f"{cls.__name__}.fit does not return self"
    learnt = set(vars(est)) - before
    assert learnt, f"{cls.__name__}.fit learnt nothing"
    bad = sorted(a for a in learnt if not a.endswith("_"))
    assert not bad, f"{cls.__name__}: fitted attributes without a trailing underscore: {bad}"
    # Parameters are left as the user gave them.
    assert prepared(cls).get_params().keys() == est.get_params().keys()
    tags = get_tags(est)
    if tags.donor_weights:
        assert est.weights_.shape == (fit_args(est)[1].shape[1],)


def check_shapes(cls) -> None:
    est = prepared(cls)
    args = fit_args(est)
    est.fit(*args)
    if isinstance(est, CounterfactualEstimator):
        Y0, X0, X1 = args
        assert est.counterfactual_pre_.shape == (X0.shape[0],)
        assert est.counterfactual_post_.shape == (X1.shape[0],)
        assert est.n_treated_ == Y0.shape[1] and est.n_controls_ == X0.shape[1]
        if get_tags(est).own_inference:
            Y1 = panel_data(0)[3]
            inf = est.effect_inference(Y1, confidence=0.9)
            assert inf.counterfactual_lo.shape == inf.counterfactual_hi.shape == (X1.shape[0],)
            lo, hi = inf.effect_ci
            assert lo <= inf.effect <= hi and 0 < inf.p_value <= 1
            wider = est.effect_inference(Y1, confidence=0.99).effect_ci
            assert wider[0] <= lo and hi <= wider[1]
    else:
        lo, hi = est.conf_int()
        assert lo <= est.estimate_ <= hi
        assert est.conf_int() == est.conf_int(est.confidence)
        assert 0 <= est.p_value() <= 1


def check_determinism(cls) -> None:
    a = prepared(cls, seed=3) if "seed" in cls._param_names() else prepared(cls)
    b = clone(a)
    args = fit_args(a)
    np.testing.assert_array_equal(fitted_output(a.fit(*args)), fitted_output(b.fit(*args)))


def check_scale_invariance(cls) -> None:
    """Outcomes times 1,000: outputs times 1,000 (p-values unchanged); the units do not matter."""
    c = 1000.0
    a, b = prepared(cls), prepared(cls, scale=c)
    a.fit(*fit_args(a))
    b.fit(*fit_args(b, scale=c))
    np.testing.assert_allclose(fitted_output(b), c * fitted_output(a), rtol=1e-6, atol=1e-6 * c)
    if isinstance(a, CounterfactualEstimator) and get_tags(a).own_inference:
        ia = a.effect_inference(panel_data(0)[3])
        ib = b.effect_inference(panel_data(0, c)[3])
        assert ib.p_value == pytest.approx(ia.p_value, rel=1e-6, abs=1e-9)
        np.testing.assert_allclose(ib.effect_ci, np.multiply(ia.effect_ci, c), rtol=1e-6)


def check_bad_input(cls) -> None:
    est = prepared(cls)
    args = [np.array(a, float, copy=True) for a in fit_args(est)]
    args[0].flat[0] = np.nan
    with pytest.raises(DataError, match=cls.__name__):
        prepared(cls).fit(*args)
    # Inputs that disagree in length: a DataError, never a silent truncation or broadcast.
    mismatched = list(fit_args(est))
    mismatched[0] = mismatched[0][:-1]
    with pytest.raises(DataError):
        prepared(cls).fit(*mismatched)
    # Every constrained parameter rejects a wrong value with a ConfigError naming it, at fit.
    for name in cls._parameter_constraints:
        bad = prepared(cls).set_params(**{name: "not-a-valid-value"})
        with pytest.raises(ConfigError, match=f"parameter '{name}'"):
            bad.fit(*fit_args(est))


CHECKS = [
    check_construction,
    check_tags,
    check_fit_returns_self_and_fitted_attributes,
    check_shapes,
    check_determinism,
    check_scale_invariance,
    check_bad_input,
]


def test_every_estimator_module_is_enumerated():
    names = {c.__name__ for c in ESTIMATORS}
    assert {
        "SyntheticControl",
        "ClassicSyntheticControl",
        "AugmentedSyntheticControl",
        "PredictorSyntheticControl",
        "SyntheticDiD",
        "TimeBasedRegression",
        "DifferenceInDifferences",
        "BayesianStructuralTimeSeries",
        "GeoBasedRegression",
        "TrimmedMatch",
    } <= names


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_contract(cls, check):
    check(cls)


class _Broken(CounterfactualEstimator):
    """Breaks the contract: computes in __init__, keeps fitted state without '_', returns None."""

    min_pre_periods = 1

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.cache = {}

    def fit(self, Y, X0, X1=None):
        self.weights = np.ones(X0.shape[1]) / X0.shape[1]
        self.counterfactual_pre_ = X0 @ self.weights
        self.counterfactual_post_ = X1 @ self.weights


@pytest.mark.parametrize(
    "check",
    [check_construction, check_fit_returns_self_and_fitted_attributes, check_bad_input],
    ids=lambda f: f.__name__,
)
def test_the_checks_can_fail(check):
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check(_Broken)
