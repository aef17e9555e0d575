"""The harness's input error, in a module of its own so that the light modules (loading, the
CLI's option parsing) can raise it without importing the runner."""

from __future__ import annotations


class SpecError(ValueError):
    """Bad input in a run specification (unknown scenario, bad parameter, bad driver path…):
    the CLI prints it as one line and exits 2."""


def user_error(what: str, e: BaseException) -> SpecError:
    """The one line for user code (a driver module, a factory, a ``--load`` module) that
    raised: ``what: Type: message (file:line)``, the line being where the user's code raised
    (for a syntax error, the bad line)."""
    where = ""
    if isinstance(e, SyntaxError) and e.filename:
        where = f" ({e.filename}:{e.lineno})"
    else:
        tb = e.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" ({tb.tb_frame.f_code.co_filename}:{tb.tb_lineno})"
    from vthreads.lowlevel import safe_repr, safe_str, type_name  # user code: may raise

    text = safe_str(e) if not isinstance(e, SystemExit) else f"exit code {safe_repr(e.code)}"
    return SpecError(f"{what}: {type_name(e)}: {text}{where}".replace("\n", " "))
