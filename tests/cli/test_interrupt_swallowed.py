"""A Ctrl-C that lands in a frame which cannot pass an exception on (a ``gc`` callback, a
``__del__``) is not lost (wddmemu/_interrupt.py). CI found it: ``campaign --cluster local:2``
took a SIGINT inside dask's ``GCDiagnosis`` gc callback, CPython printed "Exception ignored in
… KeyboardInterrupt", and the campaign ran on until the test killed it."""

from __future__ import annotations

import gc
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from wddmemu._interrupt import ctrl_c


@contextmanager
def _interrupts(seconds: float) -> Iterator[list[bool]]:
    """Catch a KeyboardInterrupt raised in the block, or in short sleeps after it (a real
    signal ends one early) for up to ``seconds``: the list it yields then holds ``True``.
    The block is inside: the re-sent interrupt comes ``_RESEND_AFTER_S`` after the swallow,
    which on a loaded machine was before a wait after the block began, and the interrupt
    escaped the test and ended the whole pytest session (CI69)."""
    came: list[bool] = []
    try:
        yield came
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        came.append(True)


def test_an_interrupt_a_gc_callback_swallowed_is_sent_again(monkeypatch) -> None:
    ignored: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    fired: list[str] = []

    def land_the_signal(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start" and not fired:
            fired.append(phase)
            signal.raise_signal(signal.SIGINT)  # the handler runs here, inside the callback

    with ctrl_c():
        with _interrupts(10.0) as came:
            gc.callbacks.append(land_the_signal)
            try:
                gc.collect()
            finally:
                gc.callbacks.remove(land_the_signal)
        assert fired == ["start"]
        assert came, "the swallowed Ctrl-C was lost"
    assert ignored == []  # nothing printed as "Exception ignored": the interrupt went on


def test_an_interrupt_swallowed_by_a_finaliser_is_sent_again(monkeypatch) -> None:
    ignored: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)

    class Finalised:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)

    with ctrl_c():
        with _interrupts(10.0) as came:
            obj = Finalised()
            del obj  # the handler raises inside __del__, which CPython cannot pass on
        assert came, "the swallowed Ctrl-C was lost"
    assert ignored == []


def test_a_drivers_own_keyboard_interrupt_in_a_finaliser_is_not_a_ctrl_c(monkeypatch) -> None:
    """Only an interrupt the handler raised is sent again: code under test raising
    KeyboardInterrupt in its ``__del__`` stays the ignored exception it is."""
    ignored: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)

    class Raises:
        def __del__(self) -> None:
            raise KeyboardInterrupt("the driver's own")

    with ctrl_c():
        with _interrupts(0.3) as came:
            obj = Raises()
            del obj
        assert not came
    assert [str(u.exc_value) for u in ignored] == ["the driver's own"]


def test_ctrl_c_puts_the_unraisable_hook_back(monkeypatch) -> None:
    mine = lambda _u: None  # noqa: E731
    monkeypatch.setattr(sys, "unraisablehook", mine)
    with ctrl_c():
        assert sys.unraisablehook is not mine
    assert sys.unraisablehook is mine
    with pytest.raises(KeyboardInterrupt), ctrl_c():
        signal.raise_signal(signal.SIGINT)
    assert sys.unraisablehook is mine
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_inside_a_run_the_engine_carries_the_swallowed_interrupt_alone(
        monkeypatch, backend: str) -> None:
    """Inside a run the engine heard of the Ctrl-C first and raises KeyboardInterrupt once the
    run has unwound; a re-sent one would land in that unwinding (explore's report of what
    ran), so none is sent."""
    import vthreads as vt

    ignored: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)

    class Finalised:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)

    async def main() -> None:
        obj = Finalised()
        del obj  # the Ctrl-C lands in the finaliser and is swallowed there
        await vt.Event("never").wait()

    with ctrl_c():
        with pytest.raises(KeyboardInterrupt):
            vt.Engine("fifo", backend=backend).run(main)
        with _interrupts(0.3) as came:
            pass
        assert not came, "a second interrupt came after the run's own"
    assert ignored == []
