"""A driver that raises what is not an ``Exception``, returns what cannot be printed, or
swallows the engine's abort: each is a finding of the run — on both backends, the same
bytes on every repetition — never a traceback, an exit 3 or 0, or a hang (docs/engine.md,
"Untrusted code")."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest

import umd
import vthreads as vt
from umd.ddi import D3DDDIARG_RENAME
from wddmemu._runner import RunSpec, run_scenario

BACKENDS = ["asyncio", "trio"]


class _Mine(BaseException):
    pass


class _EvilStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("evil __str__")


class _Obj:  # no __repr__ of its own: the default one shows its address
    pass


def _rename_driver(rename: Any) -> umd.ReferenceDriver:
    """The reference driver whose Rename is ``rename(self, args)``."""
    entry = umd.ddi_entry(D3DDDIARG_RENAME)(rename)
    return umd.ReferenceDriver(umd.DriverConfig(driver_version=0xB),
                               device_class=type("Hostile", (umd.ReferenceDevice,),
                                                 {"pfn_rename": entry}))


def _raising(exc: BaseException) -> umd.ReferenceDriver:
    async def rename(self: Any, args: Any) -> int:
        raise exc

    return _rename_driver(rename)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("exc", [SystemExit(0), SystemExit(3), KeyboardInterrupt(),
                                 GeneratorExit(), asyncio.CancelledError(), _Mine(),
                                 BaseExceptionGroup("g", [_Mine()]), _EvilStr()],
                         ids=lambda e: type(e).__name__)
def test_whatever_a_ddi_raises_is_an_exception_finding(backend: str, exc: BaseException) -> None:
    run = run_scenario(RunSpec("dynamic-vb-ring", driver=_raising(exc), backend=backend)).run
    assert run.failure is not None and run.failure.kind == "exception"
    assert run.failure.details["exception"] == type(exc).__name__
    assert run.failure.thread == "dev0.worker"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_returned_object_is_named_without_its_address_and_traces_repeat(
        backend: str, tmp_path: Path) -> None:
    async def rename(self: Any, args: Any) -> Any:
        return _Obj()

    traces = []
    for i in range(2):
        path = tmp_path / f"{i}.jsonl"
        run = run_scenario(RunSpec("dynamic-vb-ring", driver=_rename_driver(rename),
                                   backend=backend), trace=path).run
        assert run.failure is not None
        assert run.failure.message == (
            "TypeError: driver DDI Rename returned <tests.badinput.test_hostile_driver._Obj "
            "object>, not a 32-bit HRESULT")
        traces.append(path.read_bytes())
    assert traces[0] == traces[1]


def test_a_returned_coroutine_is_closed_and_reported() -> None:
    async def inner() -> int:
        return 0

    async def rename(self: Any, args: Any) -> Any:
        return inner()  # a missing await

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine … was never awaited"
        run = run_scenario(RunSpec("dynamic-vb-ring", driver=_rename_driver(rename))).run
    assert run.failure is not None
    assert run.failure.message.startswith("TypeError: driver DDI Rename returned a coroutine (")
    assert "a missing await?" in run.failure.message and " at 0x" not in run.failure.message


class _PlainPresent(umd.ReferenceDevice):
    def pfn_present(self, args: Any) -> int:  # type: ignore[override]  # not async
        return 0


class _PlainOpenAdapter(umd.ReferenceDriver):
    def open_adapter(self, args: Any) -> int:  # type: ignore[override]
        return 0


class _AwaitablePresent(umd.ReferenceDevice):
    def pfn_present(self, args: Any) -> Any:  # type: ignore[override]
        return _Ready()  # not a coroutine, but awaitable: taken


class _Ready:
    """Awaitable without being a coroutine: awaiting it gives S_OK at once."""

    def __await__(self) -> Any:
        return 0
        yield  # makes __await__ a generator, as the await protocol wants


@pytest.mark.parametrize(("driver", "ddi", "got"), [
    (lambda: umd.ReferenceDriver(device_class=_PlainPresent), "Present", "0"),
    (lambda: _PlainOpenAdapter(), "OpenAdapter", "0"),
], ids=["Present", "OpenAdapter"])
def test_a_ddi_written_as_a_plain_def_is_named(driver: Any, ddi: str, got: str) -> None:
    run = run_scenario(RunSpec("dynamic-vb-ring", driver=driver)).run
    assert run.failure is not None and run.failure.kind == "exception"
    assert run.failure.message == (f"TypeError: driver DDI {ddi} is not async: calling it "
                                   f"returned {got}, not an awaitable (write it as async def)")


def test_a_ddi_that_hands_back_any_awaitable_is_awaited() -> None:
    run = run_scenario(RunSpec("dynamic-vb-ring",
                               driver=lambda: umd.ReferenceDriver(
                                   device_class=_AwaitablePresent))).run
    assert run.failure is None, run.failure


def test_ddi_entry_refuses_a_plain_def_where_the_class_is_defined() -> None:
    def pfn_rename(self: Any, args: Any) -> int:
        return 0

    with pytest.raises(TypeError, match=r"^ddi_entry marks an async def, and .*pfn_rename is "
                                        r"a plain def: write it as async def"):
        umd.ddi_entry(D3DDDIARG_RENAME)(pfn_rename)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_driver_that_swallows_every_base_exception_in_a_wait_does_not_hang(
        backend: str) -> None:
    async def rename(self: Any, args: Any) -> int:
        while True:
            try:
                await vt.Event("never").wait()
            except BaseException:
                pass

    run = run_scenario(RunSpec("dynamic-vb-ring", driver=_rename_driver(rename),
                               backend=backend), timeout=30).run
    assert run.failure is not None and run.failure.kind == "deadlock"


_MODULE = '''
    import umd, wddmemu
    from umd.ddi import D3DDDIARG_RENAME


    class Dev(umd.ReferenceDevice):
        @umd.ddi_entry(D3DDDIARG_RENAME)
        async def pfn_rename(self, args):
            raise SystemExit(3)


    @wddmemu.driver("exit3-in-rename")
    def make(driver_version=None):
        return umd.ReferenceDriver(umd.DriverConfig(driver_version=0xB), device_class=Dev)
'''


_CLI = """
from wddmemu import _cli
run = ["--load", "exit3_driver", "run", "dynamic-vb-ring", "--driver", "exit3-in-rename"]
explore = ["--load", "exit3_driver", "explore", "dynamic-vb-ring", "--driver",
           "exit3-in-rename", "--schedules", "2", "--save-dir", "saved"]
