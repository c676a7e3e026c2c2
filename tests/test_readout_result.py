"""The result protocol of lift readouts: summary(), to_dict(), plot(ax=None), conf_int(confidence)."""

from __future__ import annotations

import inspect
import json
import re

import matplotlib.pyplot as plt
import pytest

from causal.errors import ConfigError
from causal.panel import load_panel
from causal.summary import Summary
from experiments.readout import read_out, read_out_cells
from experiments.readout_result import MultiCellReadout, Readout
from tests.conftest import reference_file

TEST = ("2021-04-01", "2021-04-15")


@pytest.fixture(scope="module")
def geolift():
    return load_panel(reference_file("geolift", "GeoLift_Test.csv"), y="Y", geo_col="location")


@pytest.fixture(scope="module")
def readout(geolift):
    return read_out(geolift, ["chicago", "portland"], TEST, placebos=False)


@pytest.fixture(scope="module")
def cells(geolift):
    return read_out_cells(
        geolift, {"a": ["chicago"], "b": ["portland"]}, TEST, placebos=False, confidence=0.8
    )


def test_summary_is_the_one_summary_type_with_readable_numbers(readout, cells):
    for result in (readout, cells):
        s = result.summary()
        assert isinstance(s, Summary) and s.tables
        # No exponent anywhere (issue 18: "summary() prints 9.072e+04").
        assert not re.search(r"\d[eE][+-]\d", str(s)), str(s)
    s = readout.summary()
    assert "90,717" in str(s)  # the treated total, with a thousands separator
    assert s.tables["readout"].equals(readout.table)
    assert "<pre>" in s._repr_html_()


def test_to_dict_is_json_and_keeps_the_contract_keys(readout, cells):
    d = json.loads(json.dumps(readout.to_dict()))
    for key in ("incremental", "incremental_ci", "lift", "lift_ci", "p_value", "confidence"):
        assert key in d
    assert set(json.loads(json.dumps(cells.to_dict()))["cells"]) == {"a", "b"}


def test_conf_int_at_the_readout_level_only(readout, cells):
    ci = readout.conf_int()
    assert list(ci.columns) == ["lower 90%", "upper 90%"]
    assert readout.conf_int(confidence=0.9).equals(ci)
    assert tuple(ci.loc["incremental"]) == readout.incremental_ci
    with pytest.raises(ConfigError, match="confidence=0.8"):
        readout.conf_int(confidence=0.8)
    multi = cells.conf_int()
    assert list(multi.columns) == ["lower 80%", "upper 80%"]
    assert tuple(multi.loc[("b", "incremental")]) == cells.cells["b"].incremental_ci
    with pytest.raises(ConfigError):
        cells.conf_int(0.95)


def test_plot_draws_on_the_given_axes_and_never_shows(readout, cells, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plot() called plt.show()"))
    for result in (readout, cells):
        assert "show" not in inspect.signature(type(result).plot).parameters
        fig, ax = plt.subplots()
        got_fig, got_ax = result.plot(ax=ax)
        assert got_fig is fig and got_ax is ax and ax.has_data()
        plt.close(fig)
        fig, ax = result.plot()
        assert ax.figure is fig
        plt.close(fig)


def test_result_classes_offer_the_same_verbs():
    for cls in (Readout, MultiCellReadout):
        for verb in ("summary", "to_dict", "plot", "conf_int"):
            assert callable(getattr(cls, verb)), f"{cls.__name__} has no {verb}()"
