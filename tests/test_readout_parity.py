"""Published analyses reproduced through the readout: the synthdid paper's California table, Google's
Trimmed Match examples (the figures in docs/readout.md's parity table)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import reference_file

from causal.errors import ConfigError, DataError
from causal.panel import load_panel
from causal.trimmed_match import TrimmedMatch
from experiments.readout import read_out
from experiments.readout_geo import read_pairs

PROP99 = ("1989-01-01", "2000-01-01")


@pytest.fixture(scope="module")
def smoking():
    f = pd.read_csv(reference_file("synth", "smoking.csv"))
    return load_panel(f[["state", "date", "cigsale"]], y="cigsale", geo_col="state")


# Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021), AER, Table 1 (California, Proposition 99).
@pytest.mark.parametrize(
    "estimator, published", [("sdid", -15.6), ("sc-classic", -19.6), ("did", -27.3)]
)
def test_synthdid_paper_table(smoking, estimator, published):
    r = read_out(smoking, ["California"], PROP99, estimator=estimator, placebos=False)
    assert r.att == pytest.approx(published, abs=0.15)
    lo, hi = r.incremental_ci
    assert lo <= r.incremental <= hi


def test_trimmed_match_readme_example():
    # google/trimmed_match README: "iroas=1.60, ci=(1.52, 1.66)" at 80%.
    tm = TrimmedMatch().fit([1, 10, 3, 8, 5], [1, 5, 2, 5, 3])
    assert round(tm.estimate_, 2) == 1.60
    assert [round(x, 2) for x in tm.conf_int(0.8)] == [1.52, 1.66]


TM_WINDOW = ("--y", "response", "--geo-col", "geo", "--start", "2020-11-04", "--end", "2020-11-25")


def _tm_cli(run_cli, tmp_path, *args):
    """``liftlab readout`` on Google's Trimmed Match example (weekly), with ``args`` added."""
    data = str(reference_file("trimmed_match", "example_weekly.csv"))
    return run_cli("readout", "--data", data, *TM_WINDOW, *args, "--out", str(tmp_path / "r.json"))


def test_trimmed_match_example_data_readout(run_cli, tmp_path):
    """Google's post-analysis example through the CLI: the readout's iROAS is Trimmed Match's on the pairs."""
    pairs = reference_file("trimmed_match", "pairs.csv")
    code, _, err = _tm_cli(
        run_cli,
        tmp_path,
        "--pairs",
        str(pairs),
        "--estimator",
        "trimmed_match",
        "--channel",
        "search",
        "--confidence",
        "0.8",
    )
    assert code == 0, err
    d = json.loads((tmp_path / "r.json").read_text())
    f = pd.read_csv(reference_file("trimmed_match", "example_weekly.csv"))
    window = f[(f["date"] >= "2020-11-04") & (f["date"] <= "2020-11-25")]
    test = window.groupby("geo")[["response", "spend_search"]].sum()
    p = read_pairs(str(pairs))
    dR = [test.loc[t, "response"] - test.loc[c, "response"] for t, c in p]
    dS = [test.loc[t, "spend_search"] - test.loc[c, "spend_search"] for t, c in p]
    tm = TrimmedMatch().fit(dR, dS)
    assert d["incremental_per_spend"] == pytest.approx(tm.estimate_, rel=1e-9)
    assert d["spend_delta"] == pytest.approx(sum(dS))
    lo, hi = tm.conf_int(0.8)
    assert d["incremental_ci"] == pytest.approx([lo * sum(dS), hi * sum(dS)])
    assert d["estimator"] == "trimmed_match" and "Trimmed Match" in d["inference_method"]
    assert any("slightly below 0.85" in n for n in d["notes"])


def test_geo_level_errors(run_cli, tmp_path):
    bad = tmp_path / "pairs.csv"
    bad.write_text("treated,control\ng10,g103\ng10,g105\n")
    code, _, err = _tm_cli(run_cli, tmp_path, "--pairs", str(bad), "--estimator", "trimmed_match")
    assert code == 2 and "pairs must be disjoint" in err and len(err.strip().splitlines()) == 1
    code, _, err = _tm_cli(run_cli, tmp_path, "--treated", "g10", "--estimator", "trimmed_match")
    assert code == 2 and "--pairs" in err


def test_gbr_readout_with_and_without_channel():
    f = pd.read_csv(reference_file("trimmed_match", "example_weekly.csv"))
    panel = load_panel(f, y="response", geo_col="geo")
    pairs = read_pairs(str(reference_file("trimmed_match", "pairs.csv")))
    test = ("2020-11-04", "2020-11-25")
    r = read_out(panel, None, test, estimator="gbr", pairs=pairs, channel="search")
    lo, hi = r.incremental_ci
    assert lo <= r.incremental <= hi and r.incremental_per_spend == pytest.approx(
        r.incremental / r.spend_delta
    )
    assert (r.p_value < 0.1) == (lo > 0 or hi < 0)
    r0 = read_out(
        panel, [t for t, _ in pairs], test, estimator="gbr", control=[c for _, c in pairs]
    )
    assert r0.channel is None and "effect per treated geo" in r0.inference_method


# Abadie, Diamond & Hainmueller (2010), Table 2: California's synthetic control weights.
ABADIE_WEIGHTS = {
    "Colorado": 0.164,
    "Connecticut": 0.069,
    "Montana": 0.199,
    "Nevada": 0.234,
    "Utah": 0.334,
}
ABADIE_PREDICTORS = (
    "lnincome@1980:1988,retprice@1980:1988,age15to24@1980:1988,beer@1984:1988,"
    "cigsale@1975,cigsale@1980,cigsale@1988"
)


def test_abadie_prop99_predictor_weights(run_cli, tmp_path):
    out = tmp_path / "r.json"
    code, stdout, err = run_cli(
        "readout",
        "--data",
        str(reference_file("synth", "smoking.csv")),
        "--y",
        "cigsale",
        "--geo-col",
        "state",
        "--treated",
        "California",
        "--start",
        "1989-01-01",
        "--end",
        "2000-01-01",
        "--estimator",
        "sc-classic",
        "--predictors",
        ABADIE_PREDICTORS,
        "--out",
        str(out),
        "--no-placebos",
    )
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["estimator"] == "sc-predictors"
    w = {k: v for k, v in d["weights"].items() if v > 0.01}
    assert set(w) == set(ABADIE_WEIGHTS)
    for k, v in ABADIE_WEIGHTS.items():
        assert w[k] == pytest.approx(v, abs=0.006)
    # "by 2000 ... about 26 packs lower" (Abadie et al. 2010, p. 502)
    assert d["series"]["incremental"][-1] == pytest.approx(-26, abs=1.0)
    lo, hi = d["incremental_ci"]
    assert lo <= d["incremental"] <= hi


@pytest.mark.parametrize(
    "predictors, estimator, error, match",
    [
        (["nosuch"], "sc-classic", DataError, "no column 'nosuch'"),
        (
            ["beer@1975:1980"],
            "sc-classic",
            DataError,
            "missing for geo 'California' within 1975-01-01..1980-01-01",
        ),
        (["beer"], "sc", ConfigError, "use estimator 'sc-classic'"),
        (["lnincome@1995"], "sc-classic", DataError, "after the pre-period"),
    ],
)
def test_predictor_errors(predictors, estimator, error, match):
    panel = load_panel(
        pd.read_csv(reference_file("synth", "smoking.csv")), y="cigsale", geo_col="state"
    )
    with pytest.raises(error, match=match):
        read_out(
            panel,
            ["California"],
            PROP99,
            estimator=estimator,
            predictors=predictors,
            placebos=False,
        )
