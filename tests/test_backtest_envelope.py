"""The daily re-plan on an S-shaped curve whose guardrail box lies in its convex part (issue 14)."""

from types import SimpleNamespace

import numpy as np

from allocation.backtest_setting import _envelope_below_tangent, plan_lines
from causal import response as R

S_CURVE = {"form": "hill", "beta": 1_000.0, "half_saturation": 50_000.0, "shape": 2.0}
CONCAVE = {"form": "hill", "beta": 100.0, "half_saturation": 10_000.0, "shape": 1.0}


def test_envelope_below_the_tangent_is_the_best_average_return():
    xs = np.linspace(1.0, 300_000.0, 30_001)
    best = (R.value("hill", xs, S_CURVE) / xs).max()
    line = _envelope_below_tangent(dict(S_CURVE), 5_000.0)
    assert line["form"] == "linear"
    assert abs(line["beta"] - best) < 1e-6 * best
    # At or past the tangent point (here the half-saturation) and for concave curves: unchanged.
    assert _envelope_below_tangent(dict(S_CURVE), 60_000.0) == S_CURVE
    assert _envelope_below_tangent(dict(CONCAVE), 5_000.0) == CONCAVE


def test_daily_box_in_the_convex_part_climbs_instead_of_draining():
    # Line 0 pays 0.01 a unit on average up to its tangent point but almost nothing at the margin
    # of its box; line 1 pays about 0.003 at the margin. The static optimum raises line 0.
    setting = SimpleNamespace(
        lines=[("brand_search", "NA"), ("social", "NA")], status_quo=np.array([2_000.0, 8_000.0])
    )
    curves = {
        "channels": [
            {"name": "brand_search", "market": "NA", "response": S_CURVE},
            {"name": "social", "market": "NA", "response": CONCAVE},
        ]
    }
    lo, hi = np.array([1_500.0, 7_500.0]), np.array([2_500.0, 8_500.0])
    climb = plan_lines(setting, curves, 10_000.0, lo, hi)
    drain = plan_lines(setting, curves, 10_000.0, lo, hi, envelope_below_tangent=False)
    assert np.isclose(climb.sum(), 10_000.0) and np.isclose(drain.sum(), 10_000.0)
    assert climb[0] > 2_499.0  # toward the static optimum
    assert drain[0] < 1_501.0  # the myopic plan on the exact curve cuts it
