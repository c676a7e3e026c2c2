"""The curve core (causal/response.py): derivatives, broadcasting, cvxpy forms, piecewise forms, scaling."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from causal import response as R

CASES = [
    ("hill", {"beta": 3.0, "half_saturation": 50.0, "shape": 2.5}),
    ("hill", {"beta": 3.0, "half_saturation": 50.0, "shape": 0.7}),
    ("hill", {"beta": 3.0, "half_saturation": 50.0}),
    ("exp", {"beta": 2.0, "scale": 30.0}),
    ("log", {"beta": 2.0, "scale": 30.0}),
    ("power", {"beta": 2.0, "exponent": 0.6}),
    ("power", {"beta": 2.0, "exponent": 1.4}),
    ("linear", {"beta": 2.0}),
]


@pytest.mark.parametrize(("form", "params"), CASES)
def test_derivatives_match_finite_differences(form, params):
    x = np.array([1.0, 10.0, 40.0, 80.0, 300.0])
    h = 1e-4 * x
    d1 = (R.value(form, x + h, params) - R.value(form, x - h, params)) / (2 * h)
    d2 = (R.derivative(form, x + h, params) - R.derivative(form, x - h, params)) / (2 * h)
    np.testing.assert_allclose(R.derivative(form, x, params), d1, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(R.second_derivative(form, x, params), d2, rtol=1e-4, atol=1e-10)
    # concave everywhere iff the second derivative is never positive
    assert bool(R.is_concave(form, params)) == bool(
        (R.second_derivative(form, x, params) <= 1e-15).all()
    )


def test_value_broadcasts_over_parameter_draws():
    draws = {
        "beta": np.array([1.0, 2.0, 3.0]),
        "half_saturation": np.array([10.0, 20.0, 30.0]),
        "shape": np.array([0.8, 1.0, 2.0]),
    }
    x = np.array([0.0, 5.0, 20.0, 60.0])[:, None]
    out = R.value("hill", x, draws)
    assert out.shape == (4, 3)
    for j in range(3):
        one = {k: v[j] for k, v in draws.items()}
        np.testing.assert_allclose(out[:, j], R.value("hill", x[:, 0], one))
        np.testing.assert_allclose(
            R.derivative("hill", x, draws)[1:, j], R.derivative("hill", x[1:, 0], one)
        )
    # the known Hill value at the half-saturation point
    assert R.value(
        "hill", 10.0, {"beta": 4.0, "half_saturation": 10.0, "shape": 3.0}
    ) == pytest.approx(2.0)


def test_inflection_of_s_shaped_hill_is_where_curvature_changes_sign():
    p = {"beta": 1.0, "half_saturation": 100.0, "shape": 3.0}
    xi = float(R.inflection("hill", p))
    assert R.second_derivative("hill", xi * 0.99, p) > 0 > R.second_derivative("hill", xi * 1.01, p)
    assert float(R.inflection("exp", {"beta": 1.0, "scale": 5.0})) == 0.0


@pytest.mark.parametrize(("form", "params"), [c for c in CASES if R.is_concave(*c)])
def test_cvxpy_form_is_dcp_and_equals_the_curve(form, params):
    key = R.structure(form, params)
    coef, scale = R.scaling(form, params, reference=40.0)
    z = cp.Variable(1, nonneg=True)
    expr = R.cvx_response(z, [key], np.atleast_1d(coef))
    assert expr.is_concave()
    for x in (5.0, 40.0, 120.0):
        z.value = np.array([x / float(scale)])
        assert float(expr.value) == pytest.approx(float(R.value(form, x, params)), rel=1e-9)


def test_cvxpy_form_refuses_s_shaped_curves():
    with pytest.raises(R.NotConcaveError):
        R.cvx_response(cp.Variable(1, nonneg=True), [("hill", 2.0)], np.ones(1))


def test_market_scaling_is_size_times_unit_curve():
    for form, params in CASES:
        size = 7.0
        scaled = R.to_market(form, params, size)
        x = np.array([3.0, 30.0, 300.0])
        np.testing.assert_allclose(
            R.value(form, x, scaled), size * R.value(form, x / size, params), rtol=1e-12
        )


def test_piecewise_errors_bound_the_interpolation_and_envelope_over_states():
    p = {"beta": 10.0, "half_saturation": 100.0, "shape": 3.0}
    pw = R.piecewise("hill", p, 0.0, 400.0, 20)
    fine = np.linspace(0, 400, 5001)
    gap = R.value("hill", fine, p) - np.interp(fine, pw.xs, pw.ys)
    assert gap.max() <= pw.under * 1.05 + 1e-12 and -gap.min() <= pw.over * 1.05 + 1e-12
    env = R.piecewise("hill", p, 0.0, 400.0, 20, envelope=True)
    assert env.is_concave and not pw.is_concave
    assert (env.ys >= pw.ys - 1e-12).all() and env.under <= pw.under


def test_adstocks_are_normalised():
    x = np.full(60, 5.0)
    for block in (
        {"form": "geometric", "decay": 0.6},
        {"form": "weibull", "shape": 2.0, "scale": 3.0, "max_lag": 10},
    ):
        np.testing.assert_allclose(R.adstock(x, block), 5.0)
        assert R.adstock_weights(block).sum() == pytest.approx(1.0)
    # one decay per column broadcasts
    out = R.geometric_adstock(np.ones((5, 3)) * np.arange(5)[:, None], np.array([0.0, 0.5, 0.9]))
    np.testing.assert_allclose(out[:, 0], np.arange(5))
    carry = R.geometric_carry(np.arange(5.0)[None, :], np.array([0.5]), np.array([0.0]))
    np.testing.assert_allclose(carry[0], R.geometric_adstock(np.r_[0.0, np.arange(5.0)], 0.5)[1:])
