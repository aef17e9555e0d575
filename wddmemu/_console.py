"""The rich console the commands print with, and what it does when its reader leaves.

Imported by the commands that print (rich is not imported at startup: ``wddmemu --version``).
"""

from __future__ import annotations

from rich.console import Console

from ._files import stdout_to_null


class OutputConsole(Console):
    """A command's console. When the reader closes the pipe (``wddmemu … | head -1``), rich's
    own handling exits 1 — which is "a finding" here (h9: ``trace summary | head -1``). This
    console goes quiet instead: the rest of the output is dropped (stdout's descriptor points
    at /dev/null, so Python's flush at exit cannot fail either) and the command ends with its
    own exit code — 0 for a summary, 1 for a run that found a bug."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        stdout_to_null()


def command_console() -> OutputConsole:
    """The commands' console. Off a terminal (a pipe, a CI log) text is not wrapped at the
    width rich assumes there (80): a finding, an explanation's step line, a path stay one line
    each, for grep and log scrapers (h6); tables still fit the width (COLUMNS sets it)."""
    console = OutputConsole()
    if not console.is_terminal:
        console.soft_wrap = True
    return console
