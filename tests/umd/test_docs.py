"""docs/umd.md's runnable example runs: the block after ``<!-- runnable -->`` is executed as
is (it asserts what it promises itself)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "umd.md"


def runnable_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"<!-- runnable -->\n```python\n(.*?)\n```", text, re.DOTALL)


def test_the_docs_example_runs() -> None:
    blocks = runnable_blocks()
    assert len(blocks) == 1, "docs/umd.md §7.5 has one runnable block"
    ns: dict[str, object] = {"__name__": "umd_docs_example"}
    exec(compile(blocks[0], f"{DOC}:runnable", "exec"), ns)
    policy = ns["policy"]
    assert sum(policy.submitted) == 12  # type: ignore[attr-defined]
    assert ns["result"].ok  # type: ignore[attr-defined]


def test_the_registration_example_registers() -> None:
    import umd

    text = DOC.read_text(encoding="utf-8")
    code = re.search(r"```python\n(import umd\n\n@umd\.VARIANT_REGISTRY.*?)\n```", text,
                     re.DOTALL)
    assert code is not None
    try:
        exec(code.group(1), {"__name__": "umd_docs_variant"})
        drv = umd.make_driver("rename-to-newest")
        assert type(drv.policy).__name__ == "RenameToNewest"
        assert umd.VARIANT_REGISTRY.entry("rename-to-newest").rules == ("LA-13", "DATA")
    finally:
        umd.VARIANT_REGISTRY.unregister("rename-to-newest")
