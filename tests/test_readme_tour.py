"""The README's five-minute tour runs exactly as written, in order, each step on the files of the one before
(issue 14): simulate -> validate -> design -> read out -> calibrate -> allocate (static, then daily per market
with a launch calendar) -> replan -> propose-tests -> registry -> audit."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_lines() -> list[str]:
    """The lines of the bash block under the README's '## A five-minute tour' heading."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## A five-minute tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the tour has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_tour_runs_as_written(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIFTLAB_DB", raising=False)
    lines = tour_lines()
    assert len(lines) >= 10
    for line in lines:
        words = shlex.split(line)
        if words[0] == "echo":  # echo 'JSON' > file
            assert words[2] == ">" and len(words) == 4, line
            Path(words[3]).write_text(words[1])
            continue
        assert words[0] == "liftlab", line
        code, out, err = run_cli(*words[1:])
        assert code == 0, f"{line}\n{err}"
    static = json.loads(Path("plan.json").read_text())
    assert static["status"] == "optimal"
    assert static["budget"] == pytest.approx(
        sum(line["current_spend"] for line in static["lines"]), rel=1e-12
    )  # default: today's spend
    daily = json.loads(Path("plan28.json").read_text())
    assert (
        daily["certificate"]["kind"] in ("convex", "concave", "concave_in_band", "concave_envelope")
        and daily["gap"] <= 1e-3
    )
    assert len({line["market"] for line in daily["lines"]}) == 20  # one line per market and channel
    assert json.loads(Path("replan.json").read_text())["days"] == 27
    proposals = json.loads(Path("proposals.json").read_text())
    assert proposals["best"] == proposals["candidates"][0]
    for name in (
        "design.html",
        "readout.html",
        "curves.html",
        "plan.html",
        "plan28.html",
        "proposals.html",
    ):
        assert Path(name).stat().st_size > 1000, name
