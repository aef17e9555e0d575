"""The sync primitives' events are built exactly when wanted (``vthreads.log`` tests the wanted
set itself; the primitives no longer guard with ``tracing()`` first): a subscriber of one name
gets every such event and no other, and with nobody listening the run is the same."""

from __future__ import annotations

import vthreads as vt


async def _two_locks() -> int:
    m = vt.Mutex("m")
    q: vt.Queue[int] = vt.Queue("q", 4)
    for i in range(3):
        async with m:
            await q.put(i)
    return sum([await q.get() for _ in range(3)])


def test_a_subscriber_gets_its_sync_events_and_no_others() -> None:
    got: list[dict] = []
    eng = vt.Engine("pct", seed=3)
    eng.subscribe(got.append, events=["mutex.acquire", "queue.get"])
    r = eng.run(_two_locks)
    assert r.ok and r.value == 3
    assert [(e["event"], e.get("mutex"), e.get("queue")) for e in got] == (
        [("mutex.acquire", "m", None)] * 3 + [("queue.get", None, "q")] * 3)
    assert [e["depth"] for e in got if e["event"] == "queue.get"] == [2, 1, 0]


def test_with_nobody_listening_no_sync_event_is_built() -> None:
    eng = vt.Engine("pct", seed=3)
    r = eng.run(_two_locks)
    assert r.ok and r.value == 3 and not eng.tracing
