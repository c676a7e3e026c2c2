"""The warnings panel of the readout and calibration reports says what a reader must know first (issue 18)."""

from __future__ import annotations

import pandas as pd
from conftest import reference_file

from allocation.cli.curves_report import structural_warnings
from allocation.cli.readout_report import readout_warnings, render_readout_report
from causal.panel import load_panel
from experiments.readout import read_out


def test_readout_warns_when_its_two_tests_disagree():
    panel = load_panel(reference_file("geolift", "GeoLift_Test.csv"), y="Y", geo_col="location")
    r = read_out(
        panel,
        ["chicago", "portland"],
        ("2021-04-01", "2021-04-15"),
        estimator="sc",
        inference="geolift",
    )
    warnings = readout_warnings(r)
    assert any("disagree" in w for w in warnings), warnings
    html = render_readout_report(r)
    assert html.index("Read before trusting") < html.index("total Y")


def test_calibration_warns_on_untested_channels_conflicts_and_implausible_credit():
    summary = pd.DataFrame(
        {"lifted": [True, False], "total": [50.0, 30.0]}, index=["ctv", "social"]
    )
    curves = {
        "conflicts": ["ctv lift 1 is 3.1 sd from the model"],
        "identification": {"ctv": {"demand_adjusted": True}, "social": {"demand_adjusted": False}},
    }
    w = structural_warnings(summary, curves, total_outcome=100.0, outcome="signups")
    assert any("No lift has tested social" in x for x in w)
    assert any("disagrees" in x for x in w)
    assert any("No demand adjustment for social" in x for x in w)
    assert any("80% of all signups" in x for x in w)
    assert (
        structural_warnings(
            summary.assign(lifted=True), {"conflicts": [], "identification": {}}, 1000.0, "signups"
        )
        == []
    )
