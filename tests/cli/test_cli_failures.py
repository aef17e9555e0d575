"""What ``run`` and ``replay`` promise when the user's code goes wrong (docs/explore.md, "Bad
input, hangs, Ctrl-C and files"):

* Ctrl-C is exit 130 on ``run`` and ``replay`` too, on asyncio and trio, even while the driver
  spins in a CPU loop (the event loops' own handling waits for a checkpoint it never reaches);
* the ``replay:`` command ``run`` prints carries ``--timeout`` and ``--step-budget``, so that
  copying it reproduces the failure instead of hanging;
* ``replay FILE --timeout 0`` is off, also for a saved hang (not given: 3 s);
* an exception in a driver or a scenario is printed with its traceback from the user's frame
  on, in ``run``, ``replay`` and explore's explanation; failure files do not change.
"""

from __future__ import annotations

import inspect
import shlex
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import interrupt
from tests.support.interrupt import MARK_VARIABLE, interrupt_once_saved
from tests.support.loading import loading_state_kept
from wddmemu import _cli
from wddmemu._explore import Finding, Found, save_failure
from wddmemu._runner import RunSpec, run_scenario
from wddmemu._tracebacks import user_traceback

SPIN = "tests.support.interrupt:spinning"
RAISE = "tests.support.interrupt:raising"
#: the line of RaisesInRename.pfn_rename that raises
RAISE_LINE = inspect.getsourcelines(interrupt.RaisesInRename.pfn_rename)[1] + 1


def _hang_file(tmp_path: Path, backend: str = "asyncio") -> Path:
    """A saved hang of the spinning driver (its decisions from a run under a short watchdog)."""
    spec = RunSpec("dynamic-vb-ring", driver=SPIN, backend=backend)
    run = run_scenario(spec, timeout=0.2).run
    assert run.failure is not None and run.failure.kind == "hang"
    f = Finding.of(run)
    assert f is not None
    return save_failure(Found(0, spec.with_decisions(run.decisions), f, spec), tmp_path / "saved")


# ---- Ctrl-C ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_stops_a_run_whose_driver_spins_and_exits_130(tmp_path: Path,
                                                             backend: str) -> None:
    mark = tmp_path / "spinning"
    code, out, err = interrupt_once_saved(
        ["run", "dynamic-vb-ring", "--driver", SPIN, "--backend", backend], mark, tmp_path,
        {MARK_VARIABLE: str(mark)})
    assert code == 130, (out, err)
    assert err.strip() == "wddmemu: interrupted" and "Traceback" not in err


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_stops_an_unwatched_replay_of_a_hang_and_exits_130(tmp_path: Path,
                                                                  backend: str) -> None:
    """``--timeout 0`` is off for a saved hang too: the replay spins until Ctrl-C, which ends
    it (the old code replayed under 3 s regardless, and ignored the Ctrl-C)."""
    saved = _hang_file(tmp_path, backend)
    mark = tmp_path / "spinning"
    trace = tmp_path / "t.jsonl"
    code, out, err = interrupt_once_saved(
        ["--allow-load", "tests.support", "replay", str(saved), "--timeout", "0",
         "--trace", str(trace)], mark, tmp_path,
        {MARK_VARIABLE: str(mark)})
    assert code == 130, (out, err)
    assert "replaying a hang under" not in out and "reproduced" not in out
    assert "Traceback" not in err
    assert not trace.exists() and [p.name for p in tmp_path.iterdir() if "t.jsonl" in p.name] \
        == []  # no half-written trace, no temporary left behind


def test_ctrl_c_during_the_explanation_of_a_hang_exits_130(tmp_path: Path) -> None:
    """The explanation replays the hang under a 3 s watchdog; a Ctrl-C meanwhile ends it at
    once (the file is saved already) instead of being absorbed by asyncio's runner."""
    mark = tmp_path / "spinning"
    saved = tmp_path / "saved"
    code, out, err = interrupt_once_saved(
        ["explore", "dynamic-vb-ring", "--driver", SPIN, "--strategy", "random",
         "--schedules", "1", "--timeout", "0.2", "--save-dir", str(saved)], mark, tmp_path,
        {MARK_VARIABLE: str(mark)}, until=lambda: mark.read_text().count("\n") >= 2)
    assert code == 130, (out, err)
    assert "1 schedules in" in out and "dev0.worker, last events" not in out
    assert err.strip() == "wddmemu: interrupted"
    assert len(list(saved.iterdir())) == 1


