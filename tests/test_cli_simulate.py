import json

import pandas as pd


def test_simulate_writes_panel_and_truth(tmp_path, run_cli):
    out = tmp_path / "w"
    code, stdout, _ = run_cli(
        "simulate", "--out", str(out), "--geos", "8", "--days", "60", "--seed", "2"
    )
    assert code == 0
    assert "simulated 8 geos x 60 days" in stdout
    panel = pd.read_csv(out / "panel.csv")
    truth = json.loads((out / "truth.json").read_text())
    assert len(panel) == 480
    assert set(truth["contributions"]) == {
        "brand_search",
        "nonbrand_search",
        "social",
        "programmatic",
        "ctv",
    }
    assert truth["seed"] == 2 and truth["total_signups"] == panel["signups"].sum()
    # The market clusters are written as a mapping file that calibrate --clusters reads.
    clusters = pd.read_csv(out / "clusters.csv")
    assert list(clusters.columns) == ["geo", "cluster"] and sorted(clusters["geo"]) == sorted(
        panel["geo"].unique()
    )


def test_simulate_is_byte_identical_for_one_seed(tmp_path, run_cli):
    for name in ("a", "b"):
        assert (
            run_cli(
                "simulate",
                "--out",
                str(tmp_path / name),
                "--geos",
                "6",
                "--days",
                "40",
                "--seed",
                "9",
            )[0]
            == 0
        )
    for f in ("panel.csv", "clusters.csv", "truth.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_simulate_with_experiment_records_truth(tmp_path, run_cli):
    code, stdout, _ = run_cli(
        "simulate",
        "--out",
        str(tmp_path),
        "--geos",
        "8",
        "--days",
        "90",
        "--experiment",
        "ctv:go_dark:NA01,EM01:2024-02-01:2024-02-28",
    )
    assert code == 0
    exp = json.loads((tmp_path / "truth.json").read_text())["experiments"][0]
    assert exp["channel"] == "ctv" and exp["geos"] == ["NA01", "EM01"]
    assert exp["true_incremental"] < 0
    panel = pd.read_csv(tmp_path / "panel.csv")
    dark = panel[
        (panel.geo == "NA01") & (panel.date >= "2024-02-01") & (panel.date <= "2024-02-28")
    ]
    assert (dark["spend_ctv"] == 0).all()


def test_simulate_bad_experiment_exits_2_without_output(tmp_path, run_cli):
    code, _, err = run_cli(
        "simulate",
        "--out",
        str(tmp_path / "x"),
        "--geos",
        "8",
        "--days",
        "60",
        "--experiment",
        "ctv:go_dark:NOPE:2024-01-10:2024-01-20",
    )
    assert code == 2
    assert err.startswith("error: ") and "'NOPE'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "panel.csv").exists()


def test_parquet_output(tmp_path, run_cli):
    assert (
        run_cli(
            "simulate", "--out", str(tmp_path), "--geos", "4", "--days", "30", "--format", "parquet"
        )[0]
        == 0
    )
    assert len(pd.read_parquet(tmp_path / "panel.parquet")) == 120


def test_usage_error_is_exit_2(run_cli):
    code, _, err = run_cli("simulate")
    assert code == 2 and err.startswith("error: ") and "--out" in err
