"""Structure of the allocation package: no import cycles, one guardrail window, one curve core."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Every allocation module a module imports, at top level or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("allocation")
        ):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("allocation")}
    return out


def test_allocation_modules_import_no_cycle():
    mods = {
        f"allocation.{p.stem}": p
        for p in (ROOT / "allocation").glob("*.py")
        if p.stem != "__init__"
    }
    graph = {m: {d for d in _imports(p) if d in mods and d != m} for m, p in mods.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                raise AssertionError(
                    "import cycle: " + " -> ".join(stack[stack.index(d) :] + [m, d])
                )
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


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
