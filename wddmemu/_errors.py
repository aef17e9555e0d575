"""The harness's input error, in a module of its own so that the light modules (loading, the
CLI's option parsing) can raise it without importing the runner."""

from __future__ import annotations


class SpecError(ValueError):
    """Bad input in a run specification (unknown scenario, bad parameter, bad driver path…):
    the CLI prints it as one line and exits 2."""