def test_interrupts_are_recognised_however_the_loop_passes_them_on() -> None:
    from wddmemu._interrupt import is_interrupt

    class TrioInternalError(Exception):  # the name trio uses; its cause is what landed
        pass

    inner = TrioInternalError("internal error in Trio")
    inner.__cause__ = KeyboardInterrupt()
    assert is_interrupt(inner)
    assert is_interrupt(BaseExceptionGroup("g", [ValueError(), KeyboardInterrupt()]))
    assert not is_interrupt(TrioInternalError("a real one"))
    assert not is_interrupt(RuntimeError("x"))


def test_an_interrupt_inside_trio_is_exit_130_not_an_internal_error(monkeypatch,
                                                                    capsys) -> None:
    class TrioInternalError(Exception):
        pass

    def boom(*a: object, **kw: object) -> None:
        e = TrioInternalError("internal error in Trio - please file a bug!")
        raise e from KeyboardInterrupt()

    monkeypatch.setattr("wddmemu._runner.run_scenario", boom)
    assert _cli.main(["run", "dynamic-vb-ring"]) == 130
    assert capsys.readouterr().err == "wddmemu: interrupted\n"


# ---- reproduction commands ---------------------------------------------------------------------


def _replay_line(out: str) -> list[str]:
    """The ``replay:`` command ``run`` printed, as arguments after ``wddmemu``."""
    text = out.split("replay: ", 1)[1].replace("\n", " ")
    argv = shlex.split(text)
    assert argv[0] == "wddmemu"
    return argv[1:]


def test_the_replay_line_of_a_hang_carries_the_timeout_and_reproduces_it(capsys) -> None:
    assert _cli.main(["run", "dynamic-vb-ring", "--driver", SPIN, "--timeout", "0.2"]) == 1
    out = capsys.readouterr().out
    argv = _replay_line(out)
    assert argv[argv.index("--timeout") + 1] == "0.2", argv
    assert _cli.main(argv) == 1  # copying it reports the hang again (without: spins for ever)
    again = capsys.readouterr().out
    assert "hang at step" in again and out.split("failure:")[1].split(":")[0] in again


def test_the_replay_line_of_a_step_budget_failure_carries_the_budget(capsys) -> None:
    assert _cli.main(["run", "dynamic-vb-ring", "--step-budget", "50"]) == 1
    argv = _replay_line(capsys.readouterr().out)
    assert argv[argv.index("--step-budget") + 1] == "50", argv
    assert _cli.main(argv) == 1
    assert "failure: step-budget at step 51" in capsys.readouterr().out


def test_a_spec_with_default_options_has_none_in_its_command() -> None:
    cmd = RunSpec("dynamic-vb-ring").command("run")
    assert cmd == "wddmemu run dynamic-vb-ring --strategy fifo --seed 0"
    assert RunSpec("x").command("run", timeout=3.0).endswith("--timeout 3")
    odd = 0.1 + 0.2  # 0.30000000000000004: kept exactly, not rounded to 0.3
    assert float(RunSpec("x").command("run", timeout=odd).split()[-1]) == odd


def test_the_cli_step_budget_default_is_the_specs() -> None:
    from wddmemu._runner import DEFAULT_STEP_BUDGET

    opt = next(p for p in _cli.run_cmd.params if p.name == "step_budget")
    assert opt.default == DEFAULT_STEP_BUDGET == RunSpec("x").step_budget


def test_the_cli_default_strategy_is_explores() -> None:
    """One default (POS) for ``explore``, ExploreOptions, campaigns and the fixture."""
    from wddmemu._campaign import Campaign
    from wddmemu._explore import DEFAULT_STRATEGY, ExploreOptions
    from wddmemu.pytest_plugin import Explorer

    opt = next(p for p in _cli.explore_cmd.params if p.name == "strategy")
    assert opt.default == DEFAULT_STRATEGY == ExploreOptions().strategy == "pos"
    assert Campaign(("x",)).strategies == (DEFAULT_STRATEGY,)
    for method in (Explorer.explore, Explorer.acheck):
        assert inspect.signature(method).parameters["strategy"].default == DEFAULT_STRATEGY


