"""The registry's records follow the result protocol: Summary, to_dict, plot(ax=None) that never shows."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
from click.testing import CliRunner

import experiments.registry as registry_pkg
from causal.errors import ConfigError, DataError
from causal.summary import Summary
from experiments.registry import (
    ReadoutRecord,
    RegisteredExperiment,
    Registry,
    plot_readouts,
)


@pytest.fixture
def reg(tmp_path):
    with Registry(tmp_path / "reg.db") as r:
        yield r


@pytest.fixture
def no_show(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("plt.show() called by library code")

    monkeypatch.setattr(plt, "show", refuse)


def _readout(**over):
    d = {
        "outcome": "signups",
        "estimator": "sc",
        "confidence": 0.9,
        "treated": ["NA01", "NA02"],
        "control": ["EM01", "EM02"],
        "test_period": ["2025-10-01", "2025-10-28"],
        "incremental": -90720.4,
        "incremental_ci": [-123456.7, -51234.5],
        "lift": -0.0371,
        "channel": "ctv",
    }
    d.update(over)
    return d


def _read_out_test(reg: Registry) -> RegisteredExperiment:
    reg.add("ctv_q4", cells=["NA01", "NA02"], start="2025-10-01", end="2025-10-28", channel="ctv")
    reg.start("ctv_q4")
    reg.record_readout("ctv_q4", _readout())
    reg.record_readout("ctv_q4", _readout(estimator="tbr"))
    return reg.get("ctv_q4")


def test_experiment_summary_is_a_summary_with_readable_numbers(reg):
    exp = _read_out_test(reg)
    s = exp.summary()
    assert isinstance(s, Summary)
    text = str(s)
    # Readable numbers: thousands separators, never an exponent.
    assert "-90,720 [-123,457, -51,234]" in text and "e+0" not in text
    assert "confidence 0.9" in text and "lift -3.7%" in text
    assert "EXPLORATORY" in s and "deviation: estimator tbr instead of sc" in text
    table = s.tables["readouts"]
    assert list(table["label"]) == ["pre-registered", "EXPLORATORY"]
    assert table["incremental"].iloc[0] == pytest.approx(-90720.4)
    assert "<pre>" in s._repr_html_()
    # to_dict is plain JSON.
    assert json.loads(json.dumps(exp.to_dict()))["readouts"][1]["exploratory"] is True


def test_readout_record_summary_and_plot(reg, no_show):
    exp = _read_out_test(reg)
    first, second = exp.readouts
    assert isinstance(first, ReadoutRecord)
    assert str(first.summary()).startswith("ctv_q4 readout #")
    assert "deviation" not in str(first.summary()) and "deviation" in str(second.summary())
    fig, ax = first.plot()
    assert ax.figure is fig and len(ax.lines) >= 1
    plt.close(fig)
    fig, ax = plt.subplots()
    fig2, ax2 = plot_readouts(exp.readouts, ax=ax)
    assert (fig2, ax2) == (fig, ax)
    assert [t.get_text() for t in ax.get_yticklabels()][1].endswith("(EXPLORATORY)")
    plt.close(fig)
    with pytest.raises(DataError, match="no readouts"):
        plot_readouts([])


def test_experiment_plot_draws_on_the_axes_given(reg, no_show):
    reg.add("prog", cells={"A": ["EM01"], "B": ["EM02"]}, start="2025-12-01", end="2025-12-20")
    exp = reg.get("prog")
    fig, ax = plt.subplots()
    got = exp.plot(ax=ax)
    assert got == (fig, ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["EM01", "EM02"]
    assert list(exp.calendar().columns) == list(reg.calendar().columns)
    plt.close(fig)


def test_public_names_import_from_the_package():
    for name in ("Registry", "design_defaults", "calibration_lifts", "busy_geos", "plot_calendar"):
        assert hasattr(registry_pkg, name)


def test_no_default_database_in_the_library(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no database given"):
        Registry(None)
    with pytest.raises(ConfigError, match="no database given"):
        Registry("")
    assert not (tmp_path / "liftlab.db").exists()


def test_cli_states_its_default_database(tmp_path, monkeypatch):
    from allocation.cli.main import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIFTLAB_DB", raising=False)
    for group, flag in (("registry", "--db"), ("audit", "--audit-db")):
        out = " ".join(CliRunner().invoke(cli, [group, "list", "--help"]).output.split())
        assert flag in out and "default: $LIFTLAB_DB, else liftlab.db in the current folder" in out
    # The default applies: the environment's database is the one read.
    monkeypatch.setenv("LIFTLAB_DB", str(tmp_path / "env.db"))
    Registry(tmp_path / "env.db").add("t", cells=["G1"], start="2025-01-01", end="2025-01-10")
    res = CliRunner().invoke(cli, ["registry", "list"])
    assert res.exit_code == 0 and res.output.splitlines()[1].startswith("t ")
