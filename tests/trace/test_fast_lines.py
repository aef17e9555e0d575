"""The trace file's fast paths write exactly the bytes of the processor chain.

A file with no capture active takes the fast paths (``TraceSink.write``'s serialised context
tail, ``TraceSink.write_sched``'s lines rendered without an event dict); inside
``capture_events`` every line takes the structlog chain (``RunContext``, ``order_fields``,
``JSONRenderer``). Same run, same seed: the two files must be equal byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

import vthreads as vt
from vthreads.testing import capture_events

WEIRD = 'w"\\é\n'  # a thread name JSON must escape: write_sched serialises names itself


async def _bump(m: vt.Mutex, cell: vt.SharedCell[int], n: int) -> None:
    for _ in range(n):
        async with m:
            v = await cell.read("read")
            await cell.write(v + 1, "write")
        await vt.sleep(3)


async def _program() -> int:
    m, cell = vt.Mutex("m"), vt.SharedCell("c", 0)
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


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_fast_paths_write_the_chains_bytes(tmp_path: Path, backend: str) -> None:
    fast, chain = tmp_path / "fast.jsonl", tmp_path / "chain.jsonl"
    _run(fast, backend, capture=False)
    events = _run(chain, backend, capture=True)
    sched = [e for e in events if e["event"] == "sched"]
    # the run has what the fast paths handle: sched lines, by the weird thread among others
    assert len(sched) > 20 and any(e["thread"] == WEIRD for e in sched)
    assert fast.read_bytes() == chain.read_bytes()


def test_a_subscriber_of_sched_still_gets_the_event(tmp_path: Path) -> None:
    got: list[dict] = []
    eng = vt.Engine("pct", seed=5, trace=tmp_path / "t.jsonl")
    eng.subscribe(got.append, events=["sched"])
    eng.run(_program).check()
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").count('"event":"sched"')
    assert len(got) == lines > 20
    assert list(got[0])[:6] == ["step", "t", "thread", "event", "next", "runnable"]
