"""Scheduler benchmark: the cost of the engine's handoff against the bare primitive under it.

Prints, for asyncio and trio, in one process:

* bare trampoline: two bare coroutines handing control back and forth through a host loop that
  resumes them with ``coro.send`` in their own contexts — the very primitive controlled
  strategies hand over with (vthreads._trampoline), and nothing else: the floor of a handoff;
* bare handoff: two tasks passing control through the parker the ``free`` strategy wakes its
  threads with (an asyncio future; trio's ``wait_task_rescheduled``/``reschedule``), for
  comparison with what every handoff paid before the trampoline;
* forced switch: two emulated threads, a strategy that always picks the other one, a checkpoint
  per step — a context switch through the whole scheduler (step count, strategy call, decision
  recording, state bookkeeping, the trampoline);
* non-switching point: a checkpoint the strategy does not switch at, alone (no choice: the
  strategy is not asked) and with another thread ready (fifo asked, keeps the current thread).

Honesty rules: every figure is per operation; the measurements are *interleaved* (each repetition
runs every measurement once, in the same order, so drift and noise spread over all of them rather
than over whichever ran last); the figure shown is the *median* over repetitions, with the
spread (min–max) beside it; both wall time (``perf_counter``) and CPU time of the process
(``process_time``) are shown — on a loaded machine the CPU figure is the stabler one. Ratios are
against the bare trampoline, on the same backend, in the same process.

Then the micro-model of issue 13: 3 emulated threads x 10 checkpoints under ``random`` (a
switch at almost every point), one schedule per seed, against the same program as bare trio tasks
(a nursery of 3 tasks x 10 ``trio.lowlevel.checkpoint()``) under one ``trio.run`` each. Ours is
timed as an exploration runs it (``vthreads.run_many``: one event loop for all the schedules) and
as single ``Engine.run`` calls (one loop each). The ratio is the bare program's CPU time per
schedule over ours: above 1 means faster than bare trio; the goal is >= 2.

Run: ``python bench/sched.py`` (``--quick`` for a smoke run, ``--repeats N``).
"""

from __future__ import annotations

import argparse
import contextvars
import statistics
import time
from collections.abc import Callable
from typing import Any

import anyio
import trio

import vthreads as vt
from vthreads.lowlevel import parker_class  # the primitive under test

N_SWITCH = 20_000
N_POINT = 200_000
REPEATS = 7


def _parker() -> Any:
    import sniffio

    return parker_class(sniffio.current_async_library())()


async def bare_handoff(n: int) -> int:
    """``n`` round trips between two tasks on the engine's parker; returns handoffs done."""
    pa, pb = _parker(), _parker()

    async def side(me: Any, other: Any, rounds: int, starts: bool) -> None:
        # the starter wakes first and ends by taking the other's last wake
        for i in range(rounds):
            if i or not starts:
                await me.park()
            other.wake()
        if starts:
            await me.park()

    async with anyio.create_task_group() as tg:
        tg.start_soon(side, pa, pb, n, True)
        tg.start_soon(side, pb, pa, n, False)
    return 2 * n


async def bare_trampoline(n: int) -> int:
    """``n`` round trips between two coroutines resumed by a host loop (``coro.send`` in each
    coroutine's own context, as the trampoline does); returns handoffs done."""
    park = object()

    class _Yield:
        def __await__(self) -> Any:
            yield park

    to_host = _Yield()

    async def side(rounds: int) -> None:
        for _ in range(rounds):
            await to_host

    coros = [side(n), side(n)]
    ctxs = [contextvars.copy_context(), contextvars.copy_context()]
    done, i = 0, 0
    while done < 2:
        try:
            ctxs[i].run(coros[i].send, None)
        except StopIteration:
            done += 1
        i ^= 1
    return 2 * n


class Alternate(vt.Strategy):
    """Always switch to another thread: every point is a context switch."""

    name = "alternate"

    def choose(self, runnable, step, *, current):
        return runnable[1] if current is not None else runnable[0]


async def _spin(n: int) -> None:
    for _ in range(n):
        await vt.checkpoint()


async def _two_spinners(n: int) -> None:
    a = vt.spawn("a", _spin, n)
    b = vt.spawn("b", _spin, n)
    await a.join()
    await b.join()


async def forced_switch(n: int) -> int:
    r = await vt.Engine(Alternate(), step_budget=10 * n).run_async(_two_spinners, n)
    assert r.ok, r.summary()
    return r.statistics.switches


async def point_alone(n: int) -> int:
    r = await vt.Engine("fifo", step_budget=10 * n).run_async(_spin, n)
    assert r.ok and r.statistics.switches == 0
    return n


async def _spin_with_idle_peer(n: int) -> None:
    async def peer() -> None:
        await vt.checkpoint()  # stays ready until main finishes spinning

    vt.spawn("peer", peer)
    await _spin(n)


async def point_fifo_decides(n: int) -> int:
    r = await vt.Engine("fifo", step_budget=10 * n).run_async(_spin_with_idle_peer, n)
    assert r.ok and r.statistics.decisions >= n
    return n


async def _timed(fn: Callable[[int], Any], n: int) -> tuple[float, float]:
    # timed inside the running loop: event-loop start-up and teardown are not the handoff's
    w0, c0 = time.perf_counter(), time.process_time()
    ops = await fn(n)
    w1, c1 = time.perf_counter(), time.process_time()
    return (w1 - w0) / ops * 1e6, (c1 - c0) / ops * 1e6