def test_queue_size_is_an_option_and_its_replay_line_carries_it(capsys) -> None:
    """--queue-size: the CLI, the spec and runtime.DeviceConfig share one default, and a spec
    that changes it prints a command that reruns it (the option was missing: such a spec
    reran only in code)."""
    import runtime
    from wddmemu._runner import DEFAULT_QUEUE_SIZE, SPEC_RANGES

    opt = next(p for p in _cli.explore_cmd.params if p.name == "queue_size")
    assert opt.default == DEFAULT_QUEUE_SIZE == RunSpec("x").queue_size
    assert runtime.DeviceConfig().queue_size == DEFAULT_QUEUE_SIZE
    assert (opt.type.min, opt.type.max) == SPEC_RANGES["queue_size"]
    spec = RunSpec("dynamic-vb-ring", queue_size=2, strategy="pct", seed=3)
    cmd = spec.command("run")
    assert "--queue-size 2" in cmd and "--queue-size" not in RunSpec("x").command("run")
    parsed = _cli.run_cmd.make_context("run", shlex.split(cmd)[2:]).params
    assert parsed["queue_size"] == 2
    assert _cli.main(["run", "dynamic-vb-ring", "--queue-size", "0"]) == 2
    assert "queue-size" in capsys.readouterr().err
    assert _cli.main(["run", "dynamic-vb-ring", "--queue-size", "1"]) == 0


# ---- replay --timeout --------------------------------------------------------------------------


@pytest.mark.parametrize("given,passed,used", [([], None, 3.0), (["--timeout", "0"], 0.0, 0.0),
                                               (["--timeout", "7.5"], 7.5, 7.5)])
def test_replay_of_a_hang_uses_the_timeout_given_and_its_own_only_when_none_is(
        tmp_path: Path, monkeypatch, capsys, given: list[str], passed: float | None,
        used: float) -> None:
    """Given, --timeout is the limit; not given, replay's own for a hang (0.5 s, then 3 s if
    that stopped it short: ``_replay_limits``) under 3 s in force."""
    from wddmemu import _explore
    from wddmemu._runner import current_timeout

    saved = _hang_file(tmp_path)
    seen: list[tuple[object, float]] = []

    def fake_replay(ff: object, **kw: object) -> object:
        seen.append((kw["timeout"], current_timeout()))
        raise KeyboardInterrupt  # stop here: only the limits matter

    monkeypatch.setattr(_explore, "replay", fake_replay)
    assert _cli.main(["replay", str(saved), *given]) == 130
    assert seen == [(passed, used)]
    assert ("replaying a hang under --timeout 0.5, then 3 if it stops short"
            in capsys.readouterr().out) == (not given)


# ---- tracebacks --------------------------------------------------------------------------------


def _shows_the_users_frame(out: str) -> None:
    flat = out.replace("\n", " ")
    assert f'interrupt.py", line {RAISE_LINE}, in pfn_rename' in flat, out
    assert 'raise ValueError("rename exploded")' in out
    assert "ValueError: rename exploded" in out
    assert "frames of the emulator before your code left out" in out
    assert "vthreads/_engine.py" not in flat and "runtime/_mp.py" not in flat
    assert " at 0x" not in flat  # no memory address


def test_run_prints_the_traceback_of_an_exception_in_the_driver(capsys) -> None:
    assert _cli.main(["run", "dynamic-vb-ring", "--driver", RAISE]) == 1
    out = capsys.readouterr().out
    _shows_the_users_frame(out)
    assert out.index("failure: exception") < out.index("Traceback") < out.index("replay:")


def test_explore_and_replay_print_it_and_the_failure_file_is_unchanged(tmp_path: Path,
                                                                       capsys) -> None:
    saved = tmp_path / "saved"
    assert _cli.main(["explore", "dynamic-vb-ring", "--driver", RAISE, "--schedules", "1",
                      "--strategy", "random", "--save-dir", str(saved)]) == 1
    out = capsys.readouterr().out
    _shows_the_users_frame(out.split("saved:")[0])
    (path,) = saved.iterdir()
    doc = orjson.loads(path.read_bytes())
    assert set(doc["failure"]) == {"rule", "step", "thread", "message"}  # as before
    assert doc["failure"]["message"] == "ValueError: rename exploded (in driver DDI Rename)"
    for backend in ([], ["--backend", "trio"]):
        assert _cli.main(["replay", str(path), *backend]) == 1
        out = capsys.readouterr().out
        assert out.startswith("reproduced: exception at step")
        _shows_the_users_frame(out)


