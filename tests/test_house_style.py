"""House rules every library module keeps (issue 19): layering, no import cycle, size, no global state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("causal", "experiments", "allocation")
# What each package may import of ours; the CLI sits on top and nothing imports it.
ALLOWED = {
    "causal": {"causal"},
    "experiments": {"causal", "experiments"},
    "allocation": {"causal", "experiments", "allocation"},
}
MAX_LINES = 700


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {
    _module_name(p): p
    for package in PACKAGES
    for p in sorted((ROOT / package).rglob("*.py"))
    if "templates" not in p.parts
}


def _runtime_nodes(tree: ast.AST):
    """Every node that runs, skipping ``if TYPE_CHECKING:`` blocks (annotations only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _our_imports(path: Path) -> set[str]:
    """Every module of ours a module imports, at top level or inside a function."""
    out: set[str] = set()
    this = _module_name(path)
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = this.split(".")[
                    : len(this.split(".")) - node.level + (path.stem == "__init__")
                ]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] in PACKAGES:
                out.add(name)
                out |= {f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in MODULES}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] in PACKAGES}
    return out


def test_packages_import_only_the_layers_below():
    bad = []
    for name, path in MODULES.items():
        top = name.split(".")[0]
        for dep in _our_imports(path):
            if dep.split(".")[0] not in ALLOWED[top]:
                bad.append(f"{name} imports {dep}")
            if dep.startswith("allocation.cli") and not name.startswith("allocation.cli"):
                bad.append(f"{name} imports the CLI ({dep})")
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_modules():
    # A module's imports, reduced to modules (a package's __init__ counts as the package).
    graph = {m: {d for d in _our_imports(p) if d in MODULES and d != m} for m, p in MODULES.items()}
    # Importing a submodule runs its package's __init__ first; those edges are not cycles of ours.
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if m.startswith(d + "."):
                continue
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


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_library_module_over_700_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (most {MAX_LINES}): split it by job"


def _calls(tree: ast.AST, attr: str) -> list[int]:
    return [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == attr
    ]


def test_no_hidden_global_state_in_the_library():
    bad = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        # module-level statements only: what runs on import
        top = ast.Module(
            body=[
                s
                for s in tree.body
                if not isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            ],
            type_ignores=[],
        )
        for line in _calls(top, "use"):
            bad.append(f"{name}:{line} calls matplotlib.use at import")
        for line in _calls(tree, "show"):
            if "plt" in path.read_text().splitlines()[line - 1]:
                bad.append(
                    f"{name}:{line} calls plt.show(): plot() returns (fig, ax) and never shows"
                )
        for line in _calls(tree, "dup2"):
            # The command line's entry point owns the process's output; nothing else touches it.
            if name != "allocation.cli.main":
                bad.append(f"{name}:{line} redirects a file descriptor")
        for line in _calls(tree, "setLevel"):
            bad.append(f"{name}:{line} changes a logger's level for the whole process")
    assert not bad, "\n".join(bad)
