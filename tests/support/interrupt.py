"""Ctrl-C in a subprocess: run ``wddmemu ARGS``, wait until it has reached the point to
interrupt (a file appears), send SIGINT, collect the exit code and the output.

The drivers here are importable by name (``tests.support.interrupt:spinning``) from a
``wddmemu`` subprocess that has the repository on its ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from umd import ReferenceDevice, ReferenceDriver

ROOT = Path(__file__).resolve().parents[2]
#: the file :class:`SpinsWhenMarked` adds a line to each time it starts spinning
MARK_VARIABLE = "WDDMEMU_TEST_SPINNING"


def has_saved(saved: Path) -> bool:
    """Whether ``saved`` is a file, or a directory holding a finished file: a ``.NAME.….tmp``
    is a write in progress (``wddmemu/_files.py:atomic_path``), which a Ctrl-C landing now
    removes. Counting it made the campaign Ctrl-C test see an empty save directory after the
    interrupt (CI, d898840)."""
    if saved.is_file():
        return True
    return saved.is_dir() and any(not (f.name.startswith(".") and f.name.endswith(".tmp"))
                                  for f in saved.iterdir())


def interrupt_once_saved(args: list[str], saved: Path, cwd: Path,
                         env: dict[str, str] | None = None,
                         until: Callable[[], bool] | None = None,
                         group: bool = False) -> tuple[int, str, str]:
    """Run ``wddmemu ARGS`` in a subprocess (``env`` added to the environment, the repository
    on its path), send SIGINT once ``saved`` is a file or a directory with a finished file in
    it (:func:`has_saved`; and ``until()`` is true, if given); the exit code, stdout and
    stderr. ``group``: the command runs in a process group of its own and the SIGINT goes to
    the whole group, its worker processes too, as a terminal's Ctrl-C does."""
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full.get("PYTHONPATH")) if p)
    p = subprocess.Popen([sys.executable, "-m", "wddmemu._cli", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=cwd, env=full,
                         start_new_session=group)
    try:
        deadline = time.monotonic() + 120
        while not (has_saved(saved) and (until is None or until())):
            if p.poll() is not None:
                raise AssertionError(f"ended before the interrupt: {p.communicate()}")
            assert time.monotonic() < deadline, "never reached the point to interrupt"
            time.sleep(0.02)
        if group:
            os.killpg(p.pid, signal.SIGINT)
        else:
            p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, out, err


class SpinsWhenMarked(ReferenceDevice):
    """Rename spins for ever in a CPU loop (no scheduling point, no checkpoint of the event
    loop); it first adds a line to the file named by :data:`MARK_VARIABLE`, if set."""

    async def pfn_rename(self, args: Any) -> int:
        mark = os.environ.get(MARK_VARIABLE)
        if mark:  # one line each time a run starts spinning
            with open(mark, "a") as f:
                f.write("spinning\n")
        n = 0
        while True:
            n += 1


def spinning() -> ReferenceDriver:
    """A fresh spinning driver per run (a driver object serves one run only)."""
    return ReferenceDriver(device_class=SpinsWhenMarked)


class RaisesInRename(ReferenceDevice):
    """Rename raises: the user's frame a traceback must show."""

    async def pfn_rename(self, args: Any) -> int:
        raise ValueError("rename exploded")  # the line the traceback names


def raising() -> ReferenceDriver:
    """A fresh raising driver per run."""
    return ReferenceDriver(device_class=RaisesInRename)