def test_a_failure_that_is_not_an_exception_prints_no_traceback(capsys) -> None:
    assert _cli.main(["run", "dynamic-vb-ring", "--step-budget", "50"]) == 1
    assert "Traceback" not in capsys.readouterr().out


def test_a_traceback_with_no_user_frame_is_printed_whole() -> None:
    run = run_scenario(RunSpec("dynamic-vb-ring", driver="crash-in-rename")).run
    assert run.failure is not None
    text = run.failure.details["traceback"]
    assert user_traceback(text) == text.rstrip("\n").splitlines()


def test_each_section_of_a_chained_traceback_starts_at_the_users_code() -> None:
    import vthreads

    emu = str(Path(vthreads.__file__).parent / "_engine.py")
    text = (
        "Traceback (most recent call last):\n"
        f'  File "{emu}", line 1, in _thread_main\n'
        "    value = await fn(*args)\n"
        "            ^^^^^^^^^^^^^^^\n"
        '  File "/home/me/drv.py", line 9, in pfn_rename\n'
        "    table[k]\n"
        "KeyError: 'k'\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        f'  File "{emu}", line 1, in _thread_main\n'
        "    value = await fn(*args)\n"
        '  File "/home/me/drv.py", line 11, in pfn_rename\n'
        "    raise ValueError('no table')\n"
        "ValueError: no table\n")
    got = user_traceback(text)
    assert emu not in "\n".join(got)
    assert got.count("  (1 frame of the emulator before your code left out)") == 2
    assert got[-1] == "ValueError: no table" and "KeyError: 'k'" in got
    assert "During handling of the above exception, another exception occurred:" in got


def test_a_scenario_that_raises_shows_the_scenario_line(tmp_path: Path, monkeypatch,
                                                        capsys) -> None:
    (tmp_path / "tb_scen.py").write_text(
        "from scenarios import scenario\n"
        "@scenario('tb-boom', 'raises at once')\n"
        "async def boom(ctx):\n"
        "    raise RuntimeError('boom requested')\n")
    import sys

    import scenarios

    monkeypatch.syspath_prepend(str(tmp_path))
    # --load is process-wide state: the module, the scenario and the load list go again after
    try:
        with loading_state_kept():
            assert _cli.main(["--load", "tb_scen", "run", "tb-boom"]) == 1
    finally:
        scenarios.REGISTRY.unregister("tb-boom")
        sys.modules.pop("tb_scen", None)
    out = capsys.readouterr().out.replace("\n", " ")
    assert 'tb_scen.py", line 4, in boom' in out and "RuntimeError: boom requested" in out
    assert "wddmemu/_runner.py" not in out


def test_campaign_and_report_replay_commands_carry_the_load_modules(tmp_path: Path) -> None:
    """A file saved with ``--load M`` lists M, and replays only with it allowed: the replay
    commands of the campaign summary and of the JUnit/JSON reports say ``--load M``."""
    import io

    from rich.console import Console

    from wddmemu import _loading
    from wddmemu._campaign import print_campaign
    from wddmemu._explore import ExploreResult
    from wddmemu._reports import CellReport, _failure_entry

    spec = RunSpec("dynamic-vb-ring")
    fd = Found(0, spec.with_decisions((0,)), Finding("RACE", 3, "m", "app"), spec)
    path = tmp_path / "f.json"
    want = f"wddmemu --load tests.support.interrupt replay {path}"
    buf = io.StringIO()
    with loading_state_kept():
        _loading._loaded[:] = _loading._load_args[:] = ["tests.support.interrupt"]
        assert _failure_entry(fd, path)["replay"] == want
        print_campaign(Console(file=buf, width=40),
                       [CellReport(spec, "random", 1, ExploreResult(1, (fd,), 10), (path,))])
    assert f"replay: {want}\n" in buf.getvalue()  # one line, not wrapped at 40 columns


