"""The synchronisation objects pinned operation by operation (issue 16: mutants of
``vthreads/_sync.py`` that survived ``tests/engine``): the footprint each operation gives DPOR
(``vthreads._footprint``: which object, which mode), the trace events a run subscribed *by name*
gets (a run that wants every event would hide a wrong name behind ``tracing(name)``), what a
parked thread says it waits for, and the messages of the refusals."""

from __future__ import annotations

from typing import Any

import pytest

import vthreads as vt
from vthreads import WouldBlock
from vthreads._systematic import DfsStrategy

M, E, Q, C, X = ("Mutex", "m"), ("Event", "e"), ("Queue", "q"), ("Condition", "c"), \
    ("SharedCell", "x")


async def _every_operation() -> None:
    m, e, q, c = vt.Mutex("m"), vt.Event("e"), vt.Queue("q", maxsize=1), vt.Condition("c")
    cell = vt.SharedCell("x", 0)
    m.acquire_nowait()
    m.release()
    await m.acquire()
    m.release()
    e.set()
    e.set()  # a second set is a touch and nothing more: no event, no second release
    await e.wait()
    e.wait_nowait()
    q.put_nowait("a")
    assert q.get_nowait() == "a"
    await q.put("b")
    assert await q.get() == "b"
    c.notify_all()
    assert await c.wait_for(lambda: True)
    await cell.read("r")
    await cell.write(1, "w")


def test_every_operation_names_its_object_and_mode_in_the_step_footprint() -> None:
    s = DfsStrategy([])
    r = vt.Engine(s).run(_every_operation)
    assert r.ok, r.failure
    assert [st.fp for st in s.observer.steps] == [
        ((M, "try"), (M, "release")),
        ((M, "acquire"), (M, "release"), (E, "set")),
        ((E, "wait"), (Q, "put"), (Q, "get")),
        ((Q, "put"),),
        ((Q, "get"), (C, "notify")),
        ((C, "wait"),),
        ((X, "read"),),
        ((X, "write"), (("VThread", "main"), "finish")),
    ]


_NAMES = ["mutex.acquire", "mutex.release", "event.set", "queue.put", "queue.get"]


@pytest.mark.parametrize("name", _NAMES)
def test_a_run_subscribed_to_one_event_gets_exactly_those(name: str) -> None:
    got: list[dict[str, Any]] = []
    eng = vt.Engine("fifo")
    eng.subscribe(got.append, [name])
    assert eng.run(_every_operation).ok
    fields = {"mutex.acquire": [{"mutex": "m"}], "mutex.release": [{"mutex": "m"}] * 2,
              "event.set": [{"event_name": "e"}],
              "queue.put": [{"queue": "q", "depth": 1}] * 2,
              "queue.get": [{"queue": "q", "depth": 0}] * 2}[name]
    assert [{k: ev[k] for k in ev if k in ("event", "mutex", "event_name", "queue", "depth")}
            for ev in got] == [{"event": name, **f} for f in fields]


def test_a_parked_thread_says_what_it_waits_for() -> None:
    async def main() -> None:
        m, e, c = vt.Mutex("m"), vt.Event("e"), vt.Condition("c")
        full, empty = vt.Queue("q0", maxsize=1), vt.Queue("q1")
        await m.acquire()
        full.put_nowait(0)
        vt.spawn("a", m.acquire)
        vt.spawn("d", full.put, 1)
        vt.spawn("g", empty.get)
        vt.spawn("h", c.wait_for, lambda: False)
        vt.spawn("i", c.wait_for, lambda: False, "the flag")
        await e.wait()

    blocks: list[dict[str, Any]] = []
    eng = vt.Engine("fifo")
    eng.subscribe(blocks.append, ["block"])
    r = eng.run(main)
    assert r.failure is not None and r.failure.kind == "deadlock"
    waits = {"main": "event e", "a": "mutex m held by main", "d": "queue q0 full",
             "g": "queue q1 empty", "h": "condition c", "i": "the flag"}
    assert r.failure.details["waits"] == waits
    assert [(b["thread"], b["waits"]) for b in blocks] == list(waits.items())


# ---- state and refusals -------------------------------------------------------------------


def _in_run(fn: Any) -> Any:
    async def main() -> Any:
        return fn()
    r = vt.Engine("fifo").run(main)
    assert r.failure is None, r.failure
    return r.value


