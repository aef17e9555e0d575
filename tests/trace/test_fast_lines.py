"""The trace file's fast paths write exactly the bytes of the processor chain.

A file with no capture active takes the fast paths (``TraceSink.write``'s serialised context
tail, ``TraceSink.write_sched``'s and ``TraceSink.write_name``'s lines rendered without an event
dict); inside
``capture_events`` every line takes the structlog chain (``RunContext``, ``order_fields``,
``JSONRenderer``). Same run, same seed: the two files must be equal byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import vthreads as vt
from vthreads._trace import ONE_FIELD, ONE_TAILS_MAX, TraceSink
from vthreads.testing import capture_events

WEIRD = 'w"\\é\n'  # a name JSON must escape: write_sched and write_name serialise names itself


async def _bump(m: vt.Mutex, cell: vt.SharedCell[int], n: int) -> None:
    for _ in range(n):
        async with m:
            v = await cell.read("read")
            await cell.write(v + 1, "write")
        await vt.sleep(3)


async def _program() -> int:
    m, cell = vt.Mutex(WEIRD), vt.SharedCell("c", 0)
    threads = [vt.spawn(name, _bump, m, cell, 6) for name in ("a", WEIRD, "c")]
    for t in threads:
        await t.join()
    return cell.peek()


def _run(path: Path, backend: str, *, capture: bool) -> list[dict]:
    def go() -> None:
        r = vt.Engine("pct", seed=5, backend=backend, trace=path,
                      context={"scenario": "fast-lines"}).run(_program)
        assert r.ok and r.value == 18

    if not capture:
        go()
        return []
    with capture_events() as events:
        go()
    return events


def _fast_and_chain(tmp_path: Path, go: Callable[[Path], object]) -> tuple[bytes, bytes]:
    """The bytes ``go(path)`` writes on the fast paths, and inside ``capture_events`` (every
    line through the processor chain)."""
    fast, chain = tmp_path / "fast.jsonl", tmp_path / "chain.jsonl"
    go(fast)
    with capture_events():
        go(chain)
    return fast.read_bytes(), chain.read_bytes()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_fast_paths_write_the_chains_bytes(tmp_path: Path, backend: str) -> None:
    fast, chain = tmp_path / "fast.jsonl", tmp_path / "chain.jsonl"
    _run(fast, backend, capture=False)
    events = _run(chain, backend, capture=True)
    sched = [e for e in events if e["event"] == "sched"]
    # the run has what the fast paths handle: sched lines, by the weird thread among others,
    # and every event of write_name's (the weird mutex's, and the waits of the sleeps and joins)
    assert len(sched) > 20 and any(e["thread"] == WEIRD for e in sched)
    assert {e["event"] for e in events} >= set(ONE_FIELD)
    assert any(e["event"] == "mutex.acquire" and e["mutex"] == WEIRD for e in events)
    assert fast.read_bytes() == chain.read_bytes()


async def _many_mutexes() -> None:
    for i in range(ONE_TAILS_MAX + 50):  # more line ends than write_name keeps
        async with vt.Mutex(f"m{i}"):
            pass


def test_write_name_past_its_cache_writes_the_chains_bytes(tmp_path: Path) -> None:
    fast, chain = _fast_and_chain(
        tmp_path, lambda path: vt.Engine("fifo", trace=path).run(_many_mutexes).check())
    assert fast.count(b'"event":"mutex.release"') == ONE_TAILS_MAX + 50
    assert fast == chain


def test_the_kept_clock_part_follows_the_clock_both_ways() -> None:
    """write_sched and write_name keep the ``,"t":…`` part for the last clock value: a clock
    that moves on, comes back (a sink whose next run starts at 0) or repeats is written as it
    is, as orjson writes it."""
    import io

    import orjson

    f = io.BytesIO()
    sink = TraceSink(f)
    assert sink.start({"run": "r"})
    clocks = [0, 0, 7, 7, 2**62, 0, 7]
    for step, t in enumerate(clocks):
        if step % 2:
            sink.write_sched(step, t, "a", "b", 2)
        else:
            sink.write_name(step, t, None, "mutex.acquire", "m")
    sink.close()
    lines = f.getvalue().splitlines()
    assert [orjson.loads(line)["t"] for line in lines] == clocks
    assert all(line.startswith(b'{"step":%d,"t":%d,' % (i, t))
               for i, (line, t) in enumerate(zip(lines, clocks, strict=True)))


def test_the_kept_step_part_follows_the_step_both_ways() -> None:
    """write_name reuses the ``{"step":…`` part of the last fast line when the step is the
    same (a mutex line after its ``sched``), and writes a new one when it moved: on, back (a
    sink whose next run starts at 0) or after a dict line of another step."""
    import io

    import orjson

    f = io.BytesIO()
    sink = TraceSink(f)
    assert sink.start({"run": "r"})
    steps = [3, 3, 3, 4, 0, 0, 9, 9, 5, 9]
    for i, step in enumerate(steps):
        if i in (0, 6):
            sink.write_sched(step, 1, "a", "b", 2)
        elif i == 8:
            sink.write({"step": step, "t": 1, "thread": "a", "event": "x"})
        else:
            sink.write_name(step, 1, None, "mutex.acquire" if i % 2 else "block", f"w{i % 3}")
    sink.close()
    lines = f.getvalue().splitlines()
    assert [orjson.loads(line)["step"] for line in lines] == steps
    assert all(line.startswith(b'{"step":%d,"t":1,' % s) for line, s in zip(lines, steps))
    # the values that came once and the one that came back: each line names its own
    assert [orjson.loads(line).get("waits", orjson.loads(line).get("mutex")) for line in lines
            if b'"thread":null' in line] == [f"w{i % 3}" for i in (1, 2, 3, 4, 5, 7, 9)]


def test_a_subscriber_of_a_one_field_event_still_gets_it(tmp_path: Path) -> None:
    got: list[dict] = []
    eng = vt.Engine("pct", seed=5, trace=tmp_path / "t.jsonl")
    eng.subscribe(got.append, events=["mutex.release"])
    eng.run(_program).check()
    text = (tmp_path / "t.jsonl").read_text(encoding="utf-8")
    assert len(got) == text.count('"event":"mutex.release"') == 18
    assert got[0]["mutex"] == WEIRD and list(got[0]) == ["step", "t", "thread", "event", "mutex"]
    # the other one-field events nobody subscribed to still reach the file
    assert text.count('"event":"mutex.acquire"') == 18 and '"event":"block"' in text


def test_a_context_key_named_like_the_field_takes_the_chain(tmp_path: Path) -> None:
    """A context key ``mutex`` would be overridden by the event's field on the chain path;
    write_name's line would carry both, so the engine must not take it (TraceSink.one_fast)."""
    fast, chain = _fast_and_chain(tmp_path, lambda path: vt.Engine(
        "pct", seed=5, trace=path, context={"mutex": "ctx"}).run(_program).check())
    assert fast == chain


def test_a_subscriber_of_sched_still_gets_the_event(tmp_path: Path) -> None:
    got: list[dict] = []
    eng = vt.Engine("pct", seed=5, trace=tmp_path / "t.jsonl")
    eng.subscribe(got.append, events=["sched"])
    eng.run(_program).check()
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").count('"event":"sched"')
    assert len(got) == lines > 20
    assert list(got[0])[:6] == ["step", "t", "thread", "event", "next", "runnable"]


async def _odd_shapes() -> None:
    # one-field names with other shapes: two fields, a field that is not a string
    vt.log("mutex.acquire", mutex="m", extra=1)
    vt.log("block", waits=7)
    vt.log("unblock", other="x")
    async with vt.Mutex("m"):
        pass


def _note_at_start(ev: dict) -> None:
    # a subscriber's events come from no emulated thread: "thread" is null
    vt.log("note", x=1)
    vt.log("block", waits="w")


def _odd_run(path: Path) -> None:
    eng = vt.Engine("fifo", trace=path)
    eng.subscribe(_note_at_start, events=["run.start"])
    eng.run(_odd_shapes).check()


def test_other_shapes_and_threadless_events_take_the_chains_bytes(tmp_path: Path) -> None:
    """The direct path takes only its own shape — exactly its one field, a string — and an event
    from no thread is written with ``"thread":null`` on either path."""
    fast, chain = _fast_and_chain(tmp_path, _odd_run)
    text = fast.decode("utf-8")
    assert '"event":"mutex.acquire","mutex":"m","extra":1' in text
    assert '"event":"block","waits":7' in text and '"event":"unblock","other":"x"' in text
    assert '"thread":null,"event":"block","waits":"w"' in text
    assert fast == chain


def test_the_one_field_events_skip_the_dict_path(tmp_path: Path, monkeypatch) -> None:
    """The point of write_name: a mutex or block event nobody subscribes to never becomes an
    event dict on its way to the file (TraceSink.write sees none of them)."""
    seen: list[str] = []
    real = TraceSink.write

    def spy(self: TraceSink, event: dict) -> None:
        seen.append(event["event"])
        real(self, event)

    monkeypatch.setattr(TraceSink, "write", spy)
    vt.Engine("pct", seed=5, trace=tmp_path / "t.jsonl").run(_program).check()
    text = (tmp_path / "t.jsonl").read_text(encoding="utf-8")
    assert text.count('"event":"mutex.acquire"') == 18 and '"event":"block"' in text
    assert "finish" in seen and not set(seen) & set(ONE_FIELD)


async def _late_and_odd() -> None:
    # a mutex named by no string (the direct one-field path, log_one, sends it
    # down the dict path), and one-field events at the top of the clock (2**63-1 ns at most)
    async with vt.Mutex(b"\x01m"):  # type: ignore[arg-type]
        pass
    await vt.sleep(2**63 - 10)
    t = vt.spawn("late", vt.sleep, 1)
    async with vt.Mutex("m"):
        await t.join()  # a block and an unblock


def test_the_direct_one_field_path_leaves_odd_names_to_the_chain(tmp_path: Path) -> None:
    fast, chain = _fast_and_chain(
        tmp_path, lambda path: vt.Engine("fifo", trace=path).run(_late_and_odd).check())
    text = fast.decode("utf-8")
    assert '"event":"mutex.acquire","mutex":"016d"' in text
    assert f'"t":{2**63 - 10},"thread":"main","event":"block","waits":"join late"' in text
    assert fast == chain


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque 7>"


async def _unencodable_fields() -> None:
    # fields orjson cannot encode alone: TraceSink.write tries without ``default`` first, and
    # each of these must take the path that renders them, with the chain's bytes
    vt.log("odd.bytes", data=b"\x00\xffA", more=bytearray(b"\x01"))
    vt.log("odd.set", ids={3, 1, 2}, frozen=frozenset({"b", "a"}))
    vt.log("odd.object", what=_Opaque(), nested={"deep": [_Opaque(), b"\x02"]})
    vt.log("odd.huge", value=1 << 70, inner=[-(1 << 64) - 1, {"k": b"\x03"}])
    vt.log("odd.plain", value=1)
    await vt.sleep(1)


def test_fields_orjson_cannot_encode_alone_take_the_chains_bytes(tmp_path: Path) -> None:
    """A field that needs ``_default`` (bytes, sets, objects) or ``_wide`` (an int past 64
    bits) is rendered as the chain renders it: hex, a sorted list, the repr, the decimal."""
    def go(path: Path) -> None:
        vt.Engine("fifo", trace=path).run(_unencodable_fields).check()

    fast, chain = _fast_and_chain(tmp_path, go)
    text = fast.decode("utf-8")
    assert '"data":"00ff41","more":"01"' in text
    assert '"ids":[1,2,3],"frozen":["a","b"]' in text
    assert '"what":"<opaque 7>","nested":{"deep":["<opaque 7>","02"]}' in text
    assert f'"value":"{1 << 70}","inner":["{-(1 << 64) - 1}",{{"k":"03"}}]' in text
    assert '"event":"odd.plain","value":1' in text
    assert fast == chain


def _logs_each_key(keys: tuple[str, ...]) -> Callable[[], object]:
    async def program() -> None:
        vt.log("plain", field=1)
        for k in keys:  # an event with a field named like each context key, the 5th and 6th too
            vt.log("clash", **{k: "own", "other": 2})
        vt.log("plain", field=2)
    return program


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 6])
def test_an_event_naming_any_context_key_takes_the_chain(tmp_path: Path, n: int) -> None:
    """TraceSink.write tests the first four context keys one by one and the rest as a set: an
    event's own field of any of them (the event's value wins, in its place) gives the chain's
    bytes, whatever the number of keys."""
    context = {f"k{i}": i for i in range(n)}
    program = _logs_each_key(tuple(context))
    fast, chain = _fast_and_chain(tmp_path, lambda path: vt.Engine(
        "fifo", trace=path, context=context).run(program).check())
    assert fast == chain
    clashes = [line for line in fast.splitlines() if b'"event":"clash"' in line]
    assert len(clashes) == n and all(b'"own"' in line for line in clashes)