def test_the_replay_commands_allow_the_module_of_a_module_attr_driver(tmp_path: Path) -> None:
    """A ``--driver MODULE:ATTR`` failure lists MODULE, which no ``--load`` brought: every
    printed replay command says ``--allow-load MODULE`` (h6's F4: the line, pasted, was exit
    2), and so does the file's own ``replay`` field."""
    import io

    from rich.console import Console

    from wddmemu._campaign import print_campaign
    from wddmemu._explore import ExploreResult, failure_document, replay_command
    from wddmemu._reports import CellReport, _failure_entry

    spec = RunSpec("dynamic-vb-ring", driver=RAISE)
    fd = Found(0, spec.with_decisions((0,)), Finding("exception", 3, "m", "app"), spec)
    path = tmp_path / "f.json"
    want = f"wddmemu --allow-load tests.support.interrupt replay {path}"
    buf = io.StringIO()
    with loading_state_kept():
        assert replay_command(fd.spec, path) == want
        assert _failure_entry(fd, path)["replay"] == want
        assert failure_document(fd)["replay"].format(file=path) == want
        print_campaign(Console(file=buf, width=40),
                       [CellReport(spec, "random", 1, ExploreResult(1, (fd,), 10), (path,))])
    assert f"replay: {want}\n" in buf.getvalue()


def test_the_replay_line_of_run_is_one_line_at_any_width(capsys) -> None:
    assert _cli.main(["run", "dynamic-vb-ring", "--driver", RAISE, "--step-budget", "100000",
                      "--strategy", "random", "--seed", "12345"]) == 1
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("replay: ")]
    assert line.endswith("--step-budget 100000")


