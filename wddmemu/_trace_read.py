"""Reading a trace log (JSON lines, ``docs/trace.md``) one line at a time.

Every trace tool (``wddmemu trace summary|export|plot``) reads through :func:`iter_events`, which
keeps one line in memory at a time, so a trace of millions of lines is read in bounded memory.
A line that is not a JSON object, or that lacks ``step``, ``t`` or ``event``, stops the read with
a :class:`TraceFormatError` naming the file and the line number; an empty or missing file is an
error too. Blank lines are skipped (a trailing newline is not a malformed line).

Reads are bounded (issue 14): a line longer than :data:`MAX_LINE` bytes stops the read with an
error after reading at most that much (``/dev/zero`` ends at once, a 1 GB line never needs GBs).
A last line that is cut short — no newline and not JSON, as a killed writer leaves it — is
dropped with a warning (``warn``; stderr by default): the events before it are summarised.
Quoted file contents have their control bytes escaped (:func:`wddmemu._files.printable`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from ._files import printable

#: keys every line carries besides the event's own fields
HEAD_KEYS = ("step", "t", "thread", "event")
#: the run context bound into every line (docs/trace.md)
CONTEXT_KEYS = ("scenario", "seed", "strategy", "backend")
#: the longest trace line read (bytes); the writer's lines are a few hundred
MAX_LINE = 4 << 20


class TraceFormatError(ValueError):
    """The trace cannot be read: ``str(e)`` is one line, ``FILE:LINE: what`` (or ``FILE: what``
    when no particular line is at fault)."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


def _diagnose(path: str | Path, lineno: int, raw: bytes) -> TraceFormatError:
    """The error for a line that failed the fast check in :func:`iter_events`."""
    try:
        ev = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        text = printable(raw.strip())
        return TraceFormatError(path, lineno, f"not a JSON line ({e.msg.lower()}): {text}")
    if not isinstance(ev, dict):
        return TraceFormatError(path, lineno, "not a trace event: expected a JSON object")
    for key, typ, what in (("step", int, "an integer"), ("t", int, "an integer"),
                           ("event", str, "a string")):
        v = ev.get(key)
        if type(v) is not typ:
            why = "missing" if v is None else f"not {what}"
            return TraceFormatError(path, lineno, f"'{key}' is {why}: is this a wddmemu trace?")
    return TraceFormatError(path, lineno, "'thread' must be a string or null")


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"wddmemu: warning: {message}\n")


def _lines(f: IO[bytes], path: str | Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line_number, line, is_last)`` of ``f``, each line read with a bound."""
    lineno, line = 1, f.readline(MAX_LINE + 1)
    while line:
        if len(line) > MAX_LINE:
            raise TraceFormatError(path, lineno, f"line longer than {MAX_LINE:,} bytes: is "
                                   "this a wddmemu trace?")
        nxt = f.readline(MAX_LINE + 1)
        yield lineno, line, not nxt
        lineno, line = lineno + 1, nxt


def iter_events(path: str | Path, warn: Callable[[str], None] | None = None
                ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, event)`` for every line of the trace at ``path``, in order.

    Raises :class:`TraceFormatError` for a missing, unreadable or empty file, for a line over
    :data:`MAX_LINE` bytes and for the first malformed line (with its 1-based number), except a
    cut last line, which goes to ``warn`` (stderr by default) and is skipped."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in the finally below (a generator)
    except FileNotFoundError:
        raise TraceFormatError(path, None, "no such file") from None
    except IsADirectoryError:
        raise TraceFormatError(path, None, "is a directory, not a trace file") from None
    except OSError as e:
        raise TraceFormatError(path, None, f"cannot read: {e.strerror}") from None
    seen = 0
    loads = orjson.loads
    try:
        for lineno, raw, last in _lines(f, path):
            try:
                ev = loads(raw)
            except orjson.JSONDecodeError:
                if not raw.strip():
                    continue  # blank line
                if last and not raw.endswith(b"\n") and seen:
                    (warn or _stderr_warning)(f"{path}:{lineno}: the last line is cut short "
                                              "(was the writer killed?): ignored")
                    break
                raise _diagnose(path, lineno, raw) from None
            # the fast check; _diagnose says what is wrong when it fails
            if (type(ev) is not dict or type(ev.get("step")) is not int
                    or type(ev.get("t")) is not int or type(ev.get("event")) is not str):
                raise _diagnose(path, lineno, raw)
            th = ev.get("thread")
            if th is not None and type(th) is not str:
                raise _diagnose(path, lineno, raw)
            seen += 1
            yield lineno, ev
    except OSError as e:
        raise TraceFormatError(path, None, f"cannot read: {e.strerror}") from None
    finally:
        f.close()
    if not seen:
        raise TraceFormatError(path, None, "empty trace: no events (was the run traced?)")


def event_fields(ev: dict[str, Any]) -> dict[str, Any]:
    """The event's own fields: everything but the head keys and the run context."""
    return {k: v for k, v in ev.items() if k not in HEAD_KEYS and k not in CONTEXT_KEYS}
