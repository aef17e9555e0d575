"""The ``--load`` state of the test process (``wddmemu._loading``), kept around a test.

What was loaded, allowed, noted as broken or as a provider is per process, and the next tests
would see it: a module a test loaded would appear in their ``replay:`` lines and failure files.
The lists must also stay aligned (``_loaded`` and ``_load_args`` pair up one to one), so they
are saved and restored together, never one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wddmemu import _loading

_LISTS = ("_loaded", "_load_args", "_allowed", "_broken")
_DICTS = ("_distributions", "_providers", "_dist_modules")


@contextmanager
def loading_state_kept() -> Iterator[None]:
    """Restore ``wddmemu._loading``'s state, in place, to what it was on entry."""
    lists = {n: list(getattr(_loading, n)) for n in _LISTS}
    dicts = {n: dict(getattr(_loading, n)) for n in _DICTS}
    done = _loading._entry_points_done
    try:
        yield
    finally:
        for n, items in lists.items():
            getattr(_loading, n)[:] = items
        for n, table in dicts.items():
            getattr(_loading, n).clear()
            getattr(_loading, n).update(table)
        _loading._entry_points_done = done