def test_brackets_in_a_failure_message_are_printed_as_they_are(tmp_path: Path, monkeypatch,
                                                               capsys) -> None:
    import sys

    (tmp_path / "tb_brackets.py").write_text(
        "from umd import ReferenceDevice, ReferenceDriver\n"
        "class D(ReferenceDevice):\n"
        "    async def pfn_rename(self, args):\n"
        "        raise KeyError('[bold]slot[/bold]')\n"
        "driver = ReferenceDriver(device_class=D)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with loading_state_kept():  # the --driver MODULE:ATTR allows tb_brackets
            assert _cli.main(["run", "dynamic-vb-ring", "--driver", "tb_brackets:driver"]) == 1
    finally:
        sys.modules.pop("tb_brackets", None)
    out = capsys.readouterr().out
    assert "failure: exception at step" in out
    assert out.count("KeyError: '[bold]slot[/bold]'") == 2, out  # the failure line, the traceback


def test_run_prints_the_failed_batched_calls_and_names_the_call_in_the_failure() -> None:
    import io

    from rich.console import Console

    import kmd
    import umd
    from umd.ddi import D3DDDIARG_DRAWPRIMITIVE

    class FailsThirdDraw(umd.ReferenceDevice):
        draws = 0

        @umd.ddi_entry(D3DDDIARG_DRAWPRIMITIVE)
        async def pfn_draw_primitive(self, args: object) -> int:
            self.draws += 1
            if self.draws == 3:
                return int(kmd.E_INVALIDARG)
            return await super().pfn_draw_primitive(args)

    drv = umd.ReferenceDriver(umd.DriverConfig(driver_version=0xB), device_class=FailsThirdDraw)
    res = run_scenario(RunSpec("dynamic-vb-ring", driver=drv))
    buf = io.StringIO()
    _cli.print_summary(Console(file=buf, width=400), res, None)
    out = buf.getvalue()
    assert "batched call failed: DrawPrimitive → E_INVALIDARG" in out
    assert res.run.failure is not None  # the scenario's Present raised: the app's exception
    assert ("an earlier batched call failed: DrawPrimitive returned E_INVALIDARG (0x80070057) "
            "on dev0.worker at step ") in res.run.failure.message


@pytest.mark.parametrize("leaks", [True, False])
def test_run_says_what_destroy_device_freed_for_the_driver(leaks: bool) -> None:
    import io

    from rich.console import Console

    import umd
    class Leaky(umd.ReferenceDevice):
        @umd.ddi_entry(None)
        async def pfn_destroy_device(self, args: object = None) -> int:
            return 0 if leaks else await super().pfn_destroy_device(args)

    drv = umd.ReferenceDriver(umd.DriverConfig(driver_version=0xB), device_class=Leaky)
    res = run_scenario(RunSpec("dynamic-vb-ring", driver=drv))
    buf = io.StringIO()
    _cli.print_summary(Console(file=buf, width=400), res, None)
    line = "kernel: DestroyDevice freed {} allocation(s) and resource(s) the driver never freed"
    if leaks:
        assert res.kernel.freed_at_device_destroy > 0
        assert line.format(res.kernel.freed_at_device_destroy) in buf.getvalue()
    else:
        assert res.kernel.freed_at_device_destroy == 0 and "kernel: " not in buf.getvalue()


def _loud_driver() -> Any:
    """A fresh driver whose Rename raises an exception text with a line break and an escape
    sequence (a cleared screen, were it obeyed)."""
    import umd
    from umd.ddi import D3DDDIARG_RENAME

    class Loud(umd.ReferenceDevice):
        @umd.ddi_entry(D3DDDIARG_RENAME)
        async def pfn_rename(self, args: object) -> int:
            raise ValueError("two\nlines \x1b[2J cleared")

    return umd.ReferenceDriver(umd.DriverConfig(driver_version=0xB), device_class=Loud)


def test_run_shows_control_characters_of_a_message_instead_of_obeying_them() -> None:
    """h8: a driver's exception text with a line break or an escape sequence reached the
    terminal raw (a colour change, a cleared screen)."""
    import io

    from rich.console import Console

    res = run_scenario(RunSpec("dynamic-vb-ring", driver=_loud_driver()))
    buf = io.StringIO()
    _cli.print_summary(Console(file=buf, width=400), res, None)
    out = buf.getvalue()
    assert "\x1b" not in out and "\\x1b[2J cleared" in out
    assert "failure: exception at step" in out and "ValueError: two\\nlines" in out
    # explore's explanation alike
    import wddmemu
    from wddmemu._explore import ExploreOptions, explore

    wddmemu.register_driver("test-loud", _loud_driver)
    try:
        found = explore(RunSpec("dynamic-vb-ring", driver="test-loud"), ExploreOptions(schedules=1))
        buf = io.StringIO()
        _cli.explain(Console(file=buf, width=400), found.failures[0], Path("f.json"))
    finally:
        wddmemu.DRIVERS.unregister("test-loud")
    assert "\x1b" not in buf.getvalue() and "\\x1b[2J cleared" in buf.getvalue()


def test_replay_shows_control_characters_of_a_message_instead_of_obeying_them(
        tmp_path: Path, capsys) -> None:
    """h9 (h8 F7's residue): ``replay FILE | cat -v`` printed the finding's raw LF and ESC in
    its "reproduced:" line, which run and explore show escaped."""
    import wddmemu
    from wddmemu._explore import ExploreOptions, explore

    wddmemu.register_driver("test-loud", _loud_driver)
    try:
        found = explore(RunSpec("dynamic-vb-ring", driver="test-loud"),
                        ExploreOptions(schedules=1, minimise=False))
        path = save_failure(found.failures[0], tmp_path)
        capsys.readouterr()
        assert _cli.main(["replay", str(path)]) == 1
    finally:
        wddmemu.DRIVERS.unregister("test-loud")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J cleared" in out
    [line] = [x for x in out.splitlines() if x.startswith("reproduced: ")]
    assert line.startswith("reproduced: exception at step ")
    # one line, shown, and the DDI it came out of (runtime.note_ddi)
    assert line.endswith("ValueError: two\\nlines \\x1b[2J cleared (in driver DDI Rename)")


def test_a_ctrl_c_cannot_land_in_the_finalisation_of_a_driver(monkeypatch) -> None:
    """h9: the weakref callback ``_claim_driver`` sets on each driver ran as Python code when
    the driver was collected, at any point of a run; a SIGINT arriving then raised the
    handler's KeyboardInterrupt inside the callback, and CPython printed "Exception ignored in:
    <function _claim_driver.<locals>.<lambda>> … KeyboardInterrupt". Signal handlers run only
    between bytecodes of Python frames: the callback now has none. Deterministic stand-in for
    the signal: the installed SIGINT handler (wddmemu's behind vthreads') is called at the
    first Python frame that starts while the driver is finalised."""
    import signal
    import sys

    from vthreads import _origin
    from wddmemu import _runner
    from wddmemu._interrupt import ctrl_c

    class Driver:
        pass

    class Engine:
        interrupted = False

        def _interrupt(self) -> None:
            self.interrupted = True

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    entered: list[str] = []

    def land_the_signal(frame: object, event: str, _arg: object) -> None:
        if event == "call" and not entered:
            entered.append(frame.f_code.co_name)  # type: ignore[attr-defined]
            signal.getsignal(signal.SIGINT)(signal.SIGINT, frame)

    engine = Engine()
    with ctrl_c():
        watched = _origin.watch_sigint(engine)
        try:
            driver = Driver()
            _runner._claim_driver(driver)
            key = id(driver)
            assert key in _runner._ran
            sys.setprofile(land_the_signal)
            try:
                del driver  # the last reference: the weakref's callback runs now
            finally:
                sys.setprofile(None)
        finally:
            _origin.unwatch_sigint(watched)
    assert entered == [] and unraisable == []  # no Python frame ran, nothing was ignored
    assert key not in _runner._ran  # and the callback still forgot the driver


def test_a_module_that_is_not_there_is_located_nowhere(tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    # it was located at importlib/__init__.py:126, no line of the user's (7 December); a
    # user's own failing import is still located in the user's file
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "h7imports.py").write_text("import no_such_module_h7b\n")
    with loading_state_kept():
        assert _cli.main(["--load", "no_such_module_h7", "scenarios"]) == 2
        assert capsys.readouterr().err == (
            "wddmemu: error: cannot load module 'no_such_module_h7': ModuleNotFoundError: No "
            "module named 'no_such_module_h7'\n")
        assert _cli.main(["--load", "h7imports", "scenarios"]) == 2
        assert capsys.readouterr().err.endswith(f"({tmp_path / 'h7imports.py'}:1)\n")


def test_a_file_loaded_by_path_goes_ahead_of_the_current_directory(tmp_path: Path, monkeypatch,
                                                                    capsys) -> None:
    # the current directory went first on sys.path: its own h7shadow.py was imported (and
    # its code run) instead of the file named, then refused (fuzzing, 7 December)
    import sys

    ran = tmp_path / "ran"
    (tmp_path / "h7shadow.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "h7shadow.py").write_text("MINE = True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        with loading_state_kept():
            assert _cli.main(["--load", "sub/h7shadow.py", "scenarios"]) == 0, capsys.readouterr()
            assert sys.modules["h7shadow"].MINE and not ran.exists()
    finally:
        sys.modules.pop("h7shadow", None)


def test_no_command_shows_the_help_and_one_error_line(capsys) -> None:
    # the help was squeezed into the error line, its newlines escaped
    assert _cli.main([]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("Usage: wddmemu [OPTIONS] COMMAND [ARGS]...\n") and "explore" in out
    assert err == "wddmemu: error: wddmemu needs a command (listed above)\n"
    assert _cli.main(["trace"]) == 2
    out, err = capsys.readouterr()
    assert "summary" in out
    assert err == "wddmemu: error: wddmemu trace needs a command (listed above)\n"


@pytest.mark.slow  # Ctrl-C of a command with worker processes, in subprocesses
@pytest.mark.parametrize("spin", [False, True], ids=["finding", "cpu-loop"])
def test_one_ctrl_c_to_the_group_of_explore_jobs_2_is_130_quietly(tmp_path: Path,
                                                                  spin: bool) -> None:
    """A terminal's Ctrl-C reaches the workers too: each printed a KeyboardInterrupt
    traceback, and one interrupted inside the pool's queue could hang the command's exit for
    good (fuzzing, 7 December). Workers ignore SIGINT; the parent ends them
    (``wddmemu/_pool.py``), even a driver spinning under ``--timeout 0``."""
    saved, mark = tmp_path / "saved", tmp_path / "mark"
    if spin:
        args = ["explore", "dynamic-vb-ring", "--driver", "tests.support.interrupt:spinning",
                "--timeout", "0", "--schedules", "10", "--jobs", "2"]
        where, env = mark, {MARK_VARIABLE: str(mark)}
    else:
        args = ["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync", "--keep-going",
                "--schedules", "100000", "--jobs", "2"]
        where, env = saved, {}
    code, out, err = interrupt_once_saved([*args, "--save-dir", str(saved)], where, tmp_path,
                                          env, group=True)
    assert code == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


@pytest.mark.slow  # a command in a subprocess
def test_a_command_started_with_ctrl_c_ignored_leaves_it_ignored(tmp_path: Path) -> None:
    """A background job of a script (``cmd &``) or ``nohup`` starts with SIGINT ignored, and a
    POSIX command leaves it so; explore put its own handler in and stopped at 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    saved = tmp_path / "saved"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(interrupt.ROOT), os.environ.get("PYTHONPATH")) if p)}
    p = subprocess.Popen(
        [sys.executable, "-m", "wddmemu._cli", "explore", "dynamic-vb-ring", "--driver",
         "track-in-lockasync", "--keep-going", "--schedules", "60", "--save-dir", str(saved)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 120
        while not interrupt.has_saved(saved) and p.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, (out, err)  # its own code: the finding, all 60 schedules run
    assert "60/60 schedules" in out or "60 schedules" in out, out


@pytest.mark.parametrize("bad", ["", " evmod", "a..b", "*", "\tx"])
def test_allow_load_takes_a_module_name(bad: str, capsys) -> None:
    # it took anything silently (and allowed nothing)
    with loading_state_kept():
        assert _cli.main(["--allow-load", bad, "scenarios"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--allow-load takes a module name like mypkg.drivers" in err


@pytest.mark.parametrize("how", ["sys.stdout.close()", "os.close(1)"])
def test_a_driver_that_closes_stdout_is_one_line_and_exit_2(tmp_path: Path, how: str) -> None:
    """User code closed standard output: not our bug (exit 3), and nowhere to print the result
    (sweep E D9)."""
    import subprocess
    import sys

    (tmp_path / "closes_out.py").write_text(
        "import os, sys\nimport umd\n\n"
        "class Dev(umd.ReferenceDevice):\n"
        "    async def pfn_rename(self, args):\n"
        f"        {how}\n"
        "        return await umd.ReferenceDevice.pfn_rename(self, args)\n\n"
        "def make(driver_version=None):\n"
        "    return umd.ReferenceDriver(device_class=Dev)\n")
    exe = Path(sys.executable).with_name("wddmemu")
    got = subprocess.run([str(exe), "--load", "closes_out", "run", "dynamic-vb-ring",
                          "--driver", "closes_out:make"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert got.returncode == 2, got.stderr
    assert got.stderr.splitlines() == [
        "wddmemu: error: standard output was closed (by the driver or a --load module?), so "
        "the result could not be printed: keep sys.stdout and fd 1 open"]


def test_the_cli_jobs_limit_is_explores() -> None:
    from wddmemu._explore import MAX_JOBS

    assert _cli.MAX_JOBS == MAX_JOBS
    for cmd in (_cli.explore_cmd, _cli.campaign_cmd):
        opt = next(p for p in cmd.params if p.name == "jobs")
        assert (opt.type.min, opt.type.max) == (1, MAX_JOBS)


@pytest.mark.parametrize(("argv", "says"), [
    (["explore", "lock-flags", "--cluster", ""], "Invalid value for '--cluster': give local:N"),
    (["explore", "lock-flags", "--cluster", "  "], "Invalid value for '--cluster': give local:N"),
    (["explore", "lock-flags", "--jobs", "10" * 16], "Invalid value for '--jobs': "),
    (["run", "lock-flags", "--ddi-version", "0b1011"], "'0b1011' is not an integer (decimal"),
    (["run", "lock-flags", "--ddi-version", "1_1"], "'1_1' is not an integer (decimal"),
    (["run", "lock-flags", "--ddi-version", "\u0661\u0661"], "is not an integer (decimal"),
])
def test_loose_option_values_are_refused(argv: list[str], says: str, capsys) -> None:
    """Sweep H D10: an empty --cluster ran locally, explore took any --jobs, and
    --ddi-version took what int(text, 0) takes, past its own "decimal or 0x hex"."""
    assert _cli.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and says in err[0], err


@pytest.mark.parametrize(("text", "value"), [("11", 11), ("0xB", 11), (" 0Xb ", 11),
                                             ("012", 12)])
def test_ddi_version_takes_decimal_and_hex(text: str, value: int) -> None:
    assert _cli._int(text) == value
