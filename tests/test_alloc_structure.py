"""Structure of the allocation package: one guardrail window, one curve core (import cycles: test_house_style)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_guardrail_window_and_curve_formulas_are_defined_once():
    src = {p.name: p.read_text() for p in (ROOT / "allocation").glob("*.py")}
    assert [n for n, s in src.items() if "WINDOW = " in s] == ["constraints.py"]
    # The Hill formula x^s / (K^s + x^s) is written out only in the curve core.
    for name, s in src.items():
        assert "(1.0 + u)" not in s and "hill(" not in s.replace("def hill(", ""), name


def test_each_name_is_imported_from_its_own_module():
    # The daily planner's neighbours live in modules of their own; nothing re-exports them.
    from allocation import daily_plan

    for name in ("Launch", "LaunchCalendar", "check_previous_plan", "TimePlan", "WINDOW"):
        assert name not in getattr(daily_plan, "__all__", ()), name
