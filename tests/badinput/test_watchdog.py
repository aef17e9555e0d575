"""Issue 14: ``--timeout``. A CPU-bound loop in driver code, or a raw ``anyio.sleep_forever()``
under the uncontrolled ``free`` strategy, fails the run as ``hang`` naming the thread and the DDI
it was in, with ``run.failure`` in the trace, on both backends; a run that ends in time is
untouched. Under a controlled strategy the raw sleep needs no watchdog: the trampoline reports
it at once as ``foreign-await`` (docs/engine.md)."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

import vthreads as vt
import wddmemu
from umd import ReferenceDevice, ReferenceDriver
from vthreads.lowlevel import Watchdog as EngineWatchdog
from wddmemu._explore import ExploreOptions, explore
from wddmemu._runner import RunSpec, run_scenario, run_timeout


class SpinsInRename(ReferenceDevice):
    async def pfn_rename(self, args: Any) -> int:
        n = 0
        while True:  # a CPU-bound loop: no scheduling point is ever reached
            try:
                n += 1
            except Exception:  # a driver swallowing everything cannot stop it
                continue


class SleepsInLockAsync(ReferenceDevice):
    async def pfn_lock_async(self, args: Any) -> int:
        await anyio.sleep_forever()  # a wait the emulator does not control
        return 0


def _spec(device: type[ReferenceDevice], backend: str = "asyncio",
          strategy: str = "fifo") -> RunSpec:
    # a factory, not a driver object: explore gives every schedule a fresh driver
    return RunSpec("dynamic-vb-ring", driver=lambda: ReferenceDriver(device_class=device),
                   backend=backend, strategy=strategy)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("device,ddi,thread,strategy", [
    (SpinsInRename, "Rename", "dev0.worker", "fifo"),
    (SpinsInRename, "Rename", "dev0.worker", "free"),
    (SleepsInLockAsync, "LockAsync", "app", "free")])
def test_a_hung_driver_fails_the_run_as_hang(device: type, ddi: str, thread: str,
                                             strategy: str, backend: str) -> None:
    buf = io.BytesIO()
    res = run_scenario(_spec(device, backend, strategy), trace=buf, timeout=0.3)
    f = res.run.failure
    assert f is not None and f.kind == "hang", f
    assert f.thread == thread and f"thread {thread} was in DDI {ddi}" in f.message
    events = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    assert [e["kind"] for e in events if e["event"] == "run.failure"] == ["hang"]


class SlowToSay(EngineWatchdog):
    """A watchdog whose ``where`` runs Python code for longer than the alarm's repeat."""

    def where(self, thread: str) -> tuple[str, dict[str, Any]]:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.1:  # ten REFIRE_S: the repeats land in this frame
            pass
        return "slow to say", {}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_alarms_repeats_leave_the_stop_in_progress_alone(backend: str) -> None:
    """The flaky SleepsInLockAsync/free/trio case, made certain. The loop's stop runs the
    harness's ``where`` and the run.failure subscribers, code outside the engine: a repeat that
    landed there raised ``Hang`` into the stop. The failure was then cut short: on trio no
    ``run.failure`` line and no failure at all, and on asyncio a logged callback error, the run
    sleeping on. A repeat now leaves a stop in progress alone."""

    async def main() -> None:
        await anyio.sleep(2)  # not for ever: the old defect then ends the run, not the test

    buf = io.BytesIO()
    eng = vt.Engine("free", backend=backend, trace=buf)
    run = SlowToSay(0.2).attach(eng).run(eng, main)
    assert run.failure is not None and run.failure.kind == "hang", run.failure
    assert "thread main was slow to say" in run.failure.message
    events = [orjson.loads(x)["event"] for x in buf.getvalue().splitlines()]
    assert events == ["run.start", "run.failure", "run.end"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_raw_sleep_under_control_is_a_foreign_await_at_once(backend: str) -> None:
    res = run_scenario(_spec(SleepsInLockAsync, backend), timeout=30)
    f = res.run.failure
    assert f is not None and f.kind == "foreign-await" and f.thread == "app", f


def test_a_run_that_ends_in_time_is_untouched() -> None:
    plain = run_scenario(RunSpec("dynamic-vb-ring")).run
    watched = run_scenario(RunSpec("dynamic-vb-ring"), timeout=30).run
    assert watched.ok and watched.decisions == plain.decisions
    # the same trace, byte for byte (the watchdog subscribes to run.start and the DDI events)
    a, b = io.BytesIO(), io.BytesIO()
    run_scenario(RunSpec("dynamic-vb-ring", strategy="pct", seed=3), trace=a)
    run_scenario(RunSpec("dynamic-vb-ring", strategy="pct", seed=3), trace=b, timeout=30)
    assert a.getvalue() == b.getvalue() and a.getvalue().count(b"\n") > 100


def test_explore_finds_a_hang_like_a_finding() -> None:
    # ExploreOptions.timeout is explore's limit, whatever run_timeout is in force around it
    with run_timeout(0):
        res = explore(_spec(SpinsInRename),
                      ExploreOptions(schedules=3, strategy="random", timeout=0.3))
    assert [fd.finding.rule for fd in res.failures] == ["hang"]
    assert res.runs == 1 and not res.failures[0].minimised  # a hang is not minimised


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_nonsense_timeout_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="--timeout takes seconds >= 0"):
        run_timeout(bad).__enter__()


