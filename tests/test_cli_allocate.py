"""``liftlab allocate``, ``liftlab replan`` and ``liftlab audit`` through the command line."""

from __future__ import annotations

import json

import pytest

CURVES = {
    "outcome": "signups",
    "period": "day",
    "channels": [
        {
            "name": "nonbrand_search",
            "market": "US",
            "response": {"form": "log", "beta": 60, "scale": 800},
            "adstock": {"form": "geometric", "decay": 0.1},
            "current_spend": 900.0,
            "min_spend": 100.0,
            "max_spend": None,
        },
        {
            "name": "ctv",
            "market": "US",
            "response": {"form": "hill", "beta": 200, "half_saturation": 3000, "shape": 0.8},
            "adstock": {"form": "geometric", "decay": 0.6},
            "current_spend": 1500.0,
        },
        {
            "name": "social",
            "market": "UK",
            "response": {"form": "exp", "beta": 90, "scale": 1500},
            "adstock": {"form": "geometric", "decay": 0.3},
            "current_spend": 600.0,
        },
        {
            "name": "nonbrand_search",
            "market": "UK",
            "response": {"form": "power", "beta": 1.2, "exponent": 0.5},
            "current_spend": 400.0,
        },
    ],
}


@pytest.fixture
def files(tmp_path):
    curves = tmp_path / "curves.json"
    curves.write_text(json.dumps(CURVES))
    return tmp_path, curves, str(tmp_path / "audit.db")


def test_allocate_writes_plan_report_and_audit(files, run_cli):
    tmp, curves, db = files
    out, html = tmp / "plan.json", tmp / "plan.html"
    code, stdout, stderr = run_cli(
        "allocate",
        "--curves",
        str(curves),
        "--budget",
        "3400",
        "--out",
        str(out),
        "--report",
        str(html),
        "--audit-db",
        db,
    )
    assert code == 0, stderr
    plan = json.loads(out.read_text())
    for key in (
        "status",
        "objective",
        "budget",
        "lines",
        "total_spend",
        "total_incremental",
        "binding_constraints",
        "budget_dual",
        "solver",
        "gap",
        "audit_id",
    ):
        assert key in plan
    assert plan["status"] == "optimal" and plan["total_spend"] == pytest.approx(3400, rel=1e-7)
    text = html.read_text()
    assert "Binding constraints" in text and "marginal cost per incremental" in text
    code, stdout, _ = run_cli("audit", "list", "--audit-db", db)
    assert code == 0 and "allocate" in stdout
    code, stdout, _ = run_cli("audit", "show", str(plan["audit_id"]), "--audit-db", db)
    shown = json.loads(stdout)
    assert shown["solution"]["total_spend"] == pytest.approx(plan["total_spend"])
    assert shown["curves"]["channels"][0]["name"] == "nonbrand_search"


def test_hand_written_curves_and_objectives(tmp_path, run_cli):
    hand = tmp_path / "hand.json"
    hand.write_text(
        json.dumps(
            {
                "channels": [
                    {"name": "a", "response": {"form": "log", "beta": 50, "scale": 500}},
                    {
                        "name": "b",
                        "response": {"form": "exp", "beta": 80, "scale": 900},
                        "market": "X",
                    },
                ]
            }
        )
    )
    db = str(tmp_path / "a.db")
    code, _, err = run_cli(
        "allocate",
        "--curves",
        str(hand),
        "--objective",
        "min_spend",
        "--target",
        "60",
        "--out",
        str(tmp_path / "p.json"),
        "--audit-db",
        db,
    )
    assert code == 0, err
    plan = json.loads((tmp_path / "p.json").read_text())
    assert plan["total_incremental"] == pytest.approx(60, rel=1e-6)
    code, _, err = run_cli(
        "allocate",
        "--curves",
        str(hand),
        "--objective",
        "max_profit",
        "--budget",
        "10000",
        "--value-per-signup",
        "30",
        "--out",
        str(tmp_path / "q.json"),
        "--audit-db",
        db,
    )
    assert code == 0, err


