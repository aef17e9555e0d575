"""The layers import one way only, bottom to top (issue 10, DESIGN-BRIEF "Layers").

    vthreads → kmd → umd → runtime → scenarios → wddmemu

Every module of every layer is parsed (not imported) and each ``import`` it makes at module level
or inside a function is checked: a module may import its own package and the packages *below*
it, never one above. Imports under ``if TYPE_CHECKING:`` are exempt (they never run). On top of
the direction rule, the module-level import graph inside the project must have no cycle: a cycle
means a piece is in the wrong place, and no lazy import may hide it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("vthreads", "kmd", "umd", "runtime", "scenarios", "wddmemu")
RANK = {name: i for i, name in enumerate(LAYERS)}


def _modules() -> dict[str, Path]:
    out = {}
    for layer in LAYERS:
        for p in sorted((ROOT / layer).rglob("*.py")):
            rel = p.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = p
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(mod: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every runtime import of ``mod``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit(sub, top)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = pkg.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join([*base, child.module] if child.module else base)
                else:
                    target = child.module or ""
                found.append((target, child.lineno, top))
                # ``from pkg import submodule`` imports the submodule too
                for a in child.names:
                    found.append((f"{target}.{a.name}", child.lineno, top))
            inner = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            visit(child, inner)

    visit(tree, True)
    return found


def test_imports_never_run_back_up_the_layers() -> None:
    bad = []
    for mod, path in _modules().items():
        mine = RANK[mod.split(".")[0]]
        for target, line, _top in _imports(mod, path):
            top = target.split(".")[0]
            if top in RANK and RANK[top] > mine:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({top} is above)")
    assert not bad, "imports that run back up the layers:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every back edge of a depth-first walk, as the cycle it closes (sorted walk: stable)."""
    colour: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def dfs(n: str) -> None:
        colour[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if colour.get(m) == 1:
                cycles.append(" → ".join([*stack[stack.index(m):], m]))
            elif m not in colour:
                dfs(m)
        stack.pop()
        colour[n] = 2

    for n in sorted(graph):
        if n not in colour:
            dfs(n)
    return cycles


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a → b → c → a"]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_project_import_graph_has_no_cycle() -> None:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for target, _line, _top in _imports(mod, path):
            if target in mods and target != mod:
                graph[mod].add(target)
    # a package's __init__ importing its own submodules is the normal re-export, not a cycle
    # that matters: drop the edge submodule → its own package __init__ when the package's
    # __init__ imports it back
    for mod in list(graph):
        for target in list(graph[mod]):
            if mod.startswith(target + ".") and mod in graph.get(target, ()):
                graph[mod].discard(target)
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_hides_an_import_behind_a_module_getattr() -> None:
    """A module-level ``__getattr__`` may warn about a moved name, never import a module."""
    bad = []
    for mod, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            lazy = isinstance(node, ast.FunctionDef) and node.name == "__getattr__" and any(
                isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(node)
            )
            if lazy:
                bad.append(mod)
    assert not bad, f"lazy imports in a module __getattr__: {bad}"


def test_the_checker_sees_a_backwards_import(tmp_path: Path) -> None:
    """The parser itself: an upward import inside a function is found, one under
    TYPE_CHECKING is not."""
    src = tmp_path / "mod.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import wddmemu\n"
        "def f():\n    from runtime import Device\n"
        "from . import sibling\n"
    )
    got = _imports("kmd.mod", src)
    names = [t for t, _, _ in got]
    assert "wddmemu" not in names
    assert ("runtime", 5, False) in got
    assert "kmd.sibling" in names
