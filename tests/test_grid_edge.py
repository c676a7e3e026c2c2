"""A channel whose shape posterior piles on the edge of the structural model's grid is flagged (issue 14).

Session 10's diagnosis (docs/backtest.md): programmatic took the grid's largest half-saturation in 73-95%
of the draws on three worlds of four while its true curve is bent, and that curve alone held the daily
loop 8-18 points below the 80% goal. curves.json's identification says so, and the calibration and plan
reports warn; a malformed entry in a curves file is refused at load.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from allocation.cli.report import grid_edge_warning
from allocation.curves import CurveSet
from allocation.structural_inputs import Shape
from allocation.structural_result import GRID_EDGE_SHARE, grid_edges
from causal.errors import DataError
from tests.test_cli_calibrated_chain import CURVES

MULTIPLES = (0.5, 1.0, 2.0, 4.0)


def _grid(ref: float) -> list[Shape]:
    # the structural model's order: decays, then half-saturations, then Hill exponents
    return [Shape(d, ref * m, n) for d in (0.1, 0.5) for m in MULTIPLES for n in (1.0, 1.5)]


def test_draws_piled_on_either_end_of_the_grid_are_flagged():
    grid = {"flat": _grid(100.0), "bent": _grid(7.0), "spread": _grid(3.0)}
    index = {
        m: [j for j, sh in enumerate(_grid(1.0)) if sh.half_saturation == m] for m in MULTIPLES
    }
    n = 40
    flat = np.r_[np.repeat(index[4.0][0], 30), np.repeat(index[1.0][0], 10)]  # 75% at the largest
    bent = np.r_[np.repeat(index[0.5][1], 20), np.repeat(index[2.0][0], 20)]  # 50% at the smallest
    spread = np.r_[[index[m][0] for m in MULTIPLES] * (n // 4)]  # 25% at each
    combos = np.column_stack([flat, bent, spread])
    edges = grid_edges(grid, MULTIPLES, combos, ["flat", "bent", "spread"])
    assert edges["flat"] == {"edge": "largest", "multiple": 4.0, "share": 0.75}
    assert edges["bent"] == {"edge": "smallest", "multiple": 0.5, "share": GRID_EDGE_SHARE}
    assert edges["spread"] is None
    # a one-point grid has no edge
    one = {"c": [Shape(0.1, 5.0, 1.0)]}
    assert grid_edges(one, (1.0,), np.zeros((4, 1), dtype=int), ["c"]) == {"c": None}


def test_the_reports_warn_and_name_the_channel():
    ident = {
        "programmatic": {
            "half_saturation_at_grid_edge": {"edge": "largest", "multiple": 4.0, "share": 0.87}
        },
        "ctv": {"half_saturation_at_grid_edge": None},
        "social": {},  # a curves file written before the key existed
    }
    text = grid_edge_warning(ident)
    assert text.startswith("The curvature of programmatic (87% of draws) sits at the edge")
    assert "ctv" not in text and "social" not in text
    assert grid_edge_warning({"ctv": {"half_saturation_at_grid_edge": None}}) is None


@pytest.mark.parametrize(
    ("identification", "where"),
    [
        ([], "key 'identification' must be an object"),
        ({"ctv": "x"}, "identification.ctv must be an object"),
        ({"ctv": {"lifts": "a"}}, "identification.ctv.lifts must be a list"),
        (
            {"ctv": {"half_saturation_at_grid_edge": {"share": "most"}}},
            "half_saturation_at_grid_edge",
        ),
        ({"ctv": {"half_saturation_at_grid_edge": {"share": 1.5}}}, "share in [0, 1]"),
    ],
)
def test_a_malformed_identification_is_refused_at_load(identification, where):
    with pytest.raises(DataError, match=r"^curves.json: ") as err:
        CurveSet.from_dict({**CURVES, "identification": identification}, source="curves.json")
    assert where in str(err.value)


def _allocate(run_cli, tmp_path, identification, *options: str):
    curves = tmp_path / "curves.json"
    curves.write_text(json.dumps({**CURVES, "identification": identification}))
    return run_cli("allocate", "--curves", str(curves), "--out", str(tmp_path / "p.json"), *options)


def test_allocate_refuses_it_in_one_line_and_warns_on_a_valid_one(tmp_path, run_cli):
    code, out, err = _allocate(run_cli, tmp_path, {"ctv": []})
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "curves.json" in err and "identification.ctv" in err, err
    assert not (tmp_path / "p.json").exists()
    name = CURVES["channels"][0]["name"]
    edge = {"edge": "largest", "multiple": 4.0, "share": 0.9}
    html = tmp_path / "p.html"
    db = tmp_path / "a.db"
    ident = {name: {"half_saturation_at_grid_edge": edge}}
    code, _, err = _allocate(run_cli, tmp_path, ident, "--report", str(html), "--audit-db", str(db))
    assert code == 0, err
    assert f"The curvature of {name} (90% of draws) sits at the edge" in html.read_text()