print("codes", _cli.main(run), _cli.main(explore), _cli.main(explore))
"""


def test_the_cli_reports_a_driver_exit_as_a_failure_not_as_its_exit_code(tmp_path: Path) -> None:
    # in a process of its own: --load and the driver registry are per process
    (tmp_path / "exit3_driver.py").write_text(textwrap.dedent(_MODULE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    p = subprocess.run([sys.executable, "-c", _CLI], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    assert "codes 1 1 1" in p.stdout, (p.stdout, p.stderr)
    assert "SystemExit: 3" in p.stdout and "internal error" not in p.stdout + p.stderr
    # the tracebacks printed are the finding's (run, and each explore's explanation), each from
    # the driver's own frame on
    assert p.stdout.count("Traceback") == 3
    assert p.stdout.count("    raise SystemExit(3)\n") == 3  # the driver's line, in each
    # the same finding twice: one failure file (its id hashes the message)
    assert len(list((tmp_path / "saved").iterdir())) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_driver_that_starts_an_os_thread_is_a_foreign_thread_finding(backend: str) -> None:
    import threading

    started = threading.active_count()

    async def rename(self: Any, args: Any) -> int:
        # a "background flush" on a real thread: it would run beside the emulated threads
        threading.Thread(target=print, args=("flushed",), daemon=True).start()
        return 0

    run = run_scenario(RunSpec("dynamic-vb-ring", driver=_rename_driver(rename),
                               backend=backend)).run
    assert run.failure is not None and run.failure.kind == "foreign-thread", run.failure
    assert run.failure.thread == "dev0.worker" and "builtins.print" in run.failure.message
    assert threading.active_count() == started


class _RaisesInLockAsync(umd.ReferenceDevice):
    async def pfn_lock_async(self, args: Any) -> int:
        raise RuntimeError("lock exploded")


class _RaisesInOpenAdapter(umd.ReferenceDriver):
    async def open_adapter(self, args: Any) -> int:
        raise RuntimeError("open exploded")


class _RaisesInCreateDevice(umd.ReferenceDevice):
    def __init__(self, *args: Any) -> None:  # called inside the driver's CreateDevice
        raise RuntimeError("create exploded")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("driver", "ddi", "thread"), [
    (lambda: _raising(ValueError("rename exploded")), "Rename", "dev0.worker"),
    (lambda: umd.ReferenceDriver(device_class=_RaisesInLockAsync), "LockAsync", "app"),
    (lambda: _RaisesInOpenAdapter(), "OpenAdapter", "app"),
    (lambda: umd.ReferenceDriver(device_class=_RaisesInCreateDevice), "CreateDevice", "app"),
], ids=["Rename", "LockAsync", "OpenAdapter", "CreateDevice"])
def test_an_exception_finding_names_the_ddi_it_came_out_of(driver: Any, ddi: str, thread: str,
                                                           backend: str) -> None:
    """Sweep E D10: the runtime notes on the driver's exception the DDI it left
    (``runtime.note_ddi``, PEP 678), and the engine's message shows the note: in the result,
    the trace's ``run.failure`` and the traceback alike."""
    buf = io.BytesIO()
    run = run_scenario(RunSpec("dynamic-vb-ring", driver=driver(), backend=backend),
                       trace=buf).run
    f = run.failure
    assert f is not None and f.kind == "exception" and f.thread == thread
    assert f.message.endswith(f" exploded (in driver DDI {ddi})"), f.message
    assert f.details["traceback"].endswith(f"exploded\nin driver DDI {ddi}\n")
    [line] = [orjson.loads(x) for x in buf.getvalue().splitlines() if b'"run.failure"' in x]
    assert line["message"] == f.message


