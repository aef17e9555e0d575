"""The race detector and every happens-before edge, table-driven.

Each row is a small program with two accesses to one shared cell, ``first`` (kind k1) and
``second`` (kind k2), placed by an *ordering*: in the same thread, in two unsynchronised threads,
or in two threads ordered by a mutex, a queue, an event, a condition, a spawn or a join. The
verdict is a race exactly when the ordering leaves the accesses unordered and at least one of them
writes. Each row runs on both backends, under fifo (which fixes which access comes first, so the
report's fields are checked too) and under a few random schedules (the verdict is a property of the
program, not of the schedule).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import pytest

import vthreads as vt

BACKENDS = ["asyncio", "trio"]
KINDS = list(itertools.product("RW", repeat=2))


async def _access(cell: vt.SharedCell, kind: str, site: str) -> None:
    if kind == "R":
        await cell.read(site)
    else:
        await cell.write(1, site)


async def _both(*threads: vt.VThread) -> None:
    for t in threads:
        await t.join()


Program = Callable[[vt.SharedCell, str, str], Awaitable[None]]


async def same_thread(cell, k1, k2):
    await _access(cell, k1, "first")
    await _access(cell, k2, "second")


async def unordered(cell, k1, k2):
    a = vt.spawn("A", _access, cell, k1, "first")
    await _both(a, vt.spawn("B", _access, cell, k2, "second"))


async def unordered_but_later(cell, k1, k2):
    # virtual time is not happens-before: B's access comes 100 ns later and is still unordered
    async def b() -> None:
        await vt.sleep(100)
        await _access(cell, k2, "second")

    await _both(vt.spawn("A", _access, cell, k1, "first"), vt.spawn("B", b))


async def by_mutex(cell, k1, k2):
    m = vt.Mutex("m")

    async def locked(kind: str, site: str) -> None:
        async with m:
            await _access(cell, kind, site)

    await _both(vt.spawn("A", locked, k1, "first"), vt.spawn("B", locked, k2, "second"))



async def after_release(cell, k1, k2):
    # A's access comes after its unlock, so the next owner's acquire does not cover it: the
    # release ticks A's clock (the lowlevel release every primitive uses). B sleeps first, so A
    # has unlocked and accessed before B locks, on every schedule.
    m = vt.Mutex("m")

    async def a() -> None:
        async with m:
            pass
        await _access(cell, k1, "first")

    async def b() -> None:
        await vt.sleep(10)
        async with m:
            await _access(cell, k2, "second")

    await _both(vt.spawn("A", a), vt.spawn("B", b))

async def by_queue(cell, k1, k2):
    q: vt.Queue[int] = vt.Queue("q")

    async def a() -> None:
        await _access(cell, k1, "first")
        await q.put(1)

    async def b() -> None:
        await q.get()
        await _access(cell, k2, "second")

    await _both(vt.spawn("A", a), vt.spawn("B", b))


async def by_event(cell, k1, k2):
    ev = vt.Event("ev")

    async def a() -> None:
        await _access(cell, k1, "first")
        ev.set()

    async def b() -> None:
        await ev.wait()
        await _access(cell, k2, "second")

    await _both(vt.spawn("A", a), vt.spawn("B", b))


def _condition(b_waits: bool):
    async def program(cell, k1, k2):
        c, box = vt.Condition("c"), [False]

        async def a() -> None:
            if b_waits:
                await vt.sleep(10)  # B is parked in wait_for by then, on every schedule
            await _access(cell, k1, "first")
            box[0] = True
            c.notify_all()

        async def b() -> None:
            if not b_waits:
                await vt.sleep(10)  # the predicate already holds: wait_for returns, no edge
            await c.wait_for(lambda: box[0], "box")
            await _access(cell, k2, "second")

        await _both(vt.spawn("A", a), vt.spawn("B", b))

    return program


async def by_spawn(cell, k1, k2):
    await _access(cell, k1, "first")
    await vt.spawn("B", _access, cell, k2, "second").join()


async def after_spawn(cell, k1, k2):
    # the parent's access after the spawn is not ordered with the child's (the parent's clock
    # ticked at the spawn); fifo runs the parent's access first
    child = vt.spawn("B", _access, cell, k2, "second")
    await _access(cell, k1, "first")
    await child.join()


async def by_join(cell, k1, k2):
    await vt.spawn("A", _access, cell, k1, "first").join()
    await _access(cell, k2, "second")


#: ordering -> (program, whether it leaves the two accesses unordered)
ORDERINGS: dict[str, tuple[Program, bool]] = {
    "same thread": (same_thread, False),
    "other thread, unordered": (unordered, True),
    "other thread, later in virtual time": (unordered_but_later, True),
    "mutex release -> acquire": (by_mutex, False),
    "mutex, access after the release": (after_release, True),
    "queue put -> get": (by_queue, False),
    "event set -> wait": (by_event, False),
    "condition notify -> woken waiter": (_condition(b_waits=True), False),
    "condition predicate already true": (_condition(b_waits=False), True),
    "spawn (parent before spawn)": (by_spawn, False),
    "spawn (parent after spawn)": (after_spawn, True),
    "join": (by_join, False),
}

CASES = [
    pytest.param(name, k1, k2, id=f"{name}-{k1}{k2}")
    for name in ORDERINGS
    for k1, k2 in KINDS
]


def _run(strategy: str, seed: int, backend: str, name: str, k1: str, k2: str) -> vt.RunResult:
    program, _ = ORDERINGS[name]

    async def main() -> None:
        await program(vt.SharedCell("x", 0), k1, k2)

    r = vt.Engine(strategy, seed=seed, backend=backend).run(main)
    assert r.failure is None, r.summary()
    return r


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "k1", "k2"), CASES)
def test_verdict(name: str, k1: str, k2: str, backend: str) -> None:
    race = ORDERINGS[name][1] and "W" in (k1, k2)
    r = _run("fifo", 0, backend, name, k1, k2)
    assert r.rules() == (["RACE"] if race else []), r.summary()
    if race:
        f = r.violations[0].fields
        assert (f["first"]["site"], f["first"]["write"]) == ("first", k1 == "W")
        assert (f["second"]["site"], f["second"]["write"]) == ("second", k2 == "W")
        assert f["first"]["thread"] != f["second"]["thread"]
    for seed in range(4):
        rr = _run("random", seed, backend, name, k1, k2)
        assert bool(rr.violations) == race, (seed, rr.summary())
