"""The CLI's workflows as library functions (issue 19) and what the plan report shows (issue 18)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from allocation.audit import AuditLog
from allocation.business_rules import Rules
from allocation.curves import CurveSet
from allocation.workflows import commit_plan, plan_budget
from tests.test_cli_calibrated_chain import CURVES, _with_draws


def test_plan_budget_from_python_and_its_audit_record(tmp_path):
    curves = CurveSet.from_dict(_with_draws(), source="draws.json")
    run = plan_budget(curves, Rules(max_change=0.3), frontier=4, log=None)
    u = run.uncertainty
    assert run.result["status"] == "optimal" and u["n_draws"] == 40
    assert u["gain_interval"][0] <= u["expected_gain"] <= u["gain_interval"][1]
    assert len(run.result["frontier"]["points"]) == 4
    log = AuditLog(str(tmp_path / "a.db"))
    written = []
    audit_id = commit_plan(run, log, written.append)
    assert written == [run.result] and run.result["audit_id"] == audit_id
    assert log.show(audit_id)["solution"]["total_spend"] == pytest.approx(run.result["total_spend"])
    # A failed write leaves no record.
    with pytest.raises(OSError):
        commit_plan(run, log, lambda _: (_ for _ in ()).throw(OSError("disk full")))
    assert log.count() == 1


def test_plan_report_shows_the_gain_interval_currency_and_period(tmp_path, run_cli):
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(_with_draws()))
    html = tmp_path / "p.html"
    code, _, err = run_cli(
        "allocate",
        "--curves",
        str(path),
        "--max-change",
        "0.3",
        "--out",
        str(tmp_path / "p.json"),
        "--report",
        str(html),
        "--currency",
        "EUR",
        "--audit-db",
        str(tmp_path / "a.db"),
    )
    assert code == 0, err
    u = json.loads((tmp_path / "p.json").read_text())["uncertainty"]
    text = html.read_text()
    lo, hi = u["gain_interval"]
    # The interval the report shows is the one plan.json holds (rendered, not recomputed).
    assert f"{u['expected_gain']:+,.1f} [{lo:+,.1f}, {hi:+,.1f}]" in text
    assert "amounts in EUR" in text and "EUR " in text
    assert "spend per day" in text and "per period" not in text.split("Notes")[0]
    assert "ROAS" not in text


def test_plan_report_warns_when_the_gain_has_no_interval(tmp_path, run_cli):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(CURVES))
    html = tmp_path / "p.html"
    code, _, err = run_cli(
        "allocate",
        "--curves",
        str(plain),
        "--out",
        str(tmp_path / "p.json"),
        "--report",
        str(html),
        "--audit-db",
        str(tmp_path / "a.db"),
    )
    assert code == 0, err
    text = html.read_text()
    assert "Read before trusting the numbers" in text
    assert "no posterior draws" in text


def test_no_matplotlib_backend_is_chosen_at_import():
    # A notebook that imports the reports keeps its own backend (issue 19: no hidden global state).
    code = (
        "import matplotlib; matplotlib.use('pdf'); "
        "import allocation.cli.report, allocation.cli.plan_report, allocation.cli.curves_report, "
        "allocation.cli.readout_report, allocation.workflows; "
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "pdf"


def test_cli_modules_hold_no_orchestration():
    # The commands this change made thin: each calls one workflow function of allocation.workflows.
    import inspect

    from allocation.cli.commands import allocate, calibrate, demo, replan

    for module, fn in (
        (allocate, "plan_budget("),
        (replan, "replan_budget("),
        (calibrate, "calibrate_curves("),
        (demo, "run_demo("),
    ):
        source = inspect.getsource(module.command.callback)
        assert source.count(fn) == 1, module.__name__
    assert "cli.main" not in inspect.getsource(demo)  # the demo no longer re-enters the CLI
