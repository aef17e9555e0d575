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

Fields are checked where they are used, not by a schema pass per line: the reader checks the
head (``step`` and ``t`` ints in ``0..2**63-1``, ``event`` a string, ``thread`` a string or
null); the tools read the fields they use through :func:`get_str`, :func:`get_int`, … which
raise :class:`FieldError` for a wrong kind, and :func:`feed_events` turns that into a
:class:`TraceFormatError` naming the file and the line (``field 'ddi' is a list, not a
string``). Values copied whole into an output (Chrome ``args``, ``summary --json``) go through
:func:`dumps`, which writes what orjson cannot encode as text (:func:`json_safe`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from ._files import is_path, kind_of, printable

#: keys every line carries besides the event's own fields
HEAD_KEYS = ("step", "t", "thread", "event")
#: the run context bound into every line (docs/trace.md)
CONTEXT_KEYS = ("scenario", "seed", "strategy", "backend")
#: the longest trace line read (bytes); the writer's lines are a few hundred
MAX_LINE = 4 << 20
#: the largest ``step`` and ``t`` (and thread ``tid``) a line may carry: 63 bits, so that the
#: timeline's sums stay within what JSON writers encode
MAX_INT = (1 << 63) - 1
#: containers nested deeper than this in a value copied into an output are written as text
MAX_NESTING = 16
#: the most characters of such a text
MAX_TEXT = 200


class TraceFormatError(ValueError):
    """The trace cannot be read: ``str(e)`` is one line, ``FILE:LINE: what`` (or ``FILE: what``
    when no particular line is at fault)."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        # no path at all (an argument that names no file): the message alone
        super().__init__(f"{where}: {message}" if where else message)


class FieldError(ValueError):
    """A field of one event has the wrong kind (``field 'seq' is a list, not an int``): raised by
    the tools while they use an event; :func:`feed_events` adds the file and line."""


_KINDS = {str: "a string", int: "an int", float: "a float", bool: "a bool", list: "a list",
          dict: "an object", type(None): "null"}


def kind(v: Any) -> str:
    """What a JSON value is, for a message: ``a list``, ``an object``, ``null`` …"""
    return _KINDS.get(type(v), type(v).__name__)


def _wrong(key: str, v: Any, want: str) -> FieldError:
    if type(v) is int:
        return FieldError(f"field '{key}' is {v}, not {want}")
    return FieldError(f"field '{key}' is {kind(v)}, not {want}")


def get_str(ev: dict[str, Any], key: str, default: Any = None) -> Any:
    """``ev[key]`` if it is a string, ``default`` if it is missing or null; else
    :class:`FieldError`."""
    v = ev.get(key)
    if type(v) is str:
        return v
    if v is None:
        return default
    raise _wrong(key, v, "a string")


def get_int(ev: dict[str, Any], key: str, lo: int | None = None,
            hi: int | None = None) -> int | None:
    """``ev[key]`` if it is an int (not a bool) in ``lo..hi``, None if it is missing or null;
    else :class:`FieldError`."""
    v = ev.get(key)
    if type(v) is int:
        if (lo is None or v >= lo) and (hi is None or v <= hi):
            return v
        top = "2**63-1" if hi == MAX_INT else hi
        raise _wrong(key, v, f"an int in {lo}..{top}" if hi is not None else f"an int >= {lo}")
    if v is None:
        return None
    raise _wrong(key, v, "an int")


def get_scalar(ev: dict[str, Any], key: str, default: Any = None) -> Any:
    """``ev[key]`` if it is a string, a number or a bool (a label or a dict key: hashable, short
    to print), ``default`` if it is missing or null; else :class:`FieldError`."""
    v = ev.get(key)
    if v is None:
        return default
    if type(v) in (str, int, float, bool):
        return v
    raise _wrong(key, v, "a string or a number")


def get_failure(ev: dict[str, Any], key: str = "failure") -> dict[str, Any] | None:
    """``run.end``'s ``failure``: None when missing or null (a run that was not stopped), else an
    object whose ``kind`` and ``message`` are strings and ``step`` an int in 0..2**63-1, as the
    engine writes it (``{"kind": "deadlock", "message": "...", "step": 153}``); the three fields
    are returned, missing ones as None. Anything else is :class:`FieldError`."""
    v = ev.get(key)
    if v is None:
        return None
    if type(v) is not dict:
        raise _wrong(key, v, "an object (kind, message, step) or null")
    try:
        return {"kind": get_str(v, "kind"), "message": get_str(v, "message"),
                "step": get_int(v, "step", 0, MAX_INT)}
    except FieldError as e:
        raise FieldError(str(e).replace("field '", f"field '{key}.", 1)) from None


def get_list(ev: dict[str, Any], key: str) -> list[Any]:
    """``ev[key]`` if it is a list, ``[]`` if it is missing or null; else :class:`FieldError`."""
    v = ev.get(key)
    if type(v) is list:
        return v
    if v is None:
        return []
    raise _wrong(key, v, "a list")


def get_bool(ev: dict[str, Any], key: str) -> bool | None:
    """``ev[key]`` if it is a bool, None if it is missing or null; else :class:`FieldError`."""
    v = ev.get(key)
    if v is None or type(v) is bool:
        return v
    raise _wrong(key, v, "a bool")


#: the run context's kinds (docs/trace.md): the seed an int, the others strings
_CONTEXT_GET = {"scenario": get_str, "seed": get_int, "strategy": get_str, "backend": get_str}


def run_context(ev: dict[str, Any]) -> dict[str, Any]:
    """The run context (``scenario``, ``seed``, ``strategy``, ``backend``) of a line, each
    checked (:class:`FieldError`); keys that are missing or null are left out."""
    ctx = {}
    for k, get in _CONTEXT_GET.items():
        v = get(ev, k)
        if v is not None:
            ctx[k] = v
    return ctx


def check_trace_path(path: object) -> None:
    """Refuse (:class:`TraceFormatError`, one line, ``.path`` empty) a trace argument that
    names no file: only a non-empty ``str`` or ``Path`` without a NUL byte does. An int is not
    taken as a file descriptor (h10: ``summarize(True)`` read stdout, and ``iter_events(fd)``
    closed the caller's descriptor)."""
    if is_path(path):
        return
    if isinstance(path, str | Path):
        shown = printable(str(path))
        raise TraceFormatError("", None, f"a trace path is a file name, not {shown!r}")
    raise TraceFormatError("", None, f"a trace is named by a path (str or pathlib.Path), not "
                                     f"{kind_of(path)}")


def feed_events(path: str | Path, feed: Callable[[dict[str, Any]], Any],
                warn: Callable[[str], None] | None = None) -> None:
    """Call ``feed(event)`` for every event of the trace at ``path`` (:func:`iter_events`, which
    ``warn`` goes to); a :class:`FieldError` it raises becomes a :class:`TraceFormatError` at
    that line. A ``path`` that names no file is refused before anything is read
    (:func:`check_trace_path`)."""
    check_trace_path(path)
    for lineno, ev in iter_events(path, warn):
        try:
            feed(ev)
        except FieldError as e:
            raise TraceFormatError(path, lineno, str(e)) from None


def json_safe(v: Any, depth: int = 0) -> Any:
    """``v`` with what JSON writers refuse made text: an int outside -2**63..2**64-1 becomes
    its decimal text, a list or object nested deeper than :data:`MAX_NESTING` becomes
    ``"<list nested too deep>"`` (``<object …>``), any other non-JSON value its cut repr."""
    t = type(v)
    if t is str or t is bool or t is float or v is None:
        return v
    if t is int:
        if -(1 << 63) <= v < (1 << 64):
            return v
        return str(v) if v.bit_length() < 14_000 else hex(v)  # str() stops at 4,300 digits
    if t is list or t is tuple:
        if depth >= MAX_NESTING:
            return "<list nested too deep>"
        return [json_safe(x, depth + 1) for x in v]
    if t is dict:
        if depth >= MAX_NESTING:
            return "<object nested too deep>"
        return {k if type(k) is str else str(k): json_safe(x, depth + 1) for k, x in v.items()}
    return printable(object.__repr__(v), MAX_TEXT)


def dumps(obj: Any, option: int = 0) -> bytes:
    """``orjson.dumps(obj)``; when orjson refuses it (an int over 64 bits, nesting orjson will
    not follow), the same with :func:`json_safe` applied, so a trace's odd value never stops
    an output. The normal path costs nothing extra."""
    try:
        return orjson.dumps(obj, option=option)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return orjson.dumps(json_safe(obj), option=option)


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
        if key != "event" and not 0 <= v <= MAX_INT:
            return TraceFormatError(path, lineno, f"'{key}' is {v}, not an int in 0..2**63-1: "
                                    "is this a wddmemu trace?")
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
    cut last line, which goes to ``warn`` (stderr by default) and is skipped, and for a
    ``path`` that names no file (:func:`check_trace_path`: an int is no file descriptor)."""
    check_trace_path(path)
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
            if (type(ev) is not dict or type(step := ev.get("step")) is not int
                    or type(t := ev.get("t")) is not int or type(ev.get("event")) is not str
                    or not 0 <= step <= MAX_INT or not 0 <= t <= MAX_INT):
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
    """The event's own fields: everything but the head keys and the run context. An ``ev``
    that is not an event (a dict, as :func:`iter_events` yields) is a one-line
    :class:`TraceFormatError` (``.path`` empty)."""
    if not isinstance(ev, dict):
        raise TraceFormatError("", None, f"event_fields takes an event (a dict, as iter_events "
                                         f"yields), not {kind_of(ev)}")
    return {k: v for k, v in ev.items() if k not in HEAD_KEYS and k not in CONTEXT_KEYS}
