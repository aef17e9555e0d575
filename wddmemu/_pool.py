"""The worker processes of ``--jobs N`` on this machine (explore's chunks, the dfs and dpor
splits, a campaign's cells): one pool, and one answer to Ctrl-C and to a run nothing stops.

The parent answers Ctrl-C, never a worker. A terminal sends SIGINT to the whole process group,
so every forked worker got it too, with the parent's handler: each idle one printed a
``KeyboardInterrupt`` traceback, and one interrupted inside the pool's queue could leave the
queue's lock held, after which the pool never shut down and the command hung in its exit
(both found by fuzzing, 7 December). Workers therefore ignore SIGINT; the parent stops the
search, reports what it found, and ends the workers itself: a task still running is unwanted,
and a driver spinning in a CPU loop under ``--timeout 0`` would never end on its own.

A run that swallows every stop keeps its worker for good; each worker gives up into the
pool's box instead, and the parent answers with the line (``wddmemu/_giving_up.py``).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

from ._giving_up import give_up_box, take_box


def _worker_start(box: Path) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    take_box(box)


@contextmanager
def worker_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``jobs`` worker processes that ignore SIGINT. Leaving the block normally waits
    for the pool; leaving it on an exception (Ctrl-C above all) drops the queued tasks and
    terminates the workers this pool started, then waits for them. A worker whose run nothing
    could stop ends the pool: the parent's last resort gets the run's line, or
    ``RunNotStopped`` is raised (``wddmemu/_giving_up.py``)."""
    # the pool starts its workers as tasks come: those that were not there before are its own
    before = {p.pid for p in multiprocessing.active_children()}
    with give_up_box(BrokenProcessPool) as box:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_start,
                                   initargs=(box,))
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in multiprocessing.active_children():
                if proc.pid not in before:
                    proc.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
