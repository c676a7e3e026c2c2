"""liftlab propose-tests on its own outputs: simulate -> calibrate -> propose -> register (issue 16)."""

from __future__ import annotations

import json

import pytest
from markupsafe import escape  # what the report templates use


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from click.testing import CliRunner

    from allocation.cli.main import cli

    d = tmp_path_factory.mktemp("propose")
    runner = CliRunner()
    for args in (
        ["simulate", "--out", str(d), "--geos", "12", "--days", "240", "--seed", "3"],
        ["calibrate", "--data", str(d / "panel.csv"), "--out", str(d / "curves.json")],
    ):
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, res.output
    return d


ARGS = ("--treated", "2..4", "--durations", "21", "--intensities", "go-dark")


def test_ranked_proposal_report_and_registration(world, run_cli):
    out, reg = world / "p.json", world / "registry.db"
    code, stdout, err = run_cli(
        "propose-tests",
        "--curves",
        str(world / "curves.json"),
        "--data",
        str(world / "panel.csv"),
        "--out",
        str(out),
        "--report",
        str(world / "p.html"),
        "--registry",
        str(reg),
        "--start",
        "2026-01-01",
        "--register",
        "next_test",
        "--currency",
        "EUR",
        "--replan-every",
        "7",
        *ARGS,
    )
    assert code == 0, err
    p = json.loads(out.read_text())
    assert any("every 7 days: over the horizon a band of" in n for n in p["notes"])
    nets = [c["net_value"] for c in p["candidates"]]
    assert nets == sorted(nets, reverse=True) and p["best"] == p["candidates"][0]
    assert all(
        c["cost"] >= 0 and c["lift_sd_after"] <= c["lift_sd_before"] + 1e-9 for c in p["candidates"]
    )
    assert {c["channel"] for c in p["candidates"]} == {
        "brand_search",
        "nonbrand_search",
        "social",
        "programmatic",
        "ctv",
    }
    assert p["registered"] == "next_test" and "registered 'next_test'" in stdout
    # A search picked its markets: the registry keeps the proposal as its design (selection check).
    from experiments.registry import Registry

    design = Registry(str(reg)).get("next_test").design
    assert design["source"] == "propose-tests" and design["treated"] == p["best"]["markets"]
    html = (world / "p.html").read_text()
    assert "Which test next" in html and "EUR" in html and "currency units" not in html
    assert all(escape(w) in html for w in p["warnings"])  # the verdict opens the report
    # The registered markets are busy now: the next proposal over the same window avoids them.
    code, _, err = run_cli(
        "propose-tests",
        "--curves",
        str(world / "curves.json"),
        "--data",
        str(world / "panel.csv"),
        "--out",
        str(world / "p2.json"),
        "--registry",
        str(reg),
        "--start",
        "2026-01-05",
        *ARGS,
    )
    assert code == 0, err
    again = json.loads((world / "p2.json").read_text())
    assert not set(p["best"]["markets"]) & {m for c in again["candidates"] for m in c["markets"]}


def test_what_blocks_a_test_is_named(world, run_cli, tmp_path):
    base = (
        "propose-tests",
        "--curves",
        str(world / "curves.json"),
        "--data",
        str(world / "panel.csv"),
        "--out",
        str(tmp_path / "x.json"),
    )
    code, _, err = run_cli(*base, "--treated", "11..12")
    assert code == 2 and "markets are free" in err and "Traceback" not in err
    code, _, err = run_cli(*base, "--channels", "radio", *ARGS)
    assert code == 2 and "channel 'radio'" in err
    curves = json.loads((world / "curves.json").read_text())
    for line in curves["channels"]:
        if line["name"] == "ctv":
            line["current_spend"] = 0.0
    (tmp_path / "c.json").write_text(json.dumps(curves))
    code, _, err = run_cli(
        "propose-tests",
        "--curves",
        str(tmp_path / "c.json"),
        "--data",
        str(world / "panel.csv"),
        "--out",
        str(tmp_path / "x.json"),
        "--channels",
        "ctv",
        *ARGS,
    )
    assert code == 2 and "has spend to cut or raise" in err
    for line in curves["channels"]:
        line.pop("response_draws", None)
    (tmp_path / "c.json").write_text(json.dumps(curves))
    code, _, err = run_cli(
        "propose-tests",
        "--curves",
        str(tmp_path / "c.json"),
        "--data",
        str(world / "panel.csv"),
        "--out",
        str(tmp_path / "x.json"),
        *ARGS,
    )
    assert code == 2 and "response_draws" in err
    assert not (tmp_path / "x.json").exists()


def test_a_calendar_with_no_room_names_the_window(world, run_cli, tmp_path):
    """Every market is free on the start date but booked before a 21-day test would end."""
    import pandas as pd

    geos = sorted(pd.read_csv(world / "panel.csv", usecols=["geo"])["geo"].unique())
    db = str(tmp_path / "reg.db")
    code, _, err = run_cli(
        "registry", "add", "later", "--db", db, "--treated", ",".join(geos),
        "--channel", "social", "--start", "2024-09-15", "--end", "2024-10-31",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(
        "propose-tests", "--curves", str(world / "curves.json"), "--data", str(world / "panel.csv"),
        "--out", str(tmp_path / "x.json"), "--registry", db, "--start", "2024-09-01", *ARGS,
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert "only 0 markets are free of the registry's tests from 2024-09-01 to 2024-09-21" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_a_weekly_guardrail_binds_one_step_not_the_year():
    from allocation.next_test import _horizon_band
    from causal.errors import ConfigError

    assert _horizon_band(0.15, 365, None) == 0.15  # one step of the guardrail for the whole horizon
    assert _horizon_band(0.15, 14, 7) == pytest.approx(1.15**2 - 1)  # two weekly re-plans
    # Over a year a line could move far, but the re-plans' stand-ins are trusted within 50% only.
    assert _horizon_band(0.15, 365, 7) == 0.5
    assert _horizon_band(None, 365, 7) is None
    with pytest.raises(ConfigError, match="replan_every"):
        _horizon_band(0.15, 365, -1)
