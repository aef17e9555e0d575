"""Sweep E D6: code under test that swallows every ``BaseException`` in a CPU loop swallows the
watchdog's ``Hang`` at each repeat, and Ctrl-C too: nothing inside the process can stop it. An
application may set a last resort (``vthreads.lowlevel.set_last_resort``), called once,
``LAST_RESORT_S`` after the limit, with the run's failure line; the CLI's ends the process,
exit 1, after saying so (``wddmemu._interrupt.end_the_process``). A library sets none."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from umd import ReferenceDevice, ReferenceDriver
from vthreads import _watchdog
from vthreads.lowlevel import set_last_resort
from wddmemu._runner import RunSpec, run_scenario

#: set by the last resort of the in-process tests: the loop below ends only then
_released = threading.Event()


class SwallowsEveryStop(ReferenceDevice):
    async def pfn_rename(self, args: Any) -> int:
        while not _released.is_set():  # sweep E's loop: no Hang, no Ctrl-C gets out of it
            try:
                while not _released.is_set():  # the alarm's repeats all land in here
                    pass
            except BaseException:
                pass
        return await super().pfn_rename(args)


def _spec(backend: str) -> RunSpec:
    return RunSpec("dynamic-vb-ring", driver=lambda: ReferenceDriver(
        device_class=SwallowsEveryStop), backend=backend)


@pytest.fixture
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_watchdog, "LAST_RESORT_S", 0.4)
    monkeypatch.setattr(_watchdog, "BACKUP_S", 0.1)
    _released.clear()


@pytest.mark.parametrize("where", ["main thread", "worker thread"])
def test_a_run_nothing_stops_reaches_the_last_resort_once(short_limits: None,
                                                          where: str) -> None:
    lines: list[tuple[str, float]] = []
    t0 = time.monotonic()

    def resort(line: str) -> None:
        lines.append((line, time.monotonic() - t0))
        _released.set()  # what a real resort cannot do: let the loop end, so the test does

    got: list[Any] = []
    before = set_last_resort(resort)
    try:
        if where == "main thread":
            got.append(run_scenario(_spec("asyncio"), timeout=0.2))
        else:
            t = threading.Thread(target=lambda: got.append(
                run_scenario(_spec("trio"), timeout=0.2)), daemon=True)
            t.start()
            t.join(30)
            assert not t.is_alive()
    finally:
        assert set_last_resort(before) is resort
    ((line, at),) = lines  # once
    assert line.startswith("hang at step ") and " on dev0.worker: the run did not end " in line
    assert "0.2 s of wall time: thread dev0.worker was in DDI Rename" in line, line
    assert 0.2 + 0.4 <= at < 20
    run = got[0].run
    assert run.failure is not None and run.failure.kind == "hang"


def test_a_task_resort_takes_the_place_of_the_process_one(short_limits: None) -> None:
    """A remote cluster's task gives its runs a resort of their own (``task_resort``, read by
    the harness's ``Watchdog``): it is called, once, and the process's is not."""
    from wddmemu._giving_up import task_resort

    process: list[str] = []
    task: list[str] = []

    def resort(line: str) -> None:
        task.append(line)
        _released.set()

    before = set_last_resort(process.append)
    try:
        with task_resort(resort):
            run_scenario(_spec("asyncio"), timeout=0.2)
        _released.clear()
        t = threading.Thread(target=lambda: run_scenario(_spec("trio"), timeout=0.2))
        t.start()  # outside the block, in another thread: the process's resort again
        deadline = time.monotonic() + 20
        while not process and time.monotonic() < deadline:
            time.sleep(0.05)
        _released.set()
        t.join(20)
    finally:
        set_last_resort(before)
    assert len(task) == 1 and task[0].startswith("hang at step "), task
    assert len(process) == 1 and process[0].startswith("hang at step "), process


def test_a_run_that_ends_in_time_never_calls_it(short_limits: None) -> None:
    called: list[str] = []
    before = set_last_resort(called.append)
    try:
        assert run_scenario(RunSpec("dynamic-vb-ring"), timeout=0.2).ok
        time.sleep(0.6)  # past the limit and LAST_RESORT_S: the backup thread has woken
    finally:
        set_last_resort(before)
    assert called == []


def test_a_forked_child_does_not_call_its_parents_resort(short_limits: None) -> None:
    # the resort belongs to the process that set it: a --jobs worker inherits the module only
    called: list[str] = []
    before = set_last_resort(called.append)
    try:
        _watchdog._last_resort = (called.append, os.getpid() + 1)  # as a child sees it
        dog = _watchdog.Watchdog(0.1)
        dog._engine = object()  # type: ignore[assignment]
        dog._give_up()
    finally:
        set_last_resort(before)
    assert called == []


SCRIPT = textwrap.dedent('''
    import sys
    from vthreads import _watchdog
    _watchdog.LAST_RESORT_S, _watchdog.BACKUP_S = 0.4, 0.1
    from wddmemu._cli import main
    raise SystemExit(main(sys.argv[1:]))
''')

DRIVER = textwrap.dedent('''
    from umd import ReferenceDevice, ReferenceDriver

    class Swallows(ReferenceDevice):
        async def pfn_rename(self, args):
            open("in_the_loop", "w").close()  # for the test that sends Ctrl-C
            while True:
                try:
                    while True:
                        pass
                except BaseException:
                    pass

    def driver():
        return ReferenceDriver(device_class=Swallows)
''')


@pytest.mark.parametrize("command", ["run", pytest.param("explore", marks=pytest.mark.slow)])
def test_the_cli_says_so_and_ends_the_process_exit_1(tmp_path: Path, command: str) -> None:
    args = [command, "dynamic-vb-ring"]
    if command == "explore":
        args += ["--schedules", "3", "--save-dir", str(tmp_path / "saved")]
    _ends_exit_1_saying_so(tmp_path, DRIVER, args)


def _ends_exit_1_saying_so(tmp_path: Path, driver: str, args: list[str], also: str = "") -> None:
    """The CLI, ``args`` and ``driver`` (the module ``swallow_all``) under ``--timeout 0.2``,
    ends in time, exit 1, its last two lines the hang's (ending in ``also``) and the last
    resort's."""
    (tmp_path / "swallow_all.py").write_text(driver)
    args = [*args, "--driver", "swallow_all:driver", "--timeout", "0.2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=60)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert time.monotonic() - t0 < 30
    err = p.stderr.splitlines()
    assert err[-2].startswith("wddmemu: hang at step ") and "was in DDI Rename" in err[-2], err
    assert err[-2].endswith(also), err
    assert err[-1] == ("wddmemu: the code under test swallows every stop, Ctrl-C too (an except "
                       "BaseException in a CPU loop?): the process ends here, exit 1")
    assert "Traceback" not in p.stderr


INTERRUPTED_SCRIPT = textwrap.dedent('''
    import sys
    from wddmemu import _interrupt
    _interrupt.FORCE_AFTER_S = 0.3
    from wddmemu._cli import main
    raise SystemExit(main(sys.argv[1:]))
''')


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX signals")
def test_a_second_ctrl_c_ends_a_run_that_swallows_the_first_exit_130(tmp_path: Path) -> None:
    """With ``--timeout 0`` no watchdog comes: the first Ctrl-C is swallowed by the loop, and
    a second one FORCE_AFTER_S later ends the process, exit 130, saying why."""
    (tmp_path / "swallow_all.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    p = subprocess.Popen([sys.executable, "-c", INTERRUPTED_SCRIPT, "run", "dynamic-vb-ring",
                          "--driver", "swallow_all:driver", "--timeout", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "in_the_loop").exists():  # started, and in the loop
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        time.sleep(0.6)
        assert p.poll() is None  # the first was swallowed
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, (out, err)
    assert err.splitlines()[-1] == (
        "wddmemu: interrupted again, and the first is not through yet: the code under test "
        "swallows Ctrl-C (an except BaseException in a CPU loop?): the process ends here, "
        "exit 130")


class TakesTheAlarmAwayThenSwallows(ReferenceDevice):
    """Ignores SIGALRM, then swallows the backup's Hangs for ``SWALLOW_S``, then spins."""

    async def pfn_rename(self, args: Any) -> int:
        import signal

        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        swallow_until = time.monotonic() + SWALLOW_S
        while time.monotonic() < swallow_until:
            try:
                while time.monotonic() < swallow_until:
                    pass
            except BaseException:
                pass
        end = time.monotonic() + 10  # only when nothing stops it: the run then ends clean
        while time.monotonic() < end:
            pass
        return 0


#: past the limit and LAST_RESORT_S (0.4 s, short_limits)
SWALLOW_S = 1.0


def test_past_the_last_resort_the_backup_still_repeats_without_one(short_limits: None) -> None:
    """With no last resort set (a library's case), the backup of a taken-away alarm goes on
    repeating its Hang after LAST_RESORT_S: its first version of the resort replaced them, and
    a run whose code swallowed the first repeats was never stopped."""
    assert _watchdog._last_resort is None
    t0 = time.monotonic()
    run = run_scenario(RunSpec("dynamic-vb-ring", driver=lambda: ReferenceDriver(
        device_class=TakesTheAlarmAwayThenSwallows)), timeout=0.2).run
    assert run.failure is not None and run.failure.kind == "hang", run.summary()
    assert time.monotonic() - t0 < SWALLOW_S + 5


JOBS_DRIVER = DRIVER.replace(
    'open("in_the_loop", "w").close()  # for the test that sends Ctrl-C',
    'import os; open(f"pid.{os.getpid()}", "w").close()  # the worker, for the test')


def _worker_pids(where: Path) -> list[int]:
    pids = [int(p.name.split(".")[1]) for p in where.glob("pid.*")]
    assert pids and os.getpid() not in pids  # the runs were in worker processes
    return pids


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether process ``pid`` is gone, looking again for ``within`` seconds (terminated: the
    kernel may take a moment to reap it)."""
    deadline = time.monotonic() + within
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_a_jobs_worker_nothing_stops_ends_the_command_exit_1(tmp_path: Path) -> None:
    """A ``--jobs`` worker's run that swallows every stop kept the worker, and the command
    waited on it forever. The worker's own last resort hands its line to the parent, which
    says it as one process does, ends the other workers and exits 1 (wddmemu/_pool.py)."""
    _ends_exit_1_saying_so(tmp_path, JOBS_DRIVER, [
        "explore", "dynamic-vb-ring", "--schedules", "4", "--jobs", "2",
        "--save-dir", str(tmp_path / "saved")])
    assert all(_gone(pid) for pid in _worker_pids(tmp_path))  # no worker left spinning


@pytest.mark.slow  # a cluster of processes takes seconds to start; its workers' resort, 5 s
def test_a_local_cluster_worker_nothing_stops_ends_the_command_exit_1(tmp_path: Path) -> None:
    """``--cluster local:N``: the worker gives up into the command's box and dies, its task is
    not run again (``allowed_failures=0``), and the command says the hang's line, exit 1,
    where it waited forever."""
    _ends_exit_1_saying_so(tmp_path, JOBS_DRIVER, [
        "explore", "dynamic-vb-ring", "--schedules", "2", "--cluster", "local:2",
        "--save-dir", str(tmp_path / "saved")])
    assert all(_gone(pid) for pid in _worker_pids(tmp_path))


@pytest.mark.slow
def test_without_a_resort_of_its_own_the_parent_raises_run_not_stopped(
        tmp_path: Path, short_limits: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """An API caller sets no last resort: the pool ends its workers and raises RunNotStopped,
    with the run's line, where ``explore(jobs=2)`` used to wait forever."""
    from wddmemu import ExploreOptions, RunNotStopped, explore

    # a watched run first, as in a whole test session: the workers are forked with the
    # backup thread already running here (their own backup once never started)
    assert run_scenario(RunSpec("dynamic-vb-ring"), timeout=30).ok
    (tmp_path / "swallow_all.py").write_text(JOBS_DRIVER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert _watchdog.last_resort() is None
    with pytest.raises(RunNotStopped, match=r"^hang at step \d+ .*was in DDI Rename.* "
                                            r"\(the code under test swallows every stop"):
        explore(RunSpec("dynamic-vb-ring", driver="swallow_all:driver"),
                ExploreOptions(schedules=4, jobs=2, timeout=0.2))
    assert all(_gone(pid) for pid in _worker_pids(tmp_path))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_child_forked_while_the_backup_runs_has_a_backup_of_its_own(short_limits: None) -> None:
    """A fork copies the backup's state, not its thread: a ``--jobs`` worker forked after a
    watched run had no backup, so its run that swallowed every stop never reached the last
    resort, and the command waited on it forever (found by the whole slow suite)."""
    assert run_scenario(RunSpec("dynamic-vb-ring"), timeout=30).ok  # the backup starts
    assert _watchdog._backup._thread is not None and _watchdog._backup._thread.is_alive()
    pid = os.fork()
    if pid == 0:  # the child: its resort ends it with a code the parent reads
        try:
            set_last_resort(lambda line: os._exit(7 if line.startswith("hang at step") else 8))
            run_scenario(_spec("asyncio"), timeout=0.2)
        finally:
            os._exit(9)
    deadline = time.monotonic() + 20
    while (got := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    if got == (0, 0):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's run was never given up on")
    assert os.waitstatus_to_exitcode(got[1]) == 7


@contextmanager
def _remote_cluster(where: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A cluster of one worker process that is not the command's (no box in its environment):
    what ``--cluster tcp://…`` reaches. Its worker runs in ``where``, and is killed before the
    cluster closes, since nothing else ends the code under test spinning there."""
    import distributed

    monkeypatch.chdir(where)  # the worker's directory: the driver writes its pid file there
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  protocol="tcp://", host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as lc:
        try:
            yield lc
        finally:
            for pid in _spinning:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _spinning.clear()


#: the remote workers a test left spinning (killed by _remote_cluster)
_spinning: list[int] = []


def _still_spinning(where: Path) -> list[int]:
    pids = _worker_pids(where)
    _spinning.extend(pids)
    return [pid for pid in pids if not _gone(pid, within=0)]


@pytest.mark.slow  # a cluster of processes takes seconds to start; its worker's resort, 5 s
def test_a_remote_cluster_worker_nothing_stops_ends_the_command_exit_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--cluster tcp://…``: the worker is the cluster owner's, so it is not ended, and the
    command waited on its task forever. The task's run tells the command on its drive's topic
    (``wddmemu._cluster.cluster_task``), and the command says the hang's line, naming the
    worker that still runs it, exit 1."""
    with _remote_cluster(tmp_path, monkeypatch) as lc:
        _ends_exit_1_saying_so(tmp_path, JOBS_DRIVER, [
            "explore", "dynamic-vb-ring", "--schedules", "2", "--cluster", lc.scheduler_address,
            "--save-dir", str(tmp_path / "saved")],
            also=f"(on worker {lc.workers[0].worker_address}, which still runs it)")
        assert _still_spinning(tmp_path)  # not ours to end


@pytest.mark.slow
def test_on_a_client_of_its_own_an_api_caller_gets_run_not_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``explore_on_cluster`` on the caller's own client: RunNotStopped, with the run's line
    and what to do, where it waited forever; the worker is still the cluster's."""
    import distributed

    from wddmemu import ExploreOptions, RunNotStopped
    from wddmemu._cluster import explore_on_cluster, ship_modules

    (tmp_path / "swallow_all.py").write_text(JOBS_DRIVER)
    monkeypatch.syspath_prepend(str(tmp_path))
    with _remote_cluster(tmp_path, monkeypatch) as lc, distributed.Client(lc) as client:
        ship_modules(client, ["swallow_all"])
        raised: list[BaseException] = []

        def explore_there() -> None:  # in a thread: a test of "it waited forever" must end
            try:
                explore_on_cluster(client, RunSpec("dynamic-vb-ring", driver="swallow_all:driver"),
                                   ExploreOptions(schedules=2, timeout=0.2, minimise=False))
            except BaseException as e:  # the test looks at what it is
                raised.append(e)

        t = threading.Thread(target=explore_there, daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive(), "explore_on_cluster still waits on the spinning worker's task"
        (e,) = raised
        assert isinstance(e, RunNotStopped), repr(e)
        assert re.fullmatch(r"hang at step \d+ .*was in DDI Rename.*, which still runs it\) \(the "
                            r"code under test swallows every stop; restart that worker\)", str(e))
        assert _still_spinning(tmp_path)
        assert list(client.scheduler_info()["workers"]) == [lc.workers[0].worker_address]
