"""Hostile inputs of ``liftlab allocate`` and ``liftlab replan``: each one exit 2 and one line naming the key.

Every case here was accepted (exit 0) before: a line dropped by a re-plan, a launch outside the
horizon, options that changed nothing, an unknown curves period, a plan whose ``days`` disagrees
with its daily spends, a negative effect draw.
"""

from __future__ import annotations

import copy
import json

import pytest
from test_cli_allocate import CURVES


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder holding curves.json (the hand-written curves of test_cli_allocate); the current folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIFTLAB_DB", raising=False)
    (tmp_path / "curves.json").write_text(json.dumps(CURVES))
    return tmp_path


def refused(result, *fragments: str) -> str:
    """Exit 2 with exactly one ``error:`` line holding every fragment; the line."""
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def allocate(run_cli, *args: str, out: str = "plan.json"):
    return run_cli("allocate", "--audit-db", "audit.db", "--out", out, *args)


@pytest.fixture
def daily_plan(work, run_cli):
    """A 14-day plan.json on the curves."""
    code, _, err = allocate(
        run_cli, "--curves", "curves.json", "--days", "14", "--max-change", "0.2"
    )
    assert code == 0, err
    return json.loads((work / "plan.json").read_text())


def replan(run_cli, plan: dict, curves: dict | None = None):
    with open("old.json", "w") as f:
        json.dump(plan, f)
    if curves is not None:
        with open("fresh.json", "w") as f:
            json.dump(curves, f)
    return run_cli(
        "replan",
        "--plan",
        "old.json",
        "--curves",
        "fresh.json" if curves is not None else "curves.json",
        "--out",
        "new.json",
        "--audit-db",
        "audit.db",
    )


def test_replan_refuses_curves_that_lack_a_line_of_the_plan(work, run_cli, daily_plan):
    code, _, err = replan(run_cli, daily_plan)
    assert code == 0, err
    (work / "new.json").unlink()
    fewer = copy.deepcopy(CURVES)
    dropped = fewer["channels"].pop(2)  # social/UK
    refused(replan(run_cli, daily_plan, fewer), "fresh.json", "social/UK", "old.json")
    assert dropped["name"] == "social" and not (work / "new.json").exists()


@pytest.mark.parametrize(
    "days, fragment",
    [
        (0, "key 'days' must be"),
        ("14", 'got "14"'),
        (True, "got true"),
        (13, "key 'days' is 13 but the lines' 'daily_spend' have 14 days"),
        (None, "no key 'days'"),
    ],
)
def test_replan_refuses_a_plan_whose_days_disagree_with_its_daily_spend(
    work, run_cli, daily_plan, days, fragment
):
    plan = copy.deepcopy(daily_plan)
    if days is None:
        del plan["days"]
    else:
        plan["days"] = days
    refused(replan(run_cli, plan), "old.json", "'days'", fragment)
    assert not (work / "new.json").exists()


@pytest.mark.parametrize(
    "launch, fragments",
    [
        ({"day": 40}, ["key 'day' 40 is outside the 14-day horizon"]),
        ({"day": -8}, ["key 'day' -8 is outside the 14-day horizon"]),
        ({"day": 25, "pre_days": 3}, ["key 'day' 25 is outside"]),
        ({"day": 10.5}, ["key 'day' must be a whole number", "10.5"]),
        ({"day": "10"}, ["key 'day' must be a whole number", '"10"']),
        ({"day": 10, "strength": "0.5"}, ["key 'strength' must be a finite number", '"0.5"']),
        ({"day": 10, "strength": True}, ["key 'strength'", "true"]),
        ({"day": 10, "post_days": 2.5}, ["key 'post_days' must be a whole number", "2.5"]),
        ({"day": 10, "pre_days": -1}, ["key 'pre_days' must be >= 0"]),
        ({"day": 10, "market": 7}, ["key 'market' must be a string or null"]),
    ],
)
def test_launch_calendar_entries_are_read_strictly(work, run_cli, launch, fragments):
    (work / "launches.json").write_text(json.dumps({"launches": [{"market": "US", **launch}]}))
    args = ("--curves", "curves.json", "--days", "14", "--launch-calendar", "launches.json")
    refused(allocate(run_cli, *args), "launches.json: launches[0]", *fragments)
    assert not (work / "plan.json").exists()


def test_launch_calendar_valid_edges_still_plan(work, run_cli):
    # Day 0, the last day, and a launch just after the horizon whose pre-launch days reach into it.
    launches = [{"day": 0, "market": "US"}, {"day": 13.0}, {"day": 18, "market": "UK"}]
    (work / "launches.json").write_text(json.dumps({"launches": launches, "conversion": None}))
    args = ("--curves", "curves.json", "--days", "14", "--launch-calendar", "launches.json")
    code, _, err = allocate(run_cli, *args)
    assert code == 0, err
    written = json.loads((work / "plan.json").read_text())["launch_calendar"]["launches"]
    assert [e["day"] for e in written] == [0, 13, 18]
    (work / "launches.json").write_text(json.dumps({"launches": launches, "awareness": "ctv"}))
    refused(allocate(run_cli, *args, out="p2.json"), "launches.json", "key 'awareness'", '"ctv"')


