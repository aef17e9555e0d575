"""The harness's input error and the CLI's exit codes, in a module of its own so that the light
modules (loading, the CLI's option parsing, Ctrl-C's handling) can use them without importing
the runner."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

#: the CLI's exit codes (docs/explore.md): clean, a finding, bad input, our own bug, Ctrl-C
EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class SpecError(ValueError):
    """Bad input in a run specification (unknown scenario, bad parameter, bad driver path…):
    the CLI prints it as one line and exits 2."""


def check_int(name: str, v: object, lo: int, hi: int) -> None:
    """Refuse ``v`` unless it is an int (not a bool) in ``lo..hi``, both ends included, with a
    one-line SpecError naming ``name`` and the range (an int of 200 bits or more is named by
    its size, not printed)."""
    if type(v) is not int:
        raise SpecError(f"{name} must be an int, not {type(v).__name__}")
    if not lo <= v <= hi:
        shown = f"{v:,}" if v.bit_length() < 200 else f"an int of {v.bit_length()} bits"
        raise SpecError(f"{name} takes {lo:,}..{hi:,}, not {shown}")


def check_callable(name: str, v: object) -> None:
    """Refuse ``v`` unless it is None or callable (a ``progress`` or ``on_found`` callback),
    with a one-line SpecError naming ``name``: an int there failed at the first call, deep in
    the run, with ``'int' object is not callable``."""
    if v is not None and not callable(v):
        raise SpecError(f"{name} is a function or None, not {type(v).__name__}")


#: the longest timeout a run takes (``--timeout``, ``ExploreOptions.timeout``, a campaign's
#: ``timeout``): a year. The watchdog's timer (``signal.setitimer``, a ``threading.Timer``)
#: overflows the platform's time_t far above it; nobody waits longer
MAX_TIMEOUT_S = 366 * 24 * 3600


def check_seconds(name: str, v: object) -> None:
    """Refuse ``v`` unless it is seconds in ``0..MAX_TIMEOUT_S`` (an int or a float, not a
    bool or NaN; 0: off) with a one-line SpecError naming ``name``."""
    if type(v) not in (int, float) or not 0 <= v <= MAX_TIMEOUT_S:  # NaN fails both
        shown = repr(v) if type(v) in (int, float) else f"a {type(v).__name__}"  # a TOML date
        raise SpecError(f"{name} takes seconds 0..{MAX_TIMEOUT_S:,} (0: off), not {shown}")


#: the event loops a run can be hosted on (the engine's own list, ``vthreads/_host.py``'s
#: BACKENDS, is not imported here: this module stays light for the CLI's start-up)
BACKENDS = ("asyncio", "trio")


def check_backend(backend: object) -> None:
    """Refuse a backend other than :data:`BACKENDS`' with a one-line SpecError (the engine's
    own check, ``vthreads/_host.py:check_backend``, raises ValueError)."""
    if backend not in BACKENDS:
        raise SpecError(f"unknown backend {backend!r}: use asyncio or trio")


def check_seed_span(seed: int, schedules: int) -> None:
    """Refuse a ``seed`` whose last schedule's seed (schedule i runs ``seed + i``) passes the
    63 bits every file and report stores a seed in."""
    if seed + schedules - 1 > 2**63 - 1:
        raise SpecError(f"seed {seed:,} + {schedules:,} schedules passes 2**63-1 (schedule i "
                        "runs seed + i): lower the seed")


#: the emulator's own packages (side by side in one source root): a user error is located in
#: the user's code, never in these
_OURS = tuple(str(Path(__file__).resolve().parent.parent / name) + os.sep
              for name in ("vthreads", "kmd", "umd", "runtime", "scenarios", "wddmemu"))
#: the import machinery's own package (``importlib.import_module``): a module that is not
#: there was located at importlib/__init__.py:126, which is no line of the user's
_IMPORTLIB = os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep


def user_frame(e: BaseException) -> str:
    """``file:line`` of the innermost frame of ``e``'s traceback that is the user's code (not
    the emulator's packages, not importlib's, frozen or not); "" if there is none."""
    where = ""
    tb = e.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not name.startswith("<") and not os.path.abspath(name).startswith(
                (*_OURS, _IMPORTLIB)):
            where = f"{name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def user_error(what: str, e: BaseException) -> SpecError:
    """The one line for user code (a driver module, a factory, a ``--load`` module) that
    raised: ``what: Type: message (file:line)``, the line being the innermost one of the
    user's own code (for a syntax error, the bad line; for a scenario or driver registration
    the emulator refused, the user's definition site, not the registry's line)."""
    if isinstance(e, SyntaxError) and e.filename:
        where = f"{e.filename}:{e.lineno}"
    else:
        where = user_frame(e)
    # imported here, not at the top: ``wddmemu --version`` imports this module and must not
    # pay for the engine (the user's exception may raise in __str__, hence the safe forms)
    from vthreads.lowlevel import safe_repr, safe_str, type_name

    if isinstance(e, SyntaxError) and e.filename:
        text = safe_str(e.msg)  # str(e) repeats the file and line
    else:
        text = safe_str(e) if not isinstance(e, SystemExit) else f"exit code {safe_repr(e.code)}"
    suffix = f" ({where})" if where else ""
    return SpecError(f"{what}: {type_name(e)}: {text}{suffix}".replace("\n", " "))