def test_a_worker_that_was_not_forked_runs_its_chunk_under_the_commands_timeout() -> None:
    """``--timeout`` travels with each task (``timed_task``), not in a module global only a
    forked worker inherits: a spawned worker — as Dask's are — reports the spinning driver
    as ``hang`` instead of spinning for ever."""
    import multiprocessing
    import os
    import signal
    from concurrent.futures import ProcessPoolExecutor

    from wddmemu._explore import _run_chunk
    from wddmemu._runner import current_timeout, timed_task

    spec = RunSpec("dynamic-vb-ring", driver="tests.support.hang:driver").to_dict()
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        with run_timeout(0.3):
            fut = pool.submit(timed_task, current_timeout(), _run_chunk, [spec])
        ((finding, _decisions),) = fut.result(timeout=120)
        assert finding is not None and finding[0] == "hang", finding
    finally:
        for p in list(pool._processes.values()):  # a worker still spinning (the old code)
            os.kill(p.pid, signal.SIGKILL)
        pool.shutdown(cancel_futures=True)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("device,ddi,strategy", [(SpinsInRename, "Rename", "fifo"),
                                                 (SleepsInLockAsync, "LockAsync", "free")])
def test_the_watchdog_works_off_the_main_thread(device: type, ddi: str, strategy: str,
                                                backend: str) -> None:
    """A Dask worker runs its tasks on a thread of its own, where SIGALRM cannot reach: a
    timer thread watches the run there instead, so a stuck driver is a ``hang`` finding, not a
    worker lost for good; and a run that ends in time on such a thread is untouched."""
    import threading

    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(
        run_scenario(_spec(device, backend, strategy), timeout=0.3)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the run was not stopped"
    f = got[0].run.failure
    assert f is not None and f.kind == "hang" and f"was in DDI {ddi}" in f.message, f
    clean: list[Any] = []
    t = threading.Thread(target=lambda: clean.append(
        run_scenario(RunSpec("dynamic-vb-ring", backend=backend), timeout=30)))
    t.start()
    t.join(60)
    assert clean[0].ok and clean[0].run.failure is None


@pytest.mark.slow  # watchdog timeouts of whole seconds (docs/testing.md)
def test_a_saved_hang_is_explained_with_its_events_and_replays_without_options(
        tmp_path: Path, capsys) -> None:
    """Explore's explanation of a hang shows what the stuck thread did up to the stuck DDI
    (replayed under a short watchdog), and ``replay FILE`` with no ``--timeout`` reproduces it
    instead of spinning for ever."""
    from wddmemu import _cli

    argv = ["explore", "dynamic-vb-ring", "--driver", "tests.support.hang:driver",
            "--strategy", "random", "--schedules", "2", "--timeout", "0.5",
            "--save-dir", str(tmp_path)]
    assert _cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "dev0.worker, last events up to step" in out, out
    assert "ddi.enter    ddi=Rename" in out.split("last events up to step", 1)[1], out
    (saved,) = tmp_path.iterdir()
    assert _cli.main(["replay", str(saved)]) == 1
    out = capsys.readouterr().out
    assert "replaying a hang under --timeout 0.5, then 3" in out, out
    assert "reproduced: hang at step" in out, out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("limit", [1e-6, 1e-5, 1e-4])
def test_a_limit_shorter_than_the_start_up_is_a_hang_not_a_traceback(backend: str,
                                                                      limit: float) -> None:
    # the alarm fired while it was being set, before the run started: its Hang escaped to the
    # user as a traceback (fuzzing, 7 December). Now the run fails as a hang at its start, or
    # (a limit that passes later) where it was, as any hang
    for _ in range(3):
        run = run_scenario(RunSpec("gl-icd-lock-entire", backend=backend), timeout=limit).run
        if run.failure is None:  # this small scenario may end in 0.1 ms: then it ended in time
            assert limit > 1e-6 and run.ok, run.summary()
            continue
        assert run.failure.kind == "hang", run.summary()
        assert f"did not end within {limit:g} s of wall time: " in run.failure.message
        if run.failure.thread is None:
            assert run.failure.message.endswith(
                "the limit passed before it started (raise the timeout)")


def test_a_hang_saved_before_the_run_started_replays_as_no_longer_hanging(tmp_path: Path
                                                                          ) -> None:
    # its decision list is empty: replay called the file damaged (exit 2) and the plugin a
    # "damaged failure file" (fuzzing, 7 December). Past the start, it simply no longer hangs
    from wddmemu._explore import load_failure, replay, save_failure

    res = explore(RunSpec("dynamic-vb-ring"), ExploreOptions(schedules=1, timeout=1e-6))
    [fd] = res.failures
    assert fd.finding.rule == "hang" and fd.spec.decisions == ()
    out = replay(load_failure(save_failure(fd, tmp_path)))
    assert out.kind == "clean", out


def test_a_saved_hang_replays_under_a_bound_of_its_own(tmp_path: Path, monkeypatch) -> None:
    # replay() took no limit: a pinned hang (pytest --wddmemu-failures) spun for ever
    from tests.support.loading import loading_state_kept
    from wddmemu import _explore
    from wddmemu._explore import load_failure, replay, save_failure

    monkeypatch.setattr(_explore, "HANG_QUICK_S", 0.3)  # the default's 0.5 s, shorter
    limits = _spy_limits(monkeypatch, _explore)
    with loading_state_kept():
        res = explore(RunSpec("dynamic-vb-ring", driver="tests.support.hang:driver"),
                      ExploreOptions(schedules=1, timeout=0.3, minimise=False))
        ff = load_failure(save_failure(res.failures[0], tmp_path))
        del limits[:]
        with run_timeout(0):  # none in force: the hang's own bound applies
            out = replay(ff)
        assert out.kind == "reproduced" and out.got is not None and out.got.rule == "hang"
        assert "within 0.3 s" in out.got.message
        assert limits == [0.3]  # it reached the stuck step: the quick limit was enough
        with pytest.raises(wddmemu.SpecError, match=r"^timeout takes seconds"):
            replay(ff, timeout=-1)


def _spy_limits(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[float | None]:
    """The ``timeout`` of each ``run_scenario`` that ``module`` makes, from now on."""
    seen: list[float | None] = []
    real = module.run_scenario

    def spy(*args: Any, **kw: Any) -> Any:
        seen.append(kw.get("timeout"))
        return real(*args, **kw)

    monkeypatch.setattr(module, "run_scenario", spy)
    return seen


@pytest.mark.slow
def test_a_hang_replay_stopped_short_of_its_step_runs_again_under_the_long_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick limit (HANG_QUICK_S) stops a replay whose stuck code comes late before its
    stuck step; replay and the explanation then run it again under HANG_REPLAY_S, so that the
    saved hang still reproduces, at its own step."""
    from tests.support import hang
    from tests.support.loading import loading_state_kept
    from wddmemu import _explore, _reports
    from wddmemu._explore import load_failure, replay, save_failure

    late = hang.SLOW_RENAMES * hang.SLOW_S  # when the stuck code comes: 0.3 s
    for module in (_explore, _reports):
        monkeypatch.setattr(module, "HANG_QUICK_S", late / 2)
        monkeypatch.setattr(module, "HANG_REPLAY_S", late + 0.5)
    with loading_state_kept():
        res = explore(RunSpec("dynamic-vb-ring", driver="tests.support.hang:slow_driver"),
                      ExploreOptions(schedules=1, timeout=late + 0.5, minimise=False))
        (fd,) = res.failures
        assert fd.finding.rule == "hang"
        ff = load_failure(save_failure(fd, tmp_path))
        limits = _spy_limits(monkeypatch, _explore)
        with run_timeout(0):
            out = replay(ff)
        assert limits == [late / 2, late + 0.5]
        assert out.kind == "reproduced" and out.got is not None, out
        assert out.got.step == ff.step
        explained = _spy_limits(monkeypatch, _reports)
        run, _ = _reports._replayed(fd)
        assert explained == [late / 2, late + 0.5]
        assert run.failure is not None and run.failure.step == fd.finding.step


class _Referenced:
    pass


class SpinsFreeingReferents(ReferenceDevice):
    """A CPU loop whose every turn runs a weakref callback, where CPython swallows whatever is
    raised ("Exception ignored in …"): an alarm landing there lost its Hang."""

    async def pfn_rename(self, args: Any) -> int:
        import time
        import weakref

        seen: weakref.WeakSet[_Referenced] = weakref.WeakSet()
        end = time.monotonic() + 30  # only when nothing stops it: the test then fails
        while time.monotonic() < end:
            o = _Referenced()
            seen.add(o)
            del o  # the WeakSet's callback runs here
        return 0


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_hang_the_code_swallows_is_raised_again(backend: str, capsys) -> None:
    # the alarm fired once: a Hang swallowed by a weakref callback left the loop spinning
    # on. It repeats every REFIRE_S until the run ends, and no "Exception ignored" is printed
    from vthreads._watchdog import REFIRE_S

    for _ in range(3):
        run = run_scenario(_spec(SpinsFreeingReferents, backend), timeout=0.05).run
        assert run.failure is not None and run.failure.kind == "hang", run.summary()
        assert "was in DDI Rename" in run.failure.message
    assert 0 < REFIRE_S <= 0.05
    assert "Exception ignored" not in capsys.readouterr().err


class TakesTheAlarmAway(ReferenceDevice):
    """A DDI that ignores SIGALRM, or cancels the interval timer, then spins (sweep E D6)."""

    how = "ignore"

    async def pfn_rename(self, args: Any) -> int:
        import signal
        import time

        if self.how == "ignore":
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
        else:
            signal.setitimer(signal.ITIMER_REAL, 0)
        end = time.monotonic() + 30  # only when nothing stops it: the test then fails
        while time.monotonic() < end:
            pass
        return 0


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("how", ["ignore", "cancel"])
def test_a_driver_that_takes_the_alarm_away_is_still_stopped(backend: str, how: str,
                                                             monkeypatch) -> None:
    """The main thread's alarm has a backup thread (``_watchdog._Backup``): BACKUP_S after the
    limit it stops the run the alarm could not; the host's SIGALRM handler is back after."""
    import signal
    import time

    from vthreads import _watchdog

    monkeypatch.setattr(_watchdog, "BACKUP_S", 0.1)
    device = type("Takes", (TakesTheAlarmAway,), {"how": how})
    before = signal.getsignal(signal.SIGALRM)
    t0 = time.monotonic()
    run = run_scenario(_spec(device, backend), timeout=0.2).run
    assert run.failure is not None and run.failure.kind == "hang", run.summary()
    assert "was in DDI Rename" in run.failure.message
    assert time.monotonic() - t0 < 10
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_backup_wakes_for_a_deadline_earlier_than_the_one_it_sleeps_toward(
        monkeypatch) -> None:
    """A run with a long limit left the backup asleep toward its deadline; a later run with a
    short one must not wait for that (it did: 47 s, in the full suite)."""
    import time

    from vthreads import _watchdog

    monkeypatch.setattr(_watchdog, "BACKUP_S", 0.1)
    run_scenario(RunSpec("dynamic-vb-ring"), timeout=600).run.check()  # asleep toward ~600 s
    t0 = time.monotonic()
    run = run_scenario(_spec(TakesTheAlarmAway), timeout=0.2).run
    assert run.failure is not None and run.failure.kind == "hang", run.summary()
    assert time.monotonic() - t0 < 10