@pytest.mark.parametrize(
    "args, message",
    [
        (["--risk", "cvar"], "--risk needs --samples"),
        (["--alpha", "0.2"], "--alpha needs --samples"),
        (["--sample-cv", "0.3"], "--sample-cv needs --samples"),
        (["--samples", "4", "--alpha", "0.2"], "--alpha needs --risk cvar"),
        (
            ["--target", "100"],
            "--target needs --objective min_spend (the objective is max_incremental)",
        ),
        (
            ["--objective", "max_profit", "--value-per-signup", "5", "--target", "9"],
            "--target needs --objective min_spend (the objective is max_profit)",
        ),
        (["--value-per-signup", "5"], "--value-per-signup needs --objective max_profit"),
        (
            ["--objective", "min_spend", "--target", "100", "--value-per-signup", "5"],
            "--value-per-signup needs --objective max_profit (the objective is min_spend)",
        ),
        (
            ["--days", "7", "--objective", "min_spend", "--target", "100"],
            "--objective min_spend does not apply with --days",
        ),
        (["--days", "7", "--s-curves", "envelope"], "--s-curves does not apply with --days"),
    ],
)
def test_options_this_combination_would_ignore_are_refused(work, run_cli, args, message):
    refused(allocate(run_cli, "--curves", "curves.json", *args), message)
    assert not (work / "plan.json").exists()


def test_the_same_options_where_they_apply_still_plan(work, run_cli):
    for i, args in enumerate(
        [
            ["--samples", "4", "--risk", "cvar", "--alpha", "0.2", "--sample-cv", "0.3"],
            ["--objective", "min_spend", "--target", "100"],
            ["--objective", "max_profit", "--value-per-signup", "5"],
            ["--days", "7", "--risk", "expected", "--samples", "3"],
        ]
    ):
        code, _, err = allocate(run_cli, "--curves", "curves.json", *args, out=f"p{i}.json")
        assert code == 0, (args, err)


def curves_with(**top) -> dict:
    doc = copy.deepcopy(CURVES)
    doc.update(top)
    return doc


@pytest.mark.parametrize(
    "top, fragments",
    [
        ({"period": "fortnight"}, ["key 'period' is \"fortnight\"", "day, week, month, year"]),
        ({"period": None}, ["key 'period' must be a non-empty string", "null"]),
        ({"outcome": 3}, ["key 'outcome' must be a non-empty string"]),
    ],
)
def test_curves_period_and_outcome_are_checked(work, run_cli, top, fragments):
    (work / "bad.json").write_text(json.dumps(curves_with(**top)))
    refused(allocate(run_cli, "--curves", "bad.json"), "bad.json", *fragments)
    (work / "week.json").write_text(json.dumps(curves_with(period="week")))
    code, _, err = allocate(run_cli, "--curves", "week.json")
    assert code == 0, err


def test_a_negative_beta_draw_is_refused_like_a_negative_beta(work, run_cli):
    doc = curves_with(draws={"n": 6, "seed": 0})
    for line in doc["channels"]:
        params = {k: v for k, v in line["response"].items() if k != "form"}
        line["response_draws"] = {k: [float(v)] * 6 for k, v in params.items()}
    (work / "draws.json").write_text(json.dumps(doc))
    code, _, err = allocate(run_cli, "--curves", "draws.json", "--samples", "6")
    assert code == 0, err
    doc["channels"][1]["response_draws"]["beta"][5] = -3.0
    (work / "neg.json").write_text(json.dumps(doc))
    refused(
        allocate(run_cli, "--curves", "neg.json", out="p2.json"),
        "neg.json: channels[1] (ctv/US)",
        "key 'response_draws.beta[5]' is -3.0",
    )
    doc["channels"][1]["response_draws"]["beta"][5] = 200.0
    doc["channels"][1]["response"]["beta"] = -3.0
    (work / "neg.json").write_text(json.dumps(doc))
    refused(allocate(run_cli, "--curves", "neg.json", out="p2.json"), "key 'response.beta'")


def test_plan_budget_checks_the_calendar_from_python_too():
    from allocation.business_rules import Rules
    from allocation.curves import CurveSet
    from allocation.launches import LaunchCalendar
    from allocation.workflows.planning import plan_budget
    from causal.errors import DataError

    curves = CurveSet.from_dict(CURVES)
    late = LaunchCalendar.from_dict({"launches": [{"day": 30}]}, source="cal")
    with pytest.raises(DataError, match=r"cal: launches\[0\] key 'day' 30 is outside the 14-day"):
        plan_budget(curves, Rules(), days=14, calendar=late)
