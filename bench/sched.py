"""Scheduler benchmark: the cost of the engine's handoff against the substrate's limit.

Prints, for asyncio and trio, in one process:

* raw handoff: two anyio tasks passing control back and forth with ``anyio.Event`` — the cheapest
  way to switch tasks through anyio's public API;
* forced switch: two emulated threads, a strategy that always picks the other one, a checkpoint
  per step — the cost of a context switch through the scheduler;
* non-switching point: a checkpoint the strategy does not switch at, alone and with another
  thread ready (fifo asked and keeps the current thread).

Ratios are against the raw handoff measured in the same process, on the same backend. The
machine is noisy: each figure is the best of several repeats. Run: ``python bench/sched.py``.
"""

from __future__ import annotations

import argparse
import time

import anyio

import vthreads as vt

N_SWITCH = 20_000
N_POINT = 200_000
REPEATS = 5


async def raw_handoff(n: int) -> float:
    """µs per handoff between two tasks through anyio.Event."""
    state = {"a": anyio.Event(), "b": anyio.Event()}

    async def side(me: str, other: str, first: bool) -> None:
        for _ in range(n):
            if not first:
                await state[me].wait()
                state[me] = anyio.Event()
            first = False
            state[other].set()
        # the last handoff wakes a side that stops waiting

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(side, "a", "b", True)
        tg.start_soon(side, "b", "a", False)
    return (time.perf_counter() - t0) / (2 * n) * 1e6


class Alternate(vt.Strategy):
    """Always switch to another thread: every point is a context switch."""

    name = "alternate"

    def choose(self, current, ready, step):
        return ready[0]


async def _spin(n: int) -> None:
    for _ in range(n):
        await vt.checkpoint()


async def _two_spinners(n: int) -> None:
    a = vt.spawn("a", _spin, n)
    b = vt.spawn("b", _spin, n)
    await a.join()
    await b.join()


async def forced_switch(backend: str, n: int) -> float:
    eng = vt.Engine(Alternate(), backend=backend, step_budget=10 * n)
    t0 = time.perf_counter()
    r = await eng.run_async(_two_spinners, n)
    dt = time.perf_counter() - t0
    assert r.ok, r.summary()
    return dt / r.statistics.switches * 1e6


async def point_alone(backend: str, n: int) -> float:
    eng = vt.Engine("fifo", backend=backend, step_budget=10 * n)
    t0 = time.perf_counter()
    r = await eng.run_async(_spin, n)
    dt = time.perf_counter() - t0
    assert r.ok and r.statistics.switches == 0
    return dt / n * 1e6


async def _spin_with_idle_peer(n: int) -> None:
    ev = vt.Event("go")

    async def peer() -> None:
        await vt.checkpoint()  # stays ready until main blocks

    vt.spawn("peer", peer)
    await _spin(n)
    ev.set()


async def point_fifo_decides(backend: str, n: int) -> float:
    eng = vt.Engine("fifo", backend=backend, step_budget=10 * n)
    t0 = time.perf_counter()
    r = await eng.run_async(_spin_with_idle_peer, n)
    dt = time.perf_counter() - t0
    assert r.ok
    return dt / n * 1e6


def best(backend: str, fn, *args) -> float:
    return min(anyio.run(fn, *args, backend=backend) for _ in range(REPEATS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = ap.parse_args()
    ns, np_ = (N_SWITCH // 10, N_POINT // 10) if args.quick else (N_SWITCH, N_POINT)
    print(f"{'backend':8} {'raw handoff':>12} {'forced switch':>14} {'ratio':>6} "
          f"{'point alone':>12} {'point fifo':>11}")
    for backend in ("asyncio", "trio"):
        raw = best(backend, raw_handoff, ns)
        sw = min(anyio.run(forced_switch, backend, ns, backend=backend) for _ in range(REPEATS))
        pa = min(anyio.run(point_alone, backend, np_, backend=backend) for _ in range(REPEATS))
        pf = min(anyio.run(point_fifo_decides, backend, np_, backend=backend)
                 for _ in range(REPEATS))
        print(f"{backend:8} {raw:10.2f}µs {sw:12.2f}µs {sw / raw:5.2f}x "
              f"{pa:10.3f}µs {pf:9.3f}µs")
    print("targets: forced switch <= 1.2x raw handoff; non-switching point <= 1 µs")


if __name__ == "__main__":
    main()
