"""A primitive serves one run (docs/engine.md, "One run, one set of primitives").

A primitive used by a second run carried the first run's state into it: a cell reported a race
with a thread of the run before, and a mutex whose holder had died deadlocked the next run on
that dead holder. Each test here failed that way before the building blocks were bound to a run;
now the second run fails as an ``exception`` naming the object.
"""

from __future__ import annotations

import pytest

import vthreads as vt
from vthreads import lowlevel as ll


def _refused(r: vt.RunResult, what: str) -> None:
    assert r.failure is not None and r.failure.kind == "exception", r.failure
    assert r.failure.details["exception"] == "EngineUsageError"
    assert what in r.failure.message
    assert "One run, one set of primitives" in r.failure.message
    assert r.rules() == []  # no race, no other finding from the carried state


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cell_of_an_earlier_run_is_refused_not_raced(backend: str) -> None:
    cell = vt.SharedCell("c", 0)
    m = vt.Mutex("m")

    async def writer(name: str) -> None:
        async with m:
            await cell.write(name, name)

    async def two_writers() -> None:
        a, b = vt.spawn("a", writer, "a"), vt.spawn("b", writer, "b")
        await a.join()
        await b.join()

    async def solo() -> None:
        await vt.SharedCell("fresh", 0).read("solo")
        await cell.read("solo")

    first = vt.Engine(backend=backend).run(two_writers)
    assert first.ok and first.rules() == []
    # before: "write-read race on c: b at b (step 5) and main at solo", b being the first
    # run's thread
    _refused(vt.Engine(backend=backend).run(solo), "the shared state c was used by another run")


def test_a_mutex_whose_holder_died_is_refused_not_deadlocked() -> None:
    m = vt.Mutex("m")

    async def hold() -> None:
        await m.acquire()
        raise RuntimeError("dies holding m")

    async def dies() -> None:
        await vt.spawn("h", hold).join()

    async def takes() -> None:
        await m.acquire()

    r = vt.Engine().run(dies)
    assert r.failure is not None and r.failure.kind == "exception"
    assert m.owner is not None and m.owner.name == "h"
    # before: "deadlock: main waits on mutex m held by h"
    _refused(vt.Engine().run(takes), "mutex m is held by h of another run")


def test_a_mutex_released_in_an_earlier_run_is_refused() -> None:
    m = vt.Mutex("m")

    async def once() -> None:
        async with m:
            await vt.checkpoint("inside")

    assert vt.Engine().run(once).ok
    _refused(vt.Engine().run(once), "mutex m was used by another run")


def test_a_queued_item_of_an_earlier_run_is_refused() -> None:
    q: vt.Queue[int] = vt.Queue("q")

    async def put() -> None:
        await q.put(1)

    async def get() -> int:
        return await q.get()

    assert vt.Engine().run(put).ok
    _refused(vt.Engine().run(get), "an item of queue q was used by another run")


def test_events_and_conditions_name_themselves() -> None:
    ev, cond = vt.Event("go"), vt.Condition("ready")

    async def first() -> None:
        ev.set()
        cond.notify_all()

    async def wait_event() -> None:
        await ev.wait()

    async def notify() -> None:
        cond.notify_all()

    assert vt.Engine().run(first).ok
    _refused(vt.Engine().run(wait_event), "event go was used by another run")
    _refused(vt.Engine().run(notify), "condition ready was used by another run")


def test_a_wait_queue_of_an_earlier_run_is_refused() -> None:
    q = ll.WaitQueue("home-made")

    async def parks() -> None:
        await q.park("forever")

    r = vt.Engine().run(parks)
    assert r.failure is not None and r.failure.kind == "deadlock"
    assert len(q) == 0  # the run's end unparked its thread: an unpark finds none of it later
    _refused(vt.Engine().run(parks), "home-made was used by another run")


def test_a_home_made_clock_carries_its_name() -> None:
    clock = ll.HBClock("semaphore s")

    async def rel() -> None:
        ll.release(clock)

    assert vt.Engine().run(rel).ok
    _refused(vt.Engine().run(rel), "semaphore s was used by another run")
    unnamed = ll.HBClock()
    assert vt.Engine().run(lambda: _acq(unnamed)).ok
    _refused(vt.Engine().run(lambda: _acq(unnamed)), "a happens-before clock was used")


async def _acq(clock: ll.HBClock) -> None:
    ll.acquire(clock)


def test_same_run_refuses_a_thread_of_another_run() -> None:
    kept: list[vt.VThread] = []

    async def first() -> None:
        kept.append(vt.current_thread())
        ll.same_run(kept[0], "my lock")  # a thread of this very run: fine

    async def second() -> None:
        ll.same_run(kept[0], "my lock")

    assert vt.Engine().run(first).ok
    _refused(vt.Engine().run(second), "my lock is held by main of another run")


def test_a_primitive_made_before_the_run_belongs_to_it() -> None:
    # creating binds nothing: the first run that uses the objects owns them, for all its threads
    m, cell, q = vt.Mutex("m"), vt.SharedCell("c", 0), vt.Queue("q", maxsize=1)

    async def worker() -> None:
        async with m:
            await cell.update(lambda v: v + 1, "worker")
        await q.put(1)

    async def main() -> int:
        w = vt.spawn("w", worker)
        await q.get()
        async with m:
            await cell.update(lambda v: v + 1, "main")
        await w.join()
        return cell.peek()

    r = vt.Engine("pct", seed=3).run(main)
    assert r.ok and r.value == 2


def test_fresh_primitives_each_run_keep_runs_independent() -> None:
    # the supported pattern: the same program thrice, each run making its own objects, gives
    # what one run alone gives (a second run of a program that kept them would be refused)
    async def main() -> int:
        q: vt.Queue[str] = vt.Queue("q", maxsize=1)
        seen = vt.SharedCell("seen", 0)

        async def consumer() -> None:
            await q.get()
            await seen.write(1, "consumer")

        c = vt.spawn("c", consumer)
        await seen.write(2, "producer")  # before the put: the put → get edge orders it
        await q.put("x")
        await c.join()
        return seen.peek()

    runs = [vt.Engine("pct", seed=5).run(main) for _ in range(3)]
    assert all(r.failure is None for r in runs)
    assert len({tuple(v.message for v in r.violations) for r in runs}) == 1
    assert [r.value for r in runs] == [runs[0].value] * 3
    assert runs[0].rules() == []  # put after the write: the queue orders it


def test_a_thread_of_an_earlier_run_cannot_be_joined() -> None:
    kept: list[vt.VThread] = []

    async def child() -> None:
        await vt.checkpoint("child")

    async def first() -> None:
        kept.append(vt.spawn("child", child))
        await kept[0].join()

    async def joins() -> None:
        await kept[0].join()  # its clock would have ordered this run after the first

    async def joins_nowait() -> None:
        kept[0].join_nowait()

    assert vt.Engine().run(first).ok
    _refused(vt.Engine().run(joins), "thread child is of another run")
    _refused(vt.Engine().run(joins_nowait), "thread child is of another run")
