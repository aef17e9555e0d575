"""Four small concurrency models on vthreads, and how fast each exploration handles them.

The models (each an ``async def main()`` for ``vthreads.Engine.run``):

- ``lost_update``: two threads increment a shared counter with a read and a write; main checks
  the total (the bug: both read before either writes).
- ``lock_order``: two threads take two mutexes in opposite orders (the bug: a deadlock).
- ``flag``: 5 threads, each 10 private points, then check-then-act on a shared flag (read it,
  and if it is clear, set it and enter); two threads inside is the bug. It needs a depth-2
  ordering: one thread reads the flag, another reads it before the first sets it.
- ``correct``: 3 threads, each 6 private points and one mutex section (read-modify-write of a
  shared counter under the mutex); correct, with 3! = 6 equivalence classes (the orders of the
  three sections).

Private points are writes to a per-thread ``SharedCell``: scheduling points that conflict with
nothing. The script prints, per model and strategy, executions to the first detection (medians
over seeds for the seeded ``random`` and ``pct``) and executions to exhaust the search
(``-``: nothing to find; ``>N``: not within N).
Run: ``python bench/models.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import vthreads as vt

Model = Callable[[], Awaitable[Any]]


async def _private(name: str, points: int) -> None:
    mine = vt.SharedCell(f"private.{name}", 0)
    for i in range(points):
        await mine.write(i, f"{name}.private")


async def lost_update() -> int:
    counter = vt.SharedCell("counter", 0)

    async def bump() -> None:
        await counter.update(lambda v: v + 1, "bump")

    ts = [vt.spawn(n, bump) for n in ("a", "b")]
    for t in ts:
        await t.join()
    if counter.peek() != 2:
        raise AssertionError(f"lost update: counter is {counter.peek()}, expected 2")
    return counter.peek()


async def lock_order() -> None:
    m1, m2 = vt.Mutex("m1"), vt.Mutex("m2")

    async def take(first: vt.Mutex, second: vt.Mutex) -> None:
        async with first, second:
            pass

    a = vt.spawn("a", take, m1, m2)
    b = vt.spawn("b", take, m2, m1)
    await a.join()
    await b.join()


def flag_model(threads: int = 5, points: int = 10) -> Model:
    async def main() -> int:
        flag = vt.SharedCell("flag", False)
        inside = vt.SharedCell("inside", 0)

        async def worker(name: str) -> None:
            await _private(name, points)
            if not await flag.read(f"{name}.check"):
                await flag.write(True, f"{name}.set")
                n = await inside.read(f"{name}.enter")
                await inside.write(n + 1, f"{name}.enter")
                if n + 1 > 1:
                    raise AssertionError(f"{name} entered while another thread was inside")

        ts = [vt.spawn(f"w{i}", worker, f"w{i}") for i in range(threads)]
        for t in ts:
            await t.join()
        return inside.peek()

    return main


flag = flag_model()


def correct_model(threads: int = 3, points: int = 6) -> Model:
    async def main() -> int:
        lock = vt.Mutex("lock")
        counter = vt.SharedCell("counter", 0)

        async def worker(name: str) -> None:
            await _private(name, points)
            async with lock:
                await counter.update(lambda v: v + 1, f"{name}.bump")

        ts = [vt.spawn(f"w{i}", worker, f"w{i}") for i in range(threads)]
        for t in ts:
            await t.join()
        if counter.peek() != threads:
            raise AssertionError(f"counter is {counter.peek()}")
        return counter.peek()

    return main


correct = correct_model()

MODELS: dict[str, Model] = {
    "lost update": lost_update,
    "lock-order deadlock": lock_order,
    "flag 5x10 (depth 2)": flag,
    "correct 3x6 + mutex": correct,
}


# ---- measuring ------------------------------------------------------------------------------


def crashed(r: vt.RunResult) -> bool:
    """A detection: the model's own bug (assertion or deadlock), not the race detector's
    ``RACE`` report, which flags the racy models on every schedule."""
    return r.failure is not None


def seeded_to_first(model: Model, strategy: str, depth: int, cap: int, seeds: int) -> str:
    """Median over ``seeds`` of executions until the first failing one (seed ``s`` of the
    sequence is run ``s * 100003 + i``), or ``>cap``."""
    counts = []
    steps = vt.Engine("fifo").run(model).steps  # PCT's k: the length of a run
    for s in range(seeds):
        n = cap + 1
        for i in range(cap):
            r = vt.Engine(strategy, seed=s * 100_003 + i, depth=depth, pct_steps=steps).run(model)
            if crashed(r):
                n = i + 1
                break
        counts.append(n)
    med = statistics.median(counts)
    return f">{cap}" if med > cap else f"{med:g}"


def systematic(model: Model, search: str, cap: int, bound: int | None) -> tuple[str, str]:
    """(executions to the first failure, executions to exhaust) for one systematic search."""
    fn = vt.explore_dpor if search == "dpor" else vt.explore_dfs
    first = fn(model, max_executions=cap, preemption_bound=bound, failing=crashed)
    found = str(first.failing_execution) if first.failure is not None else "-"
    full = first if first.failure is None else fn(
        model, max_executions=cap, preemption_bound=bound, stop_on_failure=False,
        failing=crashed)
    exh = str(full.executions) if full.exhausted else f">{cap}"
    return found, exh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small caps (smoke run)")
    args = ap.parse_args()
    cap, seeds = (2000, 5) if args.quick else (20_000, 11)
    # the harness's first dfs (depth first, deepest backtrack first) is gone; on these models
    # it needed 10/60, 10/55, >20000 and 12635 executions (docs/explore.md keeps the table)
    cols = ["random", "pct d=2", "pct d=3", "dfs(b=2)", "dfs",
            "dpor", "dpor(b=2)"]
    print("executions to the first detection / to exhaust ('>N': not within N)")
    print(f"{'model':22} " + " ".join(f"{c:>14}" for c in cols))
    for name, model in MODELS.items():
        if model is correct:  # nothing to find: sampling never exhausts
            row = ["-", "-", "-"]
        else:
            row = [seeded_to_first(model, "random", 3, cap, seeds),
                   seeded_to_first(model, "pct", 2, cap, seeds),
                   seeded_to_first(model, "pct", 3, cap, seeds)]
        row.append("/".join(systematic(model, "dfs", cap, 2)))
        row.append("/".join(systematic(model, "dfs", cap, None)))
        row.append("/".join(systematic(model, "dpor", cap, None)))
        row.append("/".join(systematic(model, "dpor", cap, 2)))
        print(f"{name:22} " + " ".join(f"{c:>14}" for c in row), flush=True)
    for name, model in MODELS.items():
        res = vt.explore_dpor(model, stop_on_failure=False, failing=crashed)
        print(f"{name}: dpor {res.claim()}")


if __name__ == "__main__":
    main()