class _NotesRaise(Exception):
    @property
    def __notes__(self) -> list[str]:
        raise RuntimeError("evil __notes__")


class _NotesNotAList(Exception):
    def __init__(self) -> None:
        super().__init__("odd notes")
        self.__notes__ = ("a tuple",)  # add_note refuses to add to it


@pytest.mark.parametrize("exc", [_NotesRaise("evil notes"), _NotesNotAList()],
                         ids=lambda e: type(e).__name__)
def test_a_hostile_notes_leaves_the_exception_finding_without_the_ddi(exc: Exception) -> None:
    run = run_scenario(RunSpec("dynamic-vb-ring", driver=_raising(exc))).run
    f = run.failure
    assert f is not None and f.kind == "exception" and f.thread == "dev0.worker"
    assert f.message in ("_NotesRaise: evil notes", "_NotesNotAList: odd notes"), f.message


def test_notes_of_the_programs_own_show_in_the_message_one_line_each_and_cut() -> None:
    async def main() -> None:
        e = ValueError("bad")
        e.add_note("first line\nsecond line")
        e.add_note("x" * 500)
        e.__notes__.append(5)  # not a str: left out
        raise e

    run = vt.Engine().run(main)
    assert run.failure is not None
    assert run.failure.message == "ValueError: bad (first line) (" + "x" * 197 + "...)"


class _AsyncioSleepInRename(umd.ReferenceDevice):
    async def pfn_rename(self, args: Any) -> int:
        await asyncio.sleep(0.01)
        return await super().pfn_rename(args)


class _TrioSleepInRename(umd.ReferenceDevice):
    async def pfn_rename(self, args: Any) -> int:
        import trio

        await trio.sleep(0.01)
        return await super().pfn_rename(args)


@pytest.mark.parametrize("device", [_AsyncioSleepInRename, _TrioSleepInRename],
                         ids=["asyncio.sleep", "trio.sleep"])
def test_a_sleep_of_either_library_is_a_foreign_await_on_both_backends(device: type) -> None:
    """Sweep E D7: where its loop runs, the library's sleep yields to it (a foreign await the
    trampoline sees); where it does not, it raises first ("no running event loop", "must be
    called from async context"), which was an ``exception``. Both are now ``foreign-await``,
    at the same step, with the same message; only ``awaited`` says which."""
    got = {}
    for backend in BACKENDS:
        run = run_scenario(RunSpec("dynamic-vb-ring", driver=lambda: umd.ReferenceDriver(
            device_class=device), backend=backend)).run
        f = run.failure
        assert f is not None and f.kind == "foreign-await", f
        got[backend] = (f.step, f.thread, f.message, run.decisions)
        assert f.details["awaited"]
    assert got["asyncio"] == got["trio"]
    assert got["asyncio"][1] == "dev0.worker"


def test_a_runtime_error_of_the_drivers_own_stays_an_exception() -> None:
    # the same words, raised by the driver and not by a loop library: its own exception
    run = run_scenario(RunSpec("dynamic-vb-ring", driver=_raising(
        RuntimeError("no running event loop")), backend="trio")).run
    assert run.failure is not None and run.failure.kind == "exception"


class _RaisesBaseInLockAsync(umd.ReferenceDevice):
    make: Any  # the exception's factory: a fresh one a run

    async def pfn_lock_async(self, args: Any) -> int:
        raise type(self).make()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("make", "says"), [
    (lambda: SystemExit(3), "SystemExit: 3"),
    (KeyboardInterrupt, "KeyboardInterrupt"),
    (asyncio.CancelledError, "CancelledError"),
], ids=["SystemExit", "KeyboardInterrupt", "CancelledError"])
def test_a_base_exception_finding_names_its_ddi_and_no_empty_message(
        make: Any, says: str, backend: str) -> None:
    """Sweep G D6: a driver's ``SystemExit``, ``KeyboardInterrupt`` or ``CancelledError`` was a
    finding without the DDI it came out of (``note_ddi`` took ``Exception`` only), and an empty
    message left ``KeyboardInterrupt: `` dangling."""
    device = type("Raises", (_RaisesBaseInLockAsync,), {"make": staticmethod(make)})
    run = run_scenario(RunSpec("dynamic-vb-ring", driver=umd.ReferenceDriver(
        device_class=device), backend=backend)).run
    f = run.failure
    assert f is not None and f.kind == "exception" and f.thread == "app", run.summary()
    assert f.message == f"{says} (in driver DDI LockAsync)", f.message
