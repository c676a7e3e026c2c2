"""The curves.json data model: parsing, validation messages, evaluation and marginals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from allocation.curves import CurveSet
from causal.errors import DataError
from causal.transforms import response

FULL = {
    "outcome": "signups",
    "period": "day",
    "channels": [
        {
            "name": "social",
            "market": None,
            "response": {"form": "hill", "beta": 120.0, "half_saturation": 5000.0, "shape": 1.0},
            "adstock": {"form": "geometric", "decay": 0.4},
            "current_spend": 4000.0,
            "min_spend": 0.0,
            "max_spend": None,
            "contribution": {"uncalibrated": 15000.0, "calibrated": 9000.0},
        }
    ],
}


def test_full_and_hand_written_files_round_trip(tmp_path):
    cs = CurveSet.from_dict(FULL)
    assert cs.curves[0].decay == 0.4 and cs.curves[0].label == "social"
    again = CurveSet.from_dict(cs.to_dict())
    assert again.to_dict() == cs.to_dict()
    path = tmp_path / "hand.json"
    path.write_text(
        json.dumps(
            {"channels": [{"name": "tv", "response": {"form": "log", "beta": 5, "scale": 10}}]}
        )
    )
    hand = CurveSet.load(path)
    assert hand.curves[0].market is None and hand.curves[0].current_spend is None


@pytest.mark.parametrize(
    "resp",
    [
        {"form": "hill", "beta": 120.0, "half_saturation": 500.0, "shape": 0.6},
        {"form": "hill", "beta": 120.0, "half_saturation": 500.0, "shape": 2.5},
        {"form": "exp", "beta": 80.0, "scale": 700.0},
        {"form": "log", "beta": 30.0, "scale": 200.0},
        {"form": "power", "beta": 2.0, "exponent": 0.4},
        {"form": "linear", "beta": 0.03},
    ],
)
def test_evaluate_matches_transforms_and_marginal_is_the_derivative(resp):
    cs = CurveSet.from_dict({"channels": [{"name": "c", "response": resp}]})
    c = cs.curves[0]
    x = np.array([50.0, 400.0, 1500.0, 9000.0])
    params = {k: v for k, v in resp.items() if k != "form"}
    np.testing.assert_allclose(c.evaluate(x), response(resp["form"], x, params))
    h = 1e-3
    numeric = (c.evaluate(x + h) - c.evaluate(x - h)) / (2 * h)
    np.testing.assert_allclose(c.marginal(x), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "line, message",
    [
        (
            {"name": "tv", "response": {"form": "cubic", "beta": 1}},
            r"channels\[0\] \(tv\): unknown response form \"cubic\"",
        ),
        (
            {"name": "tv", "market": "US", "response": {"form": "exp", "beta": 1}},
            r"channels\[0\] \(tv/US\): .*'response.scale'",
        ),
        (
            {"name": "tv", "response": {"form": "log", "beta": "x", "scale": 1}},
            r"'response.beta' must be a number",
        ),
        (
            {"name": "tv", "response": {"form": "log", "beta": 1, "scale": -1}},
            r"'response.scale' must be > 0",
        ),
        (
            {"name": "tv", "response": {"form": "log", "beta": 1, "scale": 1}, "current_spend": -3},
            r"'current_spend' must be >= 0",
        ),
        (
            {
                "name": "tv",
                "response": {"form": "log", "beta": 1, "scale": 1},
                "min_spend": 5,
                "max_spend": 2,
            },
            r"min_spend 5 is above max_spend 2",
        ),
        ({"response": {"form": "log", "beta": 1, "scale": 1}}, r"key 'name'"),
        (
            {
                "name": "tv",
                "response": {"form": "log", "beta": 1, "scale": 1},
                "adstock": {"decay": 1.5},
            },
            r"'adstock.decay' must be in \[0, 1\)",
        ),
    ],
)
def test_bad_lines_name_the_line_and_key(line, message):
    with pytest.raises(DataError, match=message):
        CurveSet.from_dict({"channels": [line]}, source="curves.json")


def test_duplicates_and_empty_are_refused(tmp_path):
    line = {"name": "tv", "response": {"form": "log", "beta": 1, "scale": 1}}
    with pytest.raises(DataError, match="duplicates channels"):
        CurveSet.from_dict({"channels": [line, line]})
    with pytest.raises(DataError, match="non-empty list"):
        CurveSet.from_dict({"channels": []})
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(DataError, match="not valid JSON"):
        CurveSet.load(bad)
    with pytest.raises(DataError, match="not found"):
        CurveSet.load(tmp_path / "missing.json")
