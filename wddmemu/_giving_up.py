"""A worker process whose run nothing stops: it hands the run's line to the command and ends.

Code under test that swallows every stop (the watchdog's ``Hang``, Ctrl-C: an ``except
BaseException`` in a CPU loop, sweep E D6) keeps the process it runs in for good. In the
command's own process the CLI's last resort ends it (``wddmemu/_interrupt.py``). In a worker of
``--jobs N`` or of ``--cluster local:N`` the command waited on that worker's task forever.

Those workers are ours, not the application's, so each takes a last resort of its own
(``vthreads.lowlevel.set_last_resort``): it writes the run's failure line into the command's
*box*, a temporary directory, and ends the worker (``os._exit``). The command, seeing a broken
pool or a worker killed under a task, looks in the box: a line there is a run nothing could
stop, and goes to the command's own last resort (the CLI's prints it and exits 1, as with one
process), or, with none (an API caller), is raised as :class:`RunNotStopped`. A worker of a
remote cluster is the cluster owner's: it gets no box, and such a task still never returns
(docs/cluster.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vthreads.lowlevel import last_resort, set_last_resort

from ._errors import EXIT_FAIL
from ._files import write_atomically

#: the environment variable that gives a ``local:N`` worker the box (LocalCluster's ``env``)
BOX_ENV = "WDDMEMU_GIVE_UP_BOX"


class RunNotStopped(RuntimeError):
    """A run in a worker process went on past the watchdog's last resort: the code under test
    swallows every stop. The message is the run's failure line; its worker was ended."""


class GaveUp(Exception):
    """Raised in the command by :func:`check_open_boxes`: a worker gave up (its line is in the
    box); the :func:`give_up_box` block of the pool or cluster that owns the box answers it."""


#: the boxes of the pools and clusters open in this process, oldest first
_open: list[Path] = []


@contextmanager
def give_up_box(*died: type[BaseException]) -> Iterator[Path]:
    """A new box for the workers of one pool or cluster, open (:func:`check_open_boxes`) for
    the block; removed, with what is in it, after. The block ending in :class:`GaveUp`, or in
    one of ``died`` (how its pool or cluster says a worker died), with a line in the box, is
    answered (:func:`answer`) once the pool or cluster inside it is shut down; without a line
    (a worker killed otherwise: the OOM killer, a signal) the exception goes on."""
    box = Path(tempfile.mkdtemp(prefix="wddmemu-give-up-"))
    _open.append(box)
    line = None
    try:
        yield box
    except (GaveUp, *died):
        line = given_up(box)
        if line is None:
            raise
    finally:
        _open.remove(box)
        shutil.rmtree(box, ignore_errors=True)
    if line is not None:
        raise answer(line)


def check_open_boxes() -> None:
    """Raise :class:`GaveUp` if a worker gave up into an open box. The command calls this
    while it waits on its tasks: a dead worker's task would otherwise be run again on another
    worker, only to spin there too (Dask retries it three times, ~5 s each)."""
    for box in _open:
        if given_up(box) is not None:
            raise GaveUp


def take_box(box: str | Path) -> None:
    """In a worker process: give up into ``box`` when a run nothing stops reaches the last
    resort. A process that has a resort of its own keeps it."""
    if last_resort() is None:
        set_last_resort(lambda line: _give_up(Path(box), line))


def take_box_from_env() -> None:
    """:func:`take_box` on the box :data:`BOX_ENV` names, if it names one (a ``local:N``
    worker; the task entry ``timed_task`` calls this)."""
    box = os.environ.get(BOX_ENV)
    if box:
        take_box(box)


def _give_up(box: Path, line: str) -> None:
    # from the worker's watchdog thread, while its task thread spins in the code under test:
    # the line is on disk (atomically) before the process ends, so it is there when the
    # command sees the worker gone
    try:
        write_atomically(box / f"{os.getpid()}.line", line.encode("utf-8", "replace"))
    finally:
        os._exit(EXIT_FAIL)


def given_up(box: Path) -> str | None:
    """The line of a worker that gave up into ``box`` (the lowest pid's, if several), or None."""
    try:
        lines = sorted(box.glob("*.line"), key=lambda p: int(p.stem))
        return lines[0].read_text("utf-8") if lines else None
    except (OSError, ValueError):
        return None


def answer(line: str) -> RunNotStopped:
    """Hand a worker's line to this process's last resort (the CLI's ends the process, exit 1);
    returns, when there is none, the :class:`RunNotStopped` to raise."""
    resort = last_resort()
    if resort is not None:
        resort(line)
    return RunNotStopped(f"{line} (the code under test swallows every stop; its worker was "
                         f"ended)")
