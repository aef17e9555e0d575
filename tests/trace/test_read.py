"""Reading traces: streaming, and one clear error (file and line) for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from wddmemu._trace_read import TraceFormatError, event_fields, iter_events

GOOD = b'{"step":1,"t":0,"thread":"app","event":"ddi.enter","ddi":"Lock","seed":0}\n'


def _write(tmp_path: Path, data: bytes, name: str = "t.jsonl") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_reads_lines_in_order_with_numbers(tmp_path: Path) -> None:
    p = _write(tmp_path, GOOD + b"\n" + GOOD.replace(b'"step":1', b'"step":2'))
    got = [(n, ev["step"]) for n, ev in iter_events(p)]
    assert got == [(1, 1), (3, 2)]  # the blank line 2 is skipped, numbers stay file lines


def test_event_fields_drop_head_and_context() -> None:
    ev = {"step": 1, "t": 0, "thread": "app", "event": "x", "ddi": "Lock", "seed": 3,
          "scenario": "s", "strategy": "fifo", "backend": "trio"}
    assert event_fields(ev) == {"ddi": "Lock"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json}\n", "not a JSON line"),
        (b'{"step":1,"t":0,"thread":"app","event":"x"\n', "not a JSON line"),
        (b"[1, 2]\n", "expected a JSON object"),
        (b'{"t":0,"thread":"app","event":"x"}\n', "'step' is missing"),
        (b'{"step":"1","t":0,"thread":"app","event":"x"}\n', "'step' is not an integer"),
        (b'{"step":1,"thread":"app","event":"x"}\n', "'t' is missing"),
        (b'{"step":1,"t":1.5,"thread":"app","event":"x"}\n', "'t' is not an integer"),
        (b'{"step":1,"t":0,"thread":"app"}\n', "'event' is missing"),
        (b'{"step":1,"t":0,"thread":"app","event":3}\n', "'event' is not a string"),
        (b'{"step":1,"t":0,"thread":7,"event":"x"}\n', "'thread' must be a string or null"),
        (b'{"step":true,"t":0,"thread":"app","event":"x"}\n', "'step' is not an integer"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: bytes, message: str) -> None:
    p = _write(tmp_path, GOOD * 3 + line + GOOD)
    seen = 0
    with pytest.raises(TraceFormatError) as ei:
        for _ in iter_events(p):
            seen += 1
    assert seen == 3  # the good lines before it were read (streaming)
    e = ei.value
    assert e.line == 4
    assert str(e).startswith(f"{p}:4: ")
    assert message in str(e)
    assert "\n" not in str(e)


def test_empty_and_blank_files(tmp_path: Path) -> None:
    for data in (b"", b"\n\n  \n"):
        p = _write(tmp_path, data)
        with pytest.raises(TraceFormatError, match="empty trace") as ei:
            list(iter_events(p))
        assert ei.value.line is None
        assert str(ei.value).startswith(f"{p}: ")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="no such file"):
        list(iter_events(tmp_path / "nope.jsonl"))
    with pytest.raises(TraceFormatError, match="is a directory"):
        list(iter_events(tmp_path))


def test_truncated_last_line_is_a_warning_not_a_refusal(tmp_path: Path) -> None:
    # a run killed mid-write leaves half a line at the end: what came before is summarised
    # (issue 14), the cut line is named in a warning
    p = _write(tmp_path, GOOD * 2 + GOOD[:30])
    warnings: list[str] = []
    assert [n for n, _ in iter_events(p, warn=warnings.append)] == [1, 2]
    assert len(warnings) == 1 and ":3: the last line is cut short" in warnings[0]
    # the same half line anywhere but last is a malformed line
    p = _write(tmp_path, GOOD + GOOD[:30] + b"\n" + GOOD)
    with pytest.raises(TraceFormatError, match=r":2: not a JSON line"):
        list(iter_events(p))


def test_a_huge_line_is_refused_within_bounds(tmp_path: Path, monkeypatch) -> None:
    from wddmemu import _trace_read

    monkeypatch.setattr(_trace_read, "MAX_LINE", 1000)
    p = _write(tmp_path, GOOD + b"[" + b"1," * 5000 + b"1]\n")
    with pytest.raises(TraceFormatError, match=r":2: line longer than 1,000 bytes"):
        list(iter_events(p))