def _measure(backend: str, fn: Callable[[int], Any], n: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per operation for one run of ``fn(n)``."""
    return anyio.run(_timed, fn, n, backend=backend)


MEASUREMENTS: list[tuple[str, Callable[[int], Any], str]] = [
    ("bare trampoline", bare_trampoline, "switch"),
    ("bare handoff", bare_handoff, "switch"),
    ("forced switch", forced_switch, "switch"),
    ("point alone", point_alone, "point"),
    ("point fifo", point_fifo_decides, "point"),
]


def run(backends: tuple[str, ...], n_switch: int, n_point: int, repeats: int
        ) -> dict[tuple[str, str], list[tuple[float, float]]]:
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(repeats):  # interleaved: one of each per repetition
        for backend in backends:
            for label, fn, kind in MEASUREMENTS:
                n = n_switch if kind == "switch" else n_point
                samples.setdefault((backend, label), []).append(_measure(backend, fn, n))
    return samples


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def report(samples: dict[tuple[str, str], list[tuple[float, float]]],
           backends: tuple[str, ...]) -> None:
    print(f"{'backend':8} {'measurement':15} {'wall µs (median, min-max)':>28} "
          f"{'cpu µs':>8} {'x bare (wall/cpu)':>18}")
    for backend in backends:
        bare = samples[(backend, "bare trampoline")]
        bw, bc = _median([w for w, _ in bare]), _median([c for _, c in bare])
        for label, _, _ in MEASUREMENTS:
            s = samples[(backend, label)]
            walls, cpus = [w for w, _ in s], [c for _, c in s]
            w, c = _median(walls), _median(cpus)
            ratio = f"{w / bw:5.2f} / {c / bc:5.2f}" if label != "point alone" and \
                label != "point fifo" else ""
            print(f"{backend:8} {label:15} {w:9.3f} ({min(walls):.3f}-{max(walls):.3f})    "
                  f"{c:8.3f} {ratio:>18}")
    for backend in backends:
        fs, bh = (_median([c for _, c in samples[(backend, k)]])
                  for k in ("forced switch", "bare handoff"))
        print(f"{backend}: forced switch / bare parker handoff (cpu) = {fs / bh:.2f}")
    print("targets: forced switch <= 1.2x bare parker handoff; non-switching point <= 1 µs")


# ---- the micro-model: 3 threads x 10 checkpoints, against bare trio tasks ----------------

MM_THREADS, MM_POINTS = 3, 10


async def _mm_spin(k: int) -> None:
    for _ in range(k):
        await vt.checkpoint()


async def mm_program() -> None:
    ts = [vt.spawn(f"t{i}", _mm_spin, MM_POINTS) for i in range(MM_THREADS)]
    for t in ts:
        await t.join()


async def _trio_spin(k: int) -> None:
    for _ in range(k):
        await trio.lowlevel.checkpoint()


async def mm_trio_program() -> None:
    async with trio.open_nursery() as n:
        for _ in range(MM_THREADS):
            n.start_soon(_trio_spin, MM_POINTS)


def mm_bare_trio(count: int) -> None:
    for _ in range(count):
        trio.run(mm_trio_program)


def mm_run_many(backend: str) -> Callable[[int], None]:
    def go(count: int) -> None:
        vt.run_many(lambda i: vt.Engine("random", seed=i).run_async(mm_program), range(count),
                    backend=backend)
    return go


def mm_engine_run(backend: str) -> Callable[[int], None]:
    def go(count: int) -> None:
        for i in range(count):
            vt.Engine("random", seed=i, backend=backend).run(mm_program)
    return go


MICRO: list[tuple[str, Callable[[int], None]]] = [
    ("bare trio tasks, trio.run each", mm_bare_trio),
    ("vthreads run_many, trio", mm_run_many("trio")),
    ("vthreads run_many, asyncio", mm_run_many("asyncio")),
    ("vthreads Engine.run, trio", mm_engine_run("trio")),
    ("vthreads Engine.run, asyncio", mm_engine_run("asyncio")),
]


def micro_model(count: int, repeats: int) -> dict[str, float]:
    """CPU µs per schedule (median over interleaved repetitions) of each MICRO entry."""
    samples: dict[str, list[float]] = {label: [] for label, _ in MICRO}
    for _ in range(repeats):
        for label, fn in MICRO:
            c0 = time.process_time()
            fn(count)
            samples[label].append((time.process_time() - c0) / count * 1e6)
    return {label: _median(xs) for label, xs in samples.items()}


def report_micro(per_schedule: dict[str, float]) -> None:
    bare = per_schedule[MICRO[0][0]]
    print(f"\nmicro-model: {MM_THREADS} threads x {MM_POINTS} checkpoints, CPU µs per schedule "
          "(median); ratio = bare trio / ours (goal >= 2)")
    for label, us in per_schedule.items():
        print(f"  {label:32} {us:9.1f}  x{bare / us:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    ap.add_argument("--repeats", type=int, default=REPEATS)
    args = ap.parse_args()
    ns, np_ = (N_SWITCH // 10, N_POINT // 10) if args.quick else (N_SWITCH, N_POINT)
    backends = ("asyncio", "trio")
    report(run(backends, ns, np_, max(1, args.repeats)), backends)
    report_micro(micro_model(50 if args.quick else 300, max(1, args.repeats)))


if __name__ == "__main__":
    main()
