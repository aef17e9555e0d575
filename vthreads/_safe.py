"""Formatting objects that emulated code handed over: safely and deterministically.

What a driver raises or returns is code under test. Its ``__str__`` or ``__repr__`` may raise
(or return something that is not a str), an int may be too long for ``repr`` (over 4,300
digits raises), and the default ``repr`` of an object carries its address (``<Obj object at
0x7f…>``), which differs from one process to the next: in a failure message it would make the
trace of a replay differ and give one finding two failure-file ids. Every message the engine or
the harness builds from such an object goes through :func:`safe_repr`, :func:`safe_str` or
:func:`describe_exception`: they never raise, and they drop every `` at 0x…`` address.
"""

from __future__ import annotations

import re
import traceback

__all__ = ["describe_exception", "safe_repr", "safe_str", "strip_addresses", "type_name"]

#: `` at 0x7f3a…``: the address CPython's default repr (objects, functions, coroutines) shows
_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
#: a message longer than this is cut (a driver's exception may carry megabytes)
MESSAGE_LIMIT = 4000
#: of an exception's notes, how many the message shows, and how long each may be
NOTES_SHOWN = 3
NOTE_LIMIT = 200


def strip_addresses(text: str) -> str:
    """``text`` without the `` at 0x…`` of default reprs: ``<m.Obj object>``."""
    return _ADDRESS.sub("", text) if " at 0x" in text else text


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def type_name(obj: object) -> str:
    """The name of ``obj``'s class (``__name__``), never raising."""
    try:
        name = type(obj).__name__
        return str.__str__(name) if isinstance(name, str) else "?"
    except BaseException:  # a metaclass property: untrusted too
        return "?"


def _text(obj: object, how: type[str] | None) -> str:
    try:
        if type(obj) is int and obj.bit_length() > 64:  # type: ignore[attr-defined]
            return f"an int of {obj.bit_length()} bits"  # type: ignore[attr-defined]
        text = repr(obj) if how is None else str(obj)
        if not isinstance(text, str):  # only possible through a C extension; be sure anyway
            raise TypeError("not a str")
        # an exact str: a subclass could override the methods used on it below
        return str.__str__(text)
    except BaseException as e:  # whatever it raised (even SystemExit) is not ours to raise
        what = "repr" if how is None else "str"
        return f"<{type_name(obj)} object: its __{what}__ raised {type_name(e)}>"


def safe_repr(obj: object, limit: int = 200) -> str:
    """``repr(obj)`` cut to ``limit`` characters, addresses stripped; a description of the
    failure instead when ``__repr__`` raises."""
    if type(limit) is not int or limit < 1:
        raise ValueError(f"safe_repr's limit takes an int >= 1, not {limit!r}"[:200])
    return _cut(strip_addresses(_text(obj, None)), limit)


def safe_str(obj: object, limit: int = MESSAGE_LIMIT) -> str:
    """``str(obj)`` the same way (what ``f"{obj}"`` shows)."""
    return _cut(strip_addresses(_text(obj, str)), limit)


def describe_exception(e: BaseException) -> tuple[str, str, str]:
    """``(type name, "Type: message", traceback text)`` of an exception emulated code raised,
    never raising, addresses stripped. The message has the form the engine has always used,
    ``f"{type(e).__name__}: {e}"`` (the name alone when ``str(e)`` is empty), followed by the
    first line of each of the exception's notes (PEP 678), in brackets: what the code it went
    through said about it (the runtime notes the driver DDI an exception came out of)."""
    name = type_name(e)
    try:
        tb = "".join(traceback.format_exception(e))
    except BaseException:  # a hostile __notes__, a cause chain that raises…
        tb = f"{name}: (the traceback could not be formatted)\n"
    text = safe_str(e)  # none: the name alone, as Python's own traceback line has it
    message = (f"{name}: {text}" if text else name) + "".join(f" ({n})" for n in _notes(e))
    return name, message, strip_addresses(tb)


def _notes(e: BaseException) -> list[str]:
    """The first line of each str note of ``e``, cut; none when ``__notes__`` is not a list or
    reading it raises (the code under test's exception is untrusted)."""
    try:
        notes = e.__dict__.get("__notes__") if hasattr(e, "__dict__") else None
        if type(notes) is not list:
            return []
        return [_cut(strip_addresses(str.__str__(n).split("\n", 1)[0]), NOTE_LIMIT)
                for n in notes[:NOTES_SHOWN] if type(n) is str]
    except BaseException:  # a hostile __dict__: no notes
        return []
