"""``run_scenario_async`` (docs/explore.md, "Running inside an event loop"): the same run as
``run_scenario``, on the running loop, which it holds from start to end (h10 F11). The host's
cancellation cannot stop it; ``timeout=`` can, and a worker thread keeps the loop responsive.
These pin the documented behaviour: a change that makes the run yield must change the docs."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import vthreads as vt
import wddmemu
from wddmemu import RunSpec

#: a run of some 0.2 s (about 15,000 steps)
SPEC = RunSpec("dynamic-vb-ring", strategy="pos", seed=1, params={"frames": 60})


async def _with_ticker(body: Any) -> tuple[Any, int]:
    """``await body()`` beside a task that counts 5 ms ticks: how often the loop ran it."""
    ticks = [0]

    async def ticker() -> None:
        while True:
            await anyio.sleep(0.005)
            ticks[0] += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.02)  # the ticker is going
        ticks[0] = 0
        out = await body()
        seen = ticks[0]
        tg.cancel_scope.cancel()
    return out, seen


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_run_holds_the_loop_and_the_hosts_deadline_cannot_stop_it(backend: str) -> None:
    plain = wddmemu.run_scenario(SPEC)

    async def body() -> Any:
        t0 = time.monotonic()
        with anyio.move_on_after(0.01) as scope:
            res = await wddmemu.run_scenario_async(SPEC)
        return res, scope.cancelled_caught, time.monotonic() - t0

    (res, cancelled, took), ticks = anyio.run(_with_ticker, body, backend=backend)
    assert took > 0.05  # long enough for the deadline and for many ticks
    assert ticks == 0 and not cancelled  # the loop never ran the ticker; the deadline passed
    assert res.run.decisions == plain.run.decisions  # the same run as run_scenario's


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_timeout_stops_the_run_as_a_hang(backend: str) -> None:
    async def body() -> Any:
        t0 = time.monotonic()
        res = await wddmemu.run_scenario_async(
            RunSpec("dynamic-vb-ring", strategy="pos", seed=1, params={"frames": 5000}),
            timeout=0.1)
        return res, time.monotonic() - t0

    (res, took), _ticks = anyio.run(_with_ticker, body, backend=backend)
    assert res.run.failure is not None and res.run.failure.kind == "hang" and took < 1.0


def test_a_worker_thread_keeps_the_loop_responsive() -> None:
    plain = wddmemu.run_scenario(SPEC)

    async def body() -> Any:
        return await anyio.to_thread.run_sync(wddmemu.run_scenario, SPEC)

    res, ticks = anyio.run(_with_ticker, body)
    assert ticks > 3 and res.run.decisions == plain.run.decisions


async def _empty() -> None:
    return None


#: each synchronous entry point, called inside a running loop, and the name it refuses with
SYNC_ENTRIES = {
    "wddmemu.run_scenario()": lambda: wddmemu.run_scenario(SPEC),
    "wddmemu.check_program()": lambda: wddmemu.check_program(_empty, schedules=1),
    "wddmemu.explore()": lambda: wddmemu.explore(SPEC, wddmemu.ExploreOptions(schedules=1)),
    "wddmemu.replay()": lambda: wddmemu.replay(None),  # refused before its argument is looked at
    "Engine.run()": lambda: vt.Engine("fifo").run(_empty),
    "run_many()": lambda: vt.run_many(vt.Engine("fifo").run_async, [_empty]),
}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("name", list(SYNC_ENTRIES))
def test_a_synchronous_entry_inside_a_running_loop_is_refused_in_one_line(
        name: str, backend: str) -> None:
    async def body() -> str:
        with pytest.raises(vt.LoopRunningError) as info:
            SYNC_ENTRIES[name]()
        return str(info.value)

    msg = anyio.run(body, backend=backend)
    assert msg.startswith(f"{name} starts an event loop and {backend} is already running")
    assert "anyio.to_thread.run_sync" in msg and "\n" not in msg
    if name.startswith("wddmemu."):  # each has its async form
        assert f"await {name[:-2]}_async(...)" in msg


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_results_spec_names_the_loops_backend(backend: str) -> None:
    """h10: on a trio loop the result's spec said asyncio (the spec's default), so a failure
    file saved from it named the wrong backend."""
    async def body() -> Any:
        return await wddmemu.run_scenario_async(SPEC)

    res = anyio.run(body, backend=backend)
    assert SPEC.backend == "asyncio" and res.spec.backend == backend
    assert res.run.decisions == wddmemu.run_scenario(SPEC).run.decisions


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_async_forms_give_the_synchronous_results_and_keep_the_loop_going(
        backend: str, tmp_path) -> None:
    """explore_async, replay_async and check_program_async run their twins in a worker
    thread: the same results, and the caller's loop runs its other tasks meanwhile."""
    spec = RunSpec("dynamic-vb-ring", driver="track-in-lockasync")
    opts = wddmemu.ExploreOptions(schedules=40, strategy="pos", minimise=False)
    plain = wddmemu.explore(spec, opts)
    assert plain.failures
    ff = wddmemu.load_failure(wddmemu.save_failure(plain.failures[0], tmp_path))

    async def body() -> Any:
        res = await wddmemu.explore_async(spec, opts)
        out = await wddmemu.replay_async(ff)
        prog = await wddmemu.check_program_async(_empty, schedules=3, strategy="dpor")
        # and a longer one (30 clean schedules, ~0.3 s), for the ticker to show the loop free
        clean = await wddmemu.explore_async(RunSpec("dynamic-vb-ring"), wddmemu.ExploreOptions(
            schedules=30, minimise=False))
        assert clean.runs == 30 and not clean.failures
        return res, out, prog

    (res, out, prog), ticks = anyio.run(_with_ticker, body, backend=backend)
    assert [f.spec.decisions for f in res.failures] == [f.spec.decisions for f in plain.failures]
    assert (res.runs, res.exhausted) == (plain.runs, plain.exhausted)
    again = wddmemu.replay(ff)
    assert out.kind == again.kind == "reproduced"
    assert (out.expected, out.got, out.run.decisions) == (again.expected, again.got,
                                                         again.run.decisions)
    assert prog.ok and prog.claim.startswith("exhausted")
    assert ticks > 3  # the loop ran its ticker while the work went on in the thread
