"""The worker processes of ``--jobs N`` on this machine (explore's chunks, the dfs and dpor
splits, a campaign's cells): one pool, and one answer to Ctrl-C and to a run nothing stops.

The parent answers Ctrl-C, never a worker. A terminal sends SIGINT to the whole process group,
so every forked worker got it too, with the parent's handler: each idle one printed a
``KeyboardInterrupt`` traceback, and one interrupted inside the pool's queue could leave the
queue's lock held, after which the pool never shut down and the command hung in its exit
(both found by fuzzing, 7 December). Workers therefore ignore SIGINT; the parent stops the
search, reports what it found, and ends the workers itself: a task still running is unwanted,
and a driver spinning in a CPU loop under ``--timeout 0`` would never end on its own.

A run that swallows every stop (the watchdog's ``Hang``, an ``except BaseException`` in a CPU
loop: sweep E D6) keeps its worker for good, and the parent waited on its chunk forever. Each
worker is ours, not the application's, so it has a last resort of its own
(``vthreads.lowlevel.set_last_resort``): it hands the run's failure line to the parent and ends
itself. The parent, seeing the pool broken and the line, ends the other workers and gives the
line to *its* last resort (the CLI's says so and exits 1, as one process does), or raises
:class:`RunNotStopped` when it has none (an API caller).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from functools import partial
from multiprocessing.queues import SimpleQueue

from vthreads.lowlevel import last_resort, set_last_resort

from ._errors import EXIT_FAIL


class RunNotStopped(RuntimeError):
    """A run in a ``--jobs`` worker went on past the watchdog's last resort: the code under test
    swallows every stop. The message is the run's failure line; its worker was ended."""


def _worker_start(gave_up: SimpleQueue) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_last_resort(partial(_worker_gives_up, gave_up))


def _worker_gives_up(gave_up: SimpleQueue, line: str) -> None:
    # from the worker's watchdog thread, while its main thread spins in the code under test.
    # SimpleQueue.put writes to the pipe before it returns (no feeder thread), so the line is
    # there for the parent when the pool sees this process gone
    gave_up.put(line)
    os._exit(EXIT_FAIL)


@contextmanager
def worker_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``jobs`` worker processes that ignore SIGINT. Leaving the block normally waits
    for the pool; leaving it on an exception (Ctrl-C above all) drops the queued tasks and
    terminates the workers this pool started, then waits for them. A worker whose run nothing
    could stop ends the pool: the parent's last resort gets the run's line, or
    :class:`RunNotStopped` is raised."""
    # the pool starts its workers as tasks come: those that were not there before are its own
    before = {p.pid for p in multiprocessing.active_children()}
    gave_up: SimpleQueue = multiprocessing.get_context().SimpleQueue()
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_start,
                               initargs=(gave_up,))
    try:
        yield pool
    except BrokenProcessPool:
        _end(pool, before)
        if gave_up.empty():  # a worker killed otherwise (the OOM killer, a signal)
            raise
        line = gave_up.get()
        resort = last_resort()
        if resort is not None:  # the CLI's: says so and ends the process, exit 1
            resort(line)
        raise RunNotStopped(f"{line} (the code under test swallows every stop; its worker "
                            f"was ended)") from None
    except BaseException:
        _end(pool, before)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        gave_up.close()


def _end(pool: ProcessPoolExecutor, before: set[int | None]) -> None:
    """Drop the queued tasks and terminate the workers this pool started."""
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in multiprocessing.active_children():
        if proc.pid not in before:
            proc.terminate()
