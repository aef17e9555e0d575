"""``wddmemu.trace``: the trace tools from Python, with public names only."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import wddmemu
from tests.support.chrome import check_chrome
from wddmemu import trace


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api") / "t.jsonl"
    res = wddmemu.run(wddmemu.RunSpec("dynamic-vb-ring", params={"frames": 3},
                                      driver="track-in-lockasync"), trace=path)
    assert not res.ok  # a seeded LA-13: the trace holds violations to find
    return path


def test_every_public_name_is_public_and_exists() -> None:
    assert trace.__all__ and all(not n.startswith("_") for n in trace.__all__)
    for name in trace.__all__:
        assert getattr(trace, name).__module__.startswith("wddmemu.")


def test_iter_events_summarize_and_export_agree_with_the_file(traced: Path,
                                                              tmp_path: Path) -> None:
    events = [ev for _n, ev in trace.iter_events(traced)]
    assert len(events) == len(traced.read_bytes().splitlines())
    rules = sorted({ev["rule"] for ev in events if ev["event"] == "violation"})
    assert "LA-13" in rules
    viol = trace.summarize(traced).as_dict()["violations"]
    assert sorted(viol) == rules
    assert viol["LA-13"]["count"] == sum(ev.get("rule") == "LA-13" for ev in events)
    assert trace.event_fields(events[0]).keys().isdisjoint({"step", "t", "thread", "event"})
    out = tmp_path / "t.json"
    info = trace.export_chrome(traced, out)
    assert isinstance(info, trace.TimelineInfo) and info.events == len(events)
    assert check_chrome(orjson.loads(out.read_bytes())) == []


def test_a_bad_trace_is_a_trace_format_error_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"step":0,"t":0,"thread":null,"event":"run.start"}\nnot json\n{}\n')
    with pytest.raises(trace.TraceFormatError) as e:
        trace.summarize(bad)
    assert e.value.path == str(bad) and e.value.line == 2 and "\n" not in str(e.value)
    with pytest.raises(trace.TraceFormatError):
        list(trace.iter_events(tmp_path / "missing.jsonl"))


def test_a_timeline_fed_a_wrong_field_says_which_through_feed_events(tmp_path) -> None:
    """A sink author driving TimelineBuilder gets the field error the CLI gets, at the line."""
    import orjson
    import pytest

    from wddmemu import trace

    class Nothing(trace.Sink):
        wants_args = False

    good = {"step": 0, "t": 0, "thread": "app", "event": "thread.start"}
    bad = {**good, "step": 1, "event": "ddi.enter", "ddi": ["x"]}
    p = tmp_path / "t.jsonl"
    p.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in (good, bad)))
    tl = trace.TimelineBuilder(Nothing())
    with pytest.raises(trace.FieldError, match="field 'ddi' is a list, not a string"):
        tl.feed(bad)
    with pytest.raises(trace.TraceFormatError, match=r"t\.jsonl:2: field 'ddi' is a list"):
        trace.feed_events(p, trace.TimelineBuilder(Nothing()).feed)


@pytest.mark.parametrize("bad,says", [
    (3, "a trace is named by a path (str or pathlib.Path), not int"),
    (True, "a trace is named by a path (str or pathlib.Path), not bool"),
    (None, "a trace is named by a path (str or pathlib.Path), not None"),
    (b"t.jsonl", "a trace is named by a path (str or pathlib.Path), not bytes"),
    ("", "a trace path is a file name, not ''"),
    ("a\0b", "a trace path is a file name, not 'a\\\\x00b'")])
def test_a_trace_argument_that_names_no_file_is_refused_not_opened(
        bad: object, says: str, tmp_path: Path, traced: Path) -> None:
    """h10 F12: an int was opened as a file descriptor (``summarize(True)`` read stdout, and
    ``iter_events(fd)`` read the caller's fd and closed it)."""
    import os

    fd = os.open(traced, os.O_RDONLY)
    try:
        calls = [lambda: list(trace.iter_events(bad)), lambda: trace.summarize(bad),
                 lambda: trace.export_chrome(bad, tmp_path / "o.json"),
                 lambda: trace.feed_events(bad, print)]
        for call in calls:
            with pytest.raises(trace.TraceFormatError) as ei:
                call()
            assert str(ei.value) == says and ei.value.path == "" and ei.value.line is None
        with pytest.raises(trace.TraceFormatError, match="not int"):
            list(trace.iter_events(fd))
        os.fstat(fd)  # still open: the caller's descriptor is not read nor closed
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    finally:
        os.close(fd)
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("out,says", [(None, "None"), (5, "int")])
def test_export_chrome_to_something_that_is_no_output_is_refused(out: object, says: str,
                                                                 traced: Path) -> None:
    with pytest.raises(trace.TraceFormatError, match=r"^export_chrome writes to a path, '-' or "
                                                     f"a binary stream, not {says}$"):
        trace.export_chrome(traced, out)  # type: ignore[arg-type]