@pytest.mark.parametrize(
    "extra, curves_patch, message",
    [
        (["--budget", "-5"], None, "budget must be >= 0"),
        (["--budget", "1000"], {"min_spend": 5000.0}, "floors sum to"),
        (
            ["--budget", "3000", "--max-change", "0.15"],
            {"current_spend": None},
            "has no current_spend",
        ),
        (
            ["--budget", "3000"],
            {"response": {"form": "quartic", "beta": 1}},
            "unknown response form",
        ),
        (["--objective", "min_spend"], None, "needs --target"),
        (
            ["--budget", "3000", "--launch-calendar", "x.json"],
            None,
            "--launch-calendar needs --days",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(files, run_cli, extra, curves_patch, message):
    tmp, curves, db = files
    if curves_patch:
        doc = json.loads(json.dumps(CURVES))
        doc["channels"][0].update(curves_patch)
        curves.write_text(json.dumps(doc))
    out = tmp / "plan.json"
    code, _, stderr = run_cli(
        "allocate", "--curves", str(curves), "--out", str(out), "--audit-db", db, *extra
    )
    assert code == 2
    assert (
        stderr.startswith("error:") and message in stderr and len(stderr.strip().splitlines()) == 1
    )
    assert not out.exists()


def test_constraints_file_conflict_is_named(files, run_cli):
    tmp, curves, db = files
    cons = tmp / "constraints.json"
    cons.write_text(
        json.dumps({"commitments": {"ctv/US": 2000}, "reserve": 500, "budget_mode": "eq"})
    )
    code, _, stderr = run_cli(
        "allocate",
        "--curves",
        str(curves),
        "--budget",
        "2500",
        "--constraints",
        str(cons),
        "--out",
        str(tmp / "p.json"),
        "--audit-db",
        db,
    )
    assert code == 2 and "commitments" in stderr and "reserve" in stderr
    cons.write_text(json.dumps({"bogus": 1}))
    code, _, stderr = run_cli(
        "allocate",
        "--curves",
        str(curves),
        "--budget",
        "2500",
        "--constraints",
        str(cons),
        "--out",
        str(tmp / "p.json"),
        "--audit-db",
        db,
    )
    assert code == 2 and "unknown key 'bogus'" in stderr


def test_infeasible_request_is_recorded_as_such(files, run_cli):
    tmp, curves, db = files
    doc = json.loads(json.dumps(CURVES))
    doc["channels"][0]["min_spend"] = 5000.0
    curves.write_text(json.dumps(doc))
    code, _, stderr = run_cli(
        "allocate",
        "--curves",
        str(curves),
        "--budget",
        "1000",
        "--out",
        str(tmp / "p.json"),
        "--audit-db",
        db,
    )
    assert code == 2 and "floors sum to" in stderr and not (tmp / "p.json").exists()
    code, out, _ = run_cli("audit", "list", "--audit-db", db)
    assert code == 0 and "infeasible" in out


def test_audit_show_unknown_id_exits_2(files, run_cli):
    _, _, db = files
    code, _, stderr = run_cli("audit", "show", "99", "--audit-db", db)
    assert code == 2 and "no record with id 99" in stderr


def test_daily_plan_replan_and_scenarios_through_the_cli(files, run_cli):
    tmp, curves, db = files
    cal = tmp / "launches.json"
    cal.write_text(json.dumps({"launches": [{"day": 10, "market": "US", "strength": 0.8}]}))
    p1, p2 = tmp / "p1.json", tmp / "p2.json"
    code, out, err = run_cli(
        "allocate",
        "--curves",
        str(curves),
        "--days",
        "21",
        "--max-change",
        "0.15",
        "--launch-calendar",
        str(cal),
        "--out",
        str(p1),
        "--report",
        str(tmp / "p1.html"),
        "--audit-db",
        db,
    )
    assert code == 0, err
    plan = json.loads(p1.read_text())
    assert plan["days"] == 21 and len(plan["lines"][0]["daily_spend"]) == 21
    assert plan["launch_calendar"]["launches"][0]["day"] == 10
    code, out, err = run_cli(
        "replan", "--plan", str(p1), "--curves", str(curves), "--out", str(p2), "--audit-db", db
    )
    assert code == 0, err
    again = json.loads(p2.read_text())
    assert again["days"] == 20 and again["max_change"] == 0.15
    assert again["launch_calendar"]["launches"][0]["day"] == 9
    assert again["previous_audit_id"] == plan["audit_id"]
    code, out, _ = run_cli("audit", "list", "--audit-db", db)
    assert "replan" in out and "allocate --days" in out
    code, out, err = run_cli(
        "allocate",
        "--curves",
        str(curves),
        "--budget",
        "3400",
        "--frontier",
        "5",
        "--samples",
        "12",
        "--risk",
        "cvar",
        "--out",
        str(tmp / "s.json"),
        "--report",
        str(tmp / "s.html"),
        "--audit-db",
        db,
    )
    assert code == 0, err
    s = json.loads((tmp / "s.json").read_text())
    assert len(s["frontier"]["points"]) == 5 and s["robust"]["n_samples"] == 12
    assert "Efficient frontier" in (tmp / "s.html").read_text()
    code, _, err = run_cli(
        "replan",
        "--plan",
        str(tmp / "s.json"),
        "--curves",
        str(curves),
        "--out",
        str(p2),
        "--audit-db",
        db,
    )
    assert code == 2 and "daily_spend" in err


def test_s_shaped_curves_report_method_and_gap(tmp_path, run_cli):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "channels": [
                    {
                        "name": "ctv",
                        "response": {
                            "form": "hill",
                            "beta": 400,
                            "half_saturation": 3000,
                            "shape": 3.0,
                        },
                    },
                    {"name": "search", "response": {"form": "log", "beta": 30, "scale": 500}},
                ]
            }
        )
    )
    code, out, err = run_cli(
        "allocate",
        "--curves",
        str(path),
        "--budget",
        "5000",
        "--out",
        str(tmp_path / "p.json"),
        "--audit-db",
        str(tmp_path / "a.db"),
    )
    assert code == 0, err
    plan = json.loads((tmp_path / "p.json").read_text())
    assert plan["method"] == "milp_piecewise_linear" and 0 <= plan["gap"] < 1e-3
    assert plan["s_shaped_lines"] == ["ctv"] and "HiGHS" not in out
