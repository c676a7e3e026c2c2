"""The README's five-minute tour, its allocation part run as written: simulate -> read out -> calibrate ->
allocate (static, then daily per market with a launch calendar) -> replan, with no flag beyond the tour's.

The budget defaults to the current spend; ``TOUR`` is the command list the README's tour shows.
"""

from __future__ import annotations

import json
import shlex

TOUR = [
    "simulate --out w --seed 1",
    "readout --data w/panel.csv --treated NA01,EM02 --start 2025-10-01 --end 2025-10-28 --channel ctv "
    "--out readout.json --report readout.html",
    "calibrate --data w/panel.csv --lift readout.json --out curves.json --report curves.html",
    "allocate --curves curves.json --max-change 0.15 --out plan.json --report plan.html",
    "allocate --curves curves.json --max-change 0.15 --days 28 --launch-calendar launches.json "
    "--out plan28.json --report plan28.html",
    "replan --plan plan28.json --curves curves.json --out replan.json",
]
LAUNCHES = {"launches": [{"day": 10, "market": "NA", "strength": 0.5}]}


def test_readme_tour_runs_as_written(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIFTLAB_DB", str(tmp_path / "liftlab.db"))
    (tmp_path / "launches.json").write_text(json.dumps(LAUNCHES))
    for command in TOUR:
        code, out, err = run_cli(*shlex.split(command))
        assert code == 0, f"liftlab {command}: {err}"
    static = json.loads((tmp_path / "plan.json").read_text())
    current = sum(line["current_spend"] for line in static["lines"])
    assert static["status"] == "optimal" and static["budget"] == current
    daily = json.loads((tmp_path / "plan28.json").read_text())
    curves = json.loads((tmp_path / "curves.json").read_text())
    assert any(
        c["response"]["form"] == "hill" and c["response"].get("shape", 1) > 1
        for c in curves["channels"]
    )
    assert (
        daily["certificate"]["kind"] in ("concave_in_band", "concave_envelope")
        and daily["gap"] <= 1e-3
    )
    assert len({line["market"] for line in daily["lines"]}) == 4
    assert json.loads((tmp_path / "replan.json").read_text())["days"] == 27