def _refusal(fn: Any) -> str:
    try:
        fn()
    except (WouldBlock, vt.EngineUsageError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return "no refusal"


def test_an_event_starts_unset_and_names_itself() -> None:
    e = vt.Event("e")
    assert e.is_set() is False and e.name == "e"
    assert _in_run(lambda: _refusal(e.wait_nowait)) == "WouldBlock: event e is not set"


def test_the_nowait_refusals_say_why() -> None:
    def body() -> list[str]:
        m, q = vt.Mutex("m"), vt.Queue("q", maxsize=2)
        out = [_refusal(q.get_nowait)]
        q.put_nowait("a")
        q.put_nowait("b")
        out.append(_refusal(lambda: q.put_nowait("c")))
        out.append(str((len(q), q.full(), q.empty(), q.items(), q.high_water)))
        out.append(_refusal(m.release))
        m.acquire_nowait()
        out.append(_refusal(m.acquire_nowait))
        return out

    assert _in_run(body) == [
        "WouldBlock: queue q is empty",
        "WouldBlock: queue q is full (2 items)",
        "(2, True, False, ['a', 'b'], 2)",
        "EngineUsageError: main released mutex m, which nobody holds: release only what you "
        "acquired",
        "WouldBlock: mutex m is held by main",
    ]


def test_a_queue_refuses_a_negative_size() -> None:
    assert _refusal(lambda: vt.Queue("q", maxsize=-1)) == "ValueError: maxsize must be >= 0"
    assert not vt.Queue("q", maxsize=0).full()


def test_a_queue_is_unbounded_by_default_and_its_high_water_starts_at_zero() -> None:
    def body() -> tuple[int, int, bool]:
        q: vt.Queue[int] = vt.Queue("q")
        before = q.high_water
        for i in range(3):
            q.put_nowait(i)
        return before, q.high_water, q.full()

    assert _in_run(body) == (0, 3, False)


def test_the_mutex_refusals_name_the_holder() -> None:
    async def main() -> list[str]:
        m = vt.Mutex("m")
        out: list[str] = []

        async def other() -> None:
            out.append(_refusal(m.release))

        await m.acquire()
        t = vt.spawn("other", other)
        await t.join()
        try:
            await m.acquire()
        except vt.EngineUsageError as e:
            out.append(str(e))
        return out

    r = vt.Engine("fifo").run(main)
    assert r.value == [
        "EngineUsageError: other released mutex m, which main holds: release only what you "
        "acquired",
        "mutex m is not reentrant: main already holds it"]


# ---- condition: the notify -> wake edge and the timeout ----------------------------------------


def _notify_then_read(wait_first: bool) -> vt.RunResult:
    """``writer`` writes a cell, then notifies; ``reader`` waits for the flag, then reads the
    cell. Woken by the notify, the reader is ordered after the write; finding the flag already
    up (no wake), it is not (a race)."""
    async def main() -> None:
        c, cell, flag = vt.Condition("c"), vt.SharedCell("x", 0), [False]

        async def writer() -> None:
            await cell.write(1, "w")
            flag[0] = True
            c.notify_all()

        async def reader() -> None:
            assert await c.wait_for(lambda: flag[0])
            assert await cell.read("r") == 1

        first, second = (reader, writer) if wait_first else (writer, reader)
        ts = [vt.spawn(first.__name__, first), vt.spawn(second.__name__, second)]
        for t in ts:
            await t.join()
    return vt.Engine("fifo").run(main)


def test_a_woken_waiter_is_ordered_after_the_notify() -> None:
    r = _notify_then_read(wait_first=True)
    assert r.ok, (r.failure, r.violations)


def test_a_waiter_that_never_parked_gets_no_edge_from_an_earlier_notify() -> None:
    r = _notify_then_read(wait_first=False)
    assert r.rules() == ["RACE"]


@pytest.mark.parametrize(("timeout_ns", "clock", "parked"), [(0, 0, False), (1, 1, True),
                                                             (5, 5, True)])
def test_a_condition_wait_times_out_after_exactly_its_timeout(timeout_ns: int, clock: int,
                                                              parked: bool) -> None:
    async def main() -> tuple[bool, int]:
        c = vt.Condition("c")
        got = await c.wait_for(lambda: False, timeout_ns=timeout_ns)
        return got, vt.now()

    blocks: list[dict[str, Any]] = []
    eng = vt.Engine("fifo")
    eng.subscribe(blocks.append, ["block"])
    r = eng.run(main)
    assert r.value == (False, clock)
    assert bool(blocks) is parked


def test_a_condition_that_holds_returns_at_once_even_with_a_timeout() -> None:
    async def main() -> tuple[bool, int]:
        got = await vt.Condition("c").wait_for(lambda: True, timeout_ns=5)
        return got, vt.now()

    assert vt.Engine("fifo").run(main).value == (True, 0)


# ---- shared cell --------------------------------------------------------------------------------


def test_a_cell_keeps_its_value_and_update_writes_what_fn_returns() -> None:
    async def main() -> tuple[int, int, int]:
        cell = vt.SharedCell("x", 41)
        first = await cell.read("r")
        v = await cell.update(lambda n: n + 1, "u")
        return first, v, cell.peek()

    assert vt.Engine("fifo").run(main).value == (41, 42, 42)


#: t0's operation, t1's, and (write?, write?) of the first race fifo meets (None: no race); an
#: update reads, then writes
@pytest.mark.parametrize(("ops", "race"), [
    (("read", "read"), None), (("read", "write"), (False, True)),
    (("write", "read"), (True, False)), (("write", "write"), (True, True)),
    (("update", "read"), (True, False)), (("write", "update"), (True, False))])
def test_a_cell_race_names_the_cell_both_sites_and_both_kinds(
        ops: tuple[str, str], race: tuple[bool, bool] | None) -> None:
    async def main() -> None:
        cell = vt.SharedCell("the-cell", 0)

        async def do(op: str, site: str) -> None:
            if op == "read":
                await cell.read(site)
            elif op == "write":
                await cell.write(1, site)
            else:
                await cell.update(lambda n: n + 1, site)

        ts = [vt.spawn(f"t{i}", do, op, f"site{i}") for i, op in enumerate(ops)]
        for t in ts:
            await t.join()

    r = vt.Engine("fifo").run(main)
    assert r.rules() == (["RACE"] if race else [])
    if race:
        v = r.violations[0]
        assert "the-cell" in v.message and "site0" in v.message and "site1" in v.message, v
        assert (v.fields["first"]["write"], v.fields["second"]["write"]) == race, v.fields
