"""The traceback of an exception that escaped user code (a driver's DDI, a scenario body), as
``run``, ``replay`` and explore's explanation print it.

The engine keeps the whole text, as :func:`traceback.format_exception` wrote it, in
``RunResult.failure.details["traceback"]`` (kind ``exception``; docs/explore.md). Printed, the
frames of the emulator's own packages *before* the first frame of your code — the engine's
thread, the runtime's worker and DDI door, the reference driver's entry wrapper — are left out,
with one line saying how many: what remains starts at your code and goes on into whatever it
called (the emulator's frames below yours stay, they say what you called). A traceback with no
frame outside the emulator (a built-in driver's seeded crash) is printed whole.

Only the text the engine stored is read, so the lines are the same on every run of the same
program: no memory address is added (the exception's message is printed as the engine stored
it, which is also what the failure's message says).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

#: the emulator's packages: their frames above the first user frame are left out
EMULATOR_PACKAGES = ("vthreads", "runtime", "umd", "kmd", "wddmemu", "scenarios")
_FRAME = re.compile(r'^  File "(?P<path>[^"]*)", line \d+, in ')
_HEADER = "Traceback (most recent call last):"


@cache
def _emulator_dirs() -> tuple[str, ...]:
    import importlib

    dirs = []
    for name in EMULATOR_PACKAGES:
        mod = importlib.import_module(name)
        dirs.append(str(Path(mod.__file__ or "").resolve().parent) + "/")
    return tuple(dirs)


def is_emulator_file(path: str) -> bool:
    """Whether ``path`` (a frame's file) belongs to one of :data:`EMULATOR_PACKAGES`."""
    try:
        full = str(Path(path).resolve())
    except (OSError, ValueError):
        return False
    return full.startswith(_emulator_dirs())


def _frames(lines: list[str], i: int) -> tuple[list[list[str]], int]:
    """The frame entries of a traceback section from ``lines[i]`` (a ``File`` line and the
    source and caret lines under it), and the index after them."""
    frames: list[list[str]] = []
    while i < len(lines) and _FRAME.match(lines[i]):
        entry = [lines[i]]
        i += 1
        while i < len(lines) and lines[i].startswith("    "):
            entry.append(lines[i])
            i += 1
        frames.append(entry)
    return frames, i


def failure_traceback(failure: Any) -> list[str]:
    """The lines to print for ``failure`` (a ``vthreads.Failure`` or None): the user
    traceback of an ``exception`` failure, nothing for any other kind."""
    if failure is None or failure.kind != "exception":
        return []
    text = failure.details.get("traceback")
    return user_traceback(text) if isinstance(text, str) and text else []


def user_traceback(text: str) -> list[str]:
    """``text`` (a formatted traceback) as lines, each section's leading emulator frames left
    out (see the module docstring). Chained exceptions keep their sections; the nested parts
    of an exception group are kept as they are."""
    lines = text.rstrip("\n").splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if line != _HEADER:
            continue
        frames, i = _frames(lines, i)
        first_user = next((k for k, f in enumerate(frames)
                           if not is_emulator_file(_FRAME.match(f[0])["path"])),  # type: ignore[index]
                          None)
        if first_user:  # None: no user frame, printed whole; 0: nothing to leave out
            n = first_user
            out.append(f"  ({n} frame{'s' if n > 1 else ''} of the emulator before your code "
                       "left out)")
            frames = frames[first_user:]
        for f in frames:
            out += f
    return out
