"""The calibrated chain through the command line: defaults, bad input, posterior draws, audit inputs, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

CURVES = {
    "outcome": "signups",
    "period": "day",
    "channels": [
        {
            "name": "nonbrand_search",
            "market": "NA",
            "response": {"form": "hill", "beta": 500, "half_saturation": 4000, "shape": 2.0},
            "adstock": {"form": "geometric", "decay": 0.2},
            "current_spend": 5000.0,
            "cluster": "NA",
            "effect": {"direct": 1.0, "mediated": 0.0, "total": 1.0},
            "identification": "backdoor",
        },
        {
            "name": "ctv",
            "market": "NA",
            "response": {"form": "exp", "beta": 300, "scale": 6000},
            "adstock": {"form": "geometric", "decay": 0.6},
            "current_spend": 4000.0,
        },
        {
            "name": "social",
            "market": "EU",
            "response": {"form": "log", "beta": 150, "scale": 3000},
            "adstock": {"form": "geometric", "decay": 0.3},
            "current_spend": 3000.0,
        },
        {
            "name": "nonbrand_search",
            "market": "EU",
            "response": {"form": "hill", "beta": 400, "half_saturation": 3000, "shape": 2.5},
            "adstock": {"form": "geometric", "decay": 0.2},
            "current_spend": 3500.0,
        },
    ],
}


def _with_draws(n: int = 40, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    d = json.loads(json.dumps(CURVES))
    d["draws"] = {"n": n, "seed": seed}
    d["aggregates"] = [
        {
            "name": "nonbrand_search",
            "market": "all",
            "response": {"form": "log", "beta": 1, "scale": 1},
        }
    ]
    common = rng.lognormal(0, 0.15, n)  # a shared factor: draws are coherent across lines
    for line in d["channels"]:
        line["response_draws"] = {
            "beta": (line["response"]["beta"] * common * rng.lognormal(0, 0.05, n)).tolist()
        }
        line["adstock_draws"] = {
            "decay": np.clip(line["adstock"]["decay"] + rng.normal(0, 0.02, n), 0, 0.95).tolist()
        }
    return d


@pytest.fixture
def files(tmp_path):
    curves = tmp_path / "curves.json"
    curves.write_text(json.dumps(CURVES))
    return tmp_path, curves, str(tmp_path / "audit.db")


def _run(run_cli, *args):
    return run_cli(*[str(a) for a in args])


def test_budget_defaults_to_current_spend_static_and_daily_then_replan(files, run_cli):
    tmp, curves, db = files
    code, out, err = _run(
        run_cli,
        "allocate",
        "--curves",
        curves,
        "--max-change",
        "0.15",
        "--out",
        tmp / "p.json",
        "--audit-db",
        db,
    )
    assert code == 0, err
    plan = json.loads((tmp / "p.json").read_text())
    assert plan["budget"] == pytest.approx(15500.0) and plan["total_spend"] == pytest.approx(
        15500.0, rel=1e-6
    )
    code, out, err = _run(
        run_cli,
        "allocate",
        "--curves",
        curves,
        "--days",
        "28",
        "--max-change",
        "0.15",
        "--out",
        tmp / "d.json",
        "--audit-db",
        db,
    )
    assert code == 0, err
    daily = json.loads((tmp / "d.json").read_text())
    assert daily["certificate"]["kind"] in ("concave_in_band", "concave_envelope")
    assert daily["gap"] <= 1e-3 and daily["horizon_spend"] <= 15500.0 * 28 * (1 + 1e-9)
    # pass-through of the structural model's keys
    line = next(
        ln for ln in daily["lines"] if ln["name"] == "nonbrand_search" and ln["market"] == "NA"
    )
    assert "daily_spend" in line
    code, out, err = _run(
        run_cli,
        "replan",
        "--plan",
        tmp / "d.json",
        "--curves",
        curves,
        "--out",
        tmp / "r.json",
        "--audit-db",
        db,
    )
    assert code == 0, err
    assert json.loads((tmp / "r.json").read_text())["days"] == 27


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--target", "nan", "--objective", "min_spend"], "--target must be a finite number"),
        (
            ["--value-per-signup", "nan", "--objective", "max_profit"],
            "--value-per-signup must be a finite number",
        ),
        (["--budget", "0", "--frontier", "5"], "--frontier needs a positive --budget"),
        (["--budget", "1e300"], "budget 1e+300 is beyond"),
        (
            ["--budget", "10000", "--max-change", "0.15"],
            "the smallest feasible budget is 13,175.00",
        ),
    ],
)
def test_bad_options_exit_2_naming_the_key(files, run_cli, extra, message):
    tmp, curves, db = files
    code, _, err = _run(
        run_cli, "allocate", "--curves", curves, *extra, "--out", tmp / "p.json", "--audit-db", db
    )
    assert code == 2 and err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert message in err and not (tmp / "p.json").exists()


def test_huge_curve_number_is_refused(tmp_path, run_cli):
    d = json.loads(json.dumps(CURVES))
    d["channels"][1]["response"]["beta"] = 1e308
    path = tmp_path / "c.json"
    path.write_text(json.dumps(d))
    code, _, err = _run(
        run_cli,
        "allocate",
        "--curves",
        path,
        "--out",
        tmp_path / "p.json",
        "--audit-db",
        tmp_path / "a.db",
    )
    assert code == 2 and "channels[1]" in err and "response.beta" in err


@pytest.mark.parametrize(
    "content,message",
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"lines": [1]}', "lines[0]: expected an object"),
        ('{"lines": [{"daily_spend": [1, 2]}]}', "lines[0]: key 'name'"),
        (
            '{"lines": [{"name": "ctv", "market": "NA", "daily_spend": [1, "x"]}]}',
            "key 'daily_spend[1]'",
        ),
        (
            '{"lines": [{"name": "ctv", "market": "NA", "daily_spend": [1, -2]}]}',
            "key 'daily_spend[1]'",
        ),
        (
            '{"lines": [{"name": "ctv", "market": "NA", "daily_spend": [1, NaN]}]}',
            "NaN is not a JSON number",  # refused by the strict JSON reader, with line and column
        ),
        (
            '{"lines": [{"name": "ctv", "market": "NA", "daily_spend": [1, 2]}, '
            '{"name": "social", "market": "EU", "daily_spend": [1]}]}',
            "lines[1]: key 'daily_spend' has 1 days",
        ),
    ],
)
def test_malformed_plan_files_for_replan_exit_2(files, run_cli, content, message):
    tmp, curves, db = files
    bad = tmp / "bad.json"
    bad.write_text(content)
    code, _, err = _run(
        run_cli,
        "replan",
        "--plan",
        bad,
        "--curves",
        curves,
        "--out",
        tmp / "r.json",
        "--audit-db",
        db,
    )
    assert code == 2 and err.strip().count("\n") == 0 and str(bad) in err and message in err, err


def test_launch_calendar_unknown_market_refused_and_calendar_in_inputs_hash(files, run_cli):
    tmp, curves, db = files
    cal = tmp / "cal.json"
    cal.write_text(json.dumps({"launches": [{"day": 5, "market": "US", "strength": 0.5}]}))
    code, _, err = _run(
        run_cli,
        "allocate",
        "--curves",
        curves,
        "--days",
        "14",
        "--launch-calendar",
        cal,
        "--out",
        tmp / "p.json",
        "--audit-db",
        db,
    )
    assert code == 2 and "'US'" in err and "launches[0]" in err and str(cal) in err
    hashes = []
    for k, market in enumerate(("NA", "EU")):
        cal.write_text(json.dumps({"launches": [{"day": 5, "market": market, "strength": 0.5}]}))
        code, _, err = _run(
            run_cli,
            "allocate",
            "--curves",
            curves,
            "--days",
            "14",
            "--launch-calendar",
            cal,
            "--out",
            tmp / f"p{k}.json",
            "--audit-db",
            db,
        )
        assert code == 0, err
        from allocation.audit import AuditLog

        rec = AuditLog(db).show(json.loads((tmp / f"p{k}.json").read_text())["audit_id"])
        hashes.append(rec["inputs_hash"])
    assert hashes[0] != hashes[1]


def test_plan_json_is_deterministic_apart_from_timing_and_audit_id(files, run_cli):
    tmp, curves, db = files
    outs = []
    for k in range(2):
        code, _, err = _run(
            run_cli,
            "allocate",
            "--curves",
            curves,
            "--days",
            "14",
            "--max-change",
            "0.15",
            "--out",
            tmp / f"p{k}.json",
            "--audit-db",
            db,
        )
        assert code == 0, err
        d = json.loads((tmp / f"p{k}.json").read_text())
        assert "solve_seconds" not in d and "solve_seconds" in d["timing"]
        outs.append({k: v for k, v in d.items() if k not in ("timing", "audit_id")})
    assert outs[0] == outs[1]


def test_posterior_draws_drive_samples_and_give_the_gain_an_interval(tmp_path, run_cli):
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(_with_draws()))
    code, out, err = _run(
        run_cli,
        "allocate",
        "--curves",
        path,
        "--max-change",
        "0.3",
        "--samples",
        "10",
        "--out",
        tmp_path / "p.json",
        "--audit-db",
        tmp_path / "a.db",
    )
    assert code == 0, err
    plan = json.loads((tmp_path / "p.json").read_text())
    u = plan["uncertainty"]
    assert (
        u["n_draws"] == 40 and u["gain_interval"][0] <= u["expected_gain"] <= u["gain_interval"][1]
    )
    assert (
        plan["robust"]["n_samples"] == 10 and "posterior draws" in plan["robust"]["sample_source"]
    )
    assert "posterior draws" in out
    # without draws, --samples says it falls back
    plain = tmp_path / "plain.json"
    plain.write_text(
        json.dumps(
            CURVES
            | {"channels": [c for c in CURVES["channels"] if c["response"]["form"] != "hill"]}
        )
    )
    code, out, err = _run(
        run_cli,
        "allocate",
        "--curves",
        plain,
        "--samples",
        "5",
        "--out",
        tmp_path / "q.json",
        "--audit-db",
        tmp_path / "a.db",
    )
    assert code == 0, err
    assert "no posterior draws" in out


@pytest.mark.parametrize(
    "patch,message",
    [
        (
            lambda d: d["channels"][0]["response_draws"].update(beta=[1.0, 2.0]),
            "must be a list of 40 numbers",
        ),
        (
            lambda d: d["channels"][1]["response_draws"]["beta"].__setitem__(3, "x"),
            "holds a non-number",
        ),
        (lambda d: d["channels"][2]["adstock_draws"]["decay"].__setitem__(0, 1.5), "draw 0 is 1.5"),
        (
            lambda d: d["channels"][0]["response_draws"].update(scale=[1.0] * 40),
            "not a parameter of form 'hill'",
        ),
        (lambda d: d.pop("draws"), "no top-level key 'draws'"),
    ],
)
def test_bad_draws_are_named(tmp_path, run_cli, patch, message):
    d = _with_draws()
    patch(d)
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(d).replace("NaN", "null"))
    code, _, err = _run(
        run_cli,
        "allocate",
        "--curves",
        path,
        "--out",
        tmp_path / "p.json",
        "--audit-db",
        tmp_path / "a.db",
    )
    assert code == 2 and message in err and err.strip().count("\n") == 0, err
