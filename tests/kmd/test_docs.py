"""The example at the top of docs/kmd.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "kmd.md"


def test_doc_example_runs() -> None:
    text = DOC.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    exec(compile(code.group(1), str(DOC), "exec"), {"__name__": "kmd_doc_example"})


def test_doc_lists_every_thunk_and_its_codes() -> None:
    import kmd

    text = DOC.read_text()
    for name, codes in kmd.THUNK_CODES.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
        for st in codes:
            short = st.name.removeprefix("STATUS_")
            assert short in row, (name, short)
