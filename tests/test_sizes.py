"""The size rule of the style guide, over every package (issue 10, brief "Standards").

No class over ~400 lines doing several jobs, no function over ~60 lines: a class that big has
more than one job and a function that long has steps that want names. Every module of the six
layers is parsed (not imported), so the rule holds for code no test happens to import. The
limits are counted from a definition's first line (its ``def``/``class``, decorators excluded)
to its last, docstring and comments included: a long docstring is a sign too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("vthreads", "kmd", "umd", "runtime", "scenarios", "wddmemu")
MAX_CLASS = 400
MAX_FUNCTION = 60


def _oversized() -> list[str]:
    """Every class over MAX_CLASS and function over MAX_FUNCTION lines, as ``file: what``."""
    found = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                size = node.end_lineno - node.lineno + 1 if hasattr(node, "end_lineno") else 0
                if isinstance(node, ast.ClassDef) and size > MAX_CLASS:
                    found.append(f"{rel}:{node.lineno}: class {node.name} has {size} lines "
                                 f"(max {MAX_CLASS}): move one of its jobs out")
                elif (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                      and size > MAX_FUNCTION):
                    found.append(f"{rel}:{node.lineno}: function {node.name} has {size} lines "
                                 f"(max {MAX_FUNCTION}): split it into named steps")
    return found


def test_every_module_is_scanned() -> None:
    # a wrong ROOT or layer name would make the size test pass vacuously
    for layer in LAYERS:
        assert len(list((ROOT / layer).rglob("*.py"))) >= 2, f"no modules found under {layer}/"


def test_no_class_over_400_lines_and_no_function_over_60() -> None:
    found = _oversized()
    assert not found, "oversized definitions:\n" + "\n".join(found)
