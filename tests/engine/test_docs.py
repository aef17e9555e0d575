"""Every python block of docs/engine.md runs as written (in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def test_doc_examples_run() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert len(blocks) >= 4
    ns: dict = {"__name__": "engine_doc_example"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC}:block{i}", "exec"), ns)


def test_doc_names_every_lowlevel_name() -> None:
    from vthreads import lowlevel

    text = DOC.read_text()
    for name in lowlevel.__all__:
        if name not in ("Engine", "VThread"):
            assert f"{name}" in text, name
