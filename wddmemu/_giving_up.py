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
process), or, with none (an API caller), is raised as :class:`RunNotStopped`.

A worker of a remote cluster is the cluster owner's: it is never ended, and it may run other
clients' tasks on other threads. Its task's run gets a last resort of its own instead
(:func:`task_resort`, read by the watchdog of each run in the task's thread), which sends the
line to the command over the cluster (``wddmemu/_cluster.py``); the command's :class:`Inbox`
takes it and answers it as a box's line, saying that the worker still runs the code
(docs/cluster.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path

from vthreads.lowlevel import last_resort, set_last_resort

from ._errors import EXIT_FAIL
from ._files import write_atomically

#: the environment variable that gives a ``local:N`` worker the box (LocalCluster's ``env``)
BOX_ENV = "WDDMEMU_GIVE_UP_BOX"


class RunNotStopped(RuntimeError):
    """A run in a worker process went on past the watchdog's last resort: the code under test
    swallows every stop. The message is the run's failure line and what became of the worker
    (ours: ended; a remote cluster's: still running it)."""


class GaveUp(Exception):
    """Raised in the command by :func:`check_open_boxes`: a worker gave up (its line is in a
    box or an inbox); the block that opened it answers it."""


#: how the boxes and inboxes open in this process are looked into (their line, or None),
#: oldest first
_open: list[Callable[[], str | None]] = []

#: the last resort of the runs of this thread's task (:func:`task_resort`), or None
_task_resort: ContextVar[Callable[[str], None] | None] = ContextVar("wddmemu_task_resort",
                                                                  default=None)


@contextmanager
def _answered(look: Callable[[], str | None], died: tuple[type[BaseException], ...],
              close: Callable[[], None], ended: bool) -> Iterator[None]:
    """Open ``look`` for the block. The block ending in :class:`GaveUp` or one of ``died``
    with a line to look at is answered (:func:`answer`) after ``close``; without one, the
    exception goes on (another box's line, or a worker killed otherwise)."""
    _open.append(look)
    line = None
    try:
        yield
    except (GaveUp, *died):
        line = look()
        if line is None:
            raise
    finally:
        _open.remove(look)
        close()
    if line is not None:
        raise answer(line, ended=ended)


@contextmanager
def give_up_box(*died: type[BaseException]) -> Iterator[Path]:
    """A new box for the workers of one pool or cluster of ours, open (:func:`check_open_boxes`)
    for the block; removed, with what is in it, after. The block ending in :class:`GaveUp`, or
    in one of ``died`` (how its pool or cluster says a worker died), with a line in the box, is
    answered (:func:`answer`) once the pool or cluster inside it is shut down; without a line
    (a worker killed otherwise: the OOM killer, a signal) the exception goes on."""
    box = Path(tempfile.mkdtemp(prefix="wddmemu-give-up-"))
    with _answered(partial(given_up, box), died,
                   partial(shutil.rmtree, box, ignore_errors=True), ended=True):
        yield box


class Inbox:
    """Where the runs of a cluster the command does not own send their line (``put``, from
    the client's own thread) when nothing stops them: the first one is the answer."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def put(self, line: str) -> None:
        self._lines.append(line)

    def line(self) -> str | None:
        lines = self._lines
        return lines[0] if lines else None


@contextmanager
def open_inbox() -> Iterator[Inbox]:
    """An :class:`Inbox`, open (:func:`check_open_boxes`) for the block; a line in it ends
    the block in :func:`answer`, its worker not ended (it is not ours)."""
    inbox = Inbox()
    with _answered(inbox.line, (), lambda: None, ended=False):
        yield inbox


@contextmanager
def task_resort(resort: Callable[[str], None]) -> Iterator[None]:
    """Every run this thread starts in the block takes ``resort`` as its last resort, in
    place of the process's (``Watchdog(resort=...)``; :func:`current_task_resort`)."""
    token = _task_resort.set(resort)
    try:
        yield
    finally:
        _task_resort.reset(token)


def current_task_resort() -> Callable[[str], None] | None:
    """The last resort :func:`task_resort` gave this thread's runs, or None."""
    return _task_resort.get()


def check_open_boxes() -> None:
    """Raise :class:`GaveUp` if a worker gave up into an open box or inbox. The command calls
    this while it waits on its tasks: a dead worker's task would otherwise be run again on
    another worker, only to spin there too (Dask retries it three times, ~5 s each), and a
    remote worker's task never returns."""
    for look in _open:
        if look() is not None:
            raise GaveUp


def take_box(box: str | Path) -> None:
    """In a worker process: give up into ``box`` when a run nothing stops reaches the last
    resort. A process that has a resort of its own keeps it."""
    if last_resort() is None:
        set_last_resort(lambda line: _give_up(Path(box), line))


def take_box_from_env() -> bool:
    """:func:`take_box` on the box :data:`BOX_ENV` names, if it names one (a ``local:N``
    worker; a cluster's task entry calls this); returns whether it did."""
    box = os.environ.get(BOX_ENV)
    if box:
        take_box(box)
    return bool(box)


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


def answer(line: str, *, ended: bool = True) -> RunNotStopped:
    """Hand a worker's line to this process's last resort (the CLI's ends the process, exit 1);
    returns, when there is none, the :class:`RunNotStopped` to raise. ``ended``: the worker
    was ours and is gone (else a remote worker's line says where it still runs)."""
    resort = last_resort()
    if resort is not None:
        resort(line)
    worker = "its worker was ended" if ended else "restart that worker"
    return RunNotStopped(f"{line} (the code under test swallows every stop; {worker})")
