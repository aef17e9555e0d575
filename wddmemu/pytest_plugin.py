"""wddmemu's pytest plugin (entry point ``pytest11``): explore and replay inside tests.

* The ``wddmemu`` fixture explores a scenario — or your own async program on the engine — and
  fails the test with the broken rule and the replay command::

      def test_my_driver_survives_pct(wddmemu):
          wddmemu.check("dynamic-vb-ring", driver="mypkg.driver:make", schedules=300)

      @pytest.mark.trio                      # works together with pytest-trio
      async def test_inside_trio(wddmemu):
          await wddmemu.acheck("reentrant-lockasync", ddi_version=0xB, schedules=50)

* ``--wddmemu-failures DIR`` (or the ini option ``wddmemu_failures``): every failure file in DIR
  becomes a test that replays it and **passes while the bug stays fixed** (the recorded schedule
  runs clean), and fails, with the rule and the replay command, while it reproduces.
* ``--wddmemu-schedules N`` and ``--wddmemu-seed S`` override the schedule count and first
  seed of every ``check`` (e.g. a nightly job with many more schedules).
* ``--wddmemu-load MODULE`` (or the ini option ``wddmemu_load``) imports your scenario and
  driver module, as ``wddmemu --load`` does, so failure files that list it replay; installed
  ``wddmemu.scenarios`` / ``wddmemu.drivers`` entry points are loaded without it.

``driver=`` takes a registered name, ``"module:attr"``, a factory or a driver class: every
schedule gets a fresh driver from it. A driver instance is refused in one line (it would carry
its state from one schedule into the next). A failure found with a factory or class is saved
only if it has a name (it is registered, or ``module:qualname`` finds it again); otherwise the
test fails with the rule and says that the file was not saved and how to give it a name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import pytest

from ._drivers import load_module
from ._errors import SpecError, check_seconds
from ._explore import (
    DEFAULT_STRATEGY,
    ExploreOptions,
    ExploreResult,
    FailureFile,
    FailureFileError,
    Finding,
    load_failure,
    replay,
    replay_command,
    save_failure,
)
from ._explore import explore as _explore
from ._program import check_program as _check_program
from ._reports import explain_lines
from ._runner import (
    DEFAULT_QUEUE_SIZE,
    DEFAULT_STEP_BUDGET,
    RunSpec,
    check_spec,
    run_scenario_async,
)
from ._tracebacks import failure_traceback
from ._watchdog import EXPLORE_TIMEOUT


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("wddmemu", "wddmemu concurrency exploration")
    g.addoption("--wddmemu-schedules", type=int, default=None, metavar="N",
                help="schedules per wddmemu.check (overrides the test's own count)")
    g.addoption("--wddmemu-seed", type=int, default=None, metavar="S",
                help="seed of the first schedule of every wddmemu.check")
    g.addoption("--wddmemu-failures", action="append", default=[], metavar="DIR",
                help="a directory of failure files to replay as regression tests")
    g.addoption("--wddmemu-save-dir", default=None, metavar="DIR",
                help="save the failures wddmemu.check finds here (default: the test's tmp_path)")
    g.addoption("--wddmemu-load", action="append", default=[], metavar="MODULE",
                help="import MODULE (your scenarios and drivers) so failure files may name it")
    parser.addini("wddmemu_failures", "directories of failure files to replay as tests",
                  type="paths", default=[])
    parser.addini("wddmemu_load", "modules with your scenarios and drivers to import",
                  type="linelist", default=[])


def _failure_dirs(config: pytest.Config) -> list[Path]:
    dirs = [Path(d) for d in config.getoption("wddmemu_failures")]
    dirs += [Path(d) for d in config.getini("wddmemu_failures")]
    return [d.resolve() for d in dirs]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "wddmemu: a wddmemu exploration or replay test")
    for m in [*config.getini("wddmemu_load"), *config.getoption("wddmemu_load")]:
        try:
            load_module(m)
        except SpecError as e:
            raise pytest.UsageError(f"--wddmemu-load: {e}") from None
    # make sure the failure directories are collected even when they are not under the paths
    # pytest was given
    for d in _failure_dirs(config):
        if not d.is_dir():  # a misspelled directory must not pass silently (issue 14)
            raise pytest.UsageError(f"--wddmemu-failures: {d} is not a directory: check the "
                                    "path (it holds the saved failure files)")
        if not any(Path(a).resolve() in (d, *d.parents) for a in config.args):
            config.args.append(str(d))


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never skip a failure directory, or a directory on the way to one. Explore saves to
    ``.wddmemu/failures``, and pytest's ``norecursedirs`` skips every ``.*`` directory: under
    a plain ``pytest --wddmemu-failures .wddmemu/failures`` (its directory inside the
    current one, so not added to the arguments above) nothing was collected. False ends the
    hook's search (it takes the first answer); None leaves the path to pytest's own rules.
    Every pytest run where the package is installed calls this for every path it collects:
    without a failure directory it resolves nothing."""
    dirs = _failure_dirs(config)
    if not dirs:
        return None
    path = collection_path.resolve()
    if any(path == d or path in d.parents for d in dirs):
        return False
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".json":
        return None
    resolved = file_path.resolve()
    if any(d in resolved.parents for d in _failure_dirs(parent.config)):
        return FailureFileCollector.from_parent(parent, path=file_path)
    return None


class FailureFileCollector(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield FailureReplayItem.from_parent(self, name=self.path.stem)


class FailureReproduced(Exception):
    pass


class FailureReplayItem(pytest.Item):
    """One saved failure, replayed: passes while the recorded schedule runs clean."""

    def runtest(self) -> None:
        try:
            ff = load_failure(self.path)
        except FailureFileError as e:
            raise FailureReproduced(f"unreadable failure file: {e}") from None
        except SpecError as e:  # LoadRefused: the file names a module nobody allowed
            raise FailureReproduced(f"{e} (pytest: --wddmemu-load MODULE)") from None
        try:
            out = replay(ff)
        except FailureFileError as e:  # damaged decisions: never a pass as "fixed"
            raise FailureReproduced(f"damaged failure file: {e}") from None
        if out.kind == "clean":
            return
        if out.kind == "diverged":
            # the program changed (often: the fix itself); replay ran what still applies of
            # the recording, then fifo, and that broke something
            f = out.got
            assert f is not None
            raise FailureReproduced(
                f"the program diverged from the recording and then broke {f.rule} at step "
                f"{f.step}: {f.message}\n"
                f"replay: {replay_command(ff.spec, self.path)}")
        got = out.got
        raise FailureReproduced(
            f"{'reproduced' if out.kind == 'reproduced' else 'a different failure'}: "
            f"{got.rule if got else '?'} at step {got.step if got else '?'}: "
            f"{got.message if got else ''}\n"
            f"replay: {replay_command(ff.spec, self.path)}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, FailureReproduced):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"wddmemu replay: {self.name}"


def _bad_input(why: str) -> NoReturn:
    """Fail the test with one line (outside any ``except``: no "during handling" chain)."""
    pytest.fail(f"wddmemu: {why}", pytrace=False)


class Explorer:
    """The ``wddmemu`` fixture: explore scenarios or programs from a test."""

    def __init__(self, config: pytest.Config, save_dir: Path) -> None:
        self._schedules = config.getoption("wddmemu_schedules")
        self._seed = config.getoption("wddmemu_seed")
        self.save_dir = save_dir

    def _opts(self, schedules: int, strategy: str, seed: int, depth: int,
              timeout: float) -> ExploreOptions:
        return ExploreOptions(
            schedules=self._schedules or schedules, strategy=strategy,
            seed=self._seed if self._seed is not None else seed, depth=depth, timeout=timeout,
        )

    def explore(self, scenario: str, *, params: dict[str, Any] | None = None,
                driver: Any = "reference", driver_options: dict[str, Any] | None = None,
                ddi_version: int | None = None, bugs: tuple[str, ...] = (),
                strategy: str = DEFAULT_STRATEGY, schedules: int = 200, seed: int = 0,
                depth: int = 3,
                backend: str = "asyncio", queue_size: int = DEFAULT_QUEUE_SIZE,
                step_budget: int = DEFAULT_STEP_BUDGET,
                timeout: float = EXPLORE_TIMEOUT) -> ExploreResult:
        """Explore and return the result (no assertion). ``driver``: a registered name,
        ``"module:attr"``, a factory or a driver class (never an instance: each schedule needs a
        fresh driver). ``timeout``: each schedule's seconds of wall time (0: off), explore's
        ``--timeout``: a driver in a CPU loop is a ``hang`` failure, not a test that never
        ends. An unknown scenario or driver, or a driver instance, fails the test in one
        line."""
        base = RunSpec(scenario, params=dict(params or {}), driver=driver,
                       driver_options=dict(driver_options or {}), ddi_version=ddi_version,
                       bugs=tuple(bugs), backend=backend, queue_size=queue_size,
                       step_budget=step_budget)
        try:
            check_spec(base, many=True)
            return _explore(base, self._opts(schedules, strategy, seed, depth, timeout))
        except SpecError as e:
            why = str(e)
        _bad_input(why)

    def check(self, scenario: str, **kw: Any) -> ExploreResult:
        """Explore; if anything breaks, fail the test with what ``wddmemu explore`` prints for
        the first failure: the finding, the minimisation, the user's traceback of an
        ``exception``, the trace excerpt, the schedule's other findings, and the replay
        command of its saved file."""
        res = self.explore(scenario, **kw)
        if res.failures:
            fd = res.failures[0]
            try:
                path = save_failure(fd, self.save_dir)
                where = f"replay: {replay_command(fd.spec, path)}"
            except SpecError as e:  # a driver object without a name
                where = f"not saved: {e}"
            first, *rest = explain_lines(fd)
            pytest.fail("\n".join([f"{scenario} (schedule {fd.index}, counted from 0; "
                                   f"{res.runs} run): {first}",
                                   *rest, where]), pytrace=False)
        return res

    async def acheck(self, scenario: str, *, schedules: int = 50, seed: int = 0,
                     strategy: str = DEFAULT_STRATEGY, timeout: float = EXPLORE_TIMEOUT,
                     **kw: Any) -> int:
        """:meth:`check` from inside a running event loop (pytest-trio, anyio tests): runs the
        schedules on the running loop, without minimisation, each under ``timeout``. Returns
        the schedule count."""
        n = self._schedules or schedules
        first = self._seed if self._seed is not None else seed
        base = RunSpec(scenario, params=dict(kw.pop("params", None) or {}), **kw)
        why = None
        try:
            check_spec(base, many=True)
            check_seconds("timeout", timeout)
        except SpecError as e:
            why = str(e)
        if why is not None:
            _bad_input(why)
        for i in range(n):
            spec = replace(base, strategy=strategy, seed=first + i)
            r = (await run_scenario_async(spec, stop_on_violation=True, timeout=timeout)).run
            f = Finding.of(r)
            if f is not None:  # the finding, the user's traceback of an exception, the command
                pytest.fail("\n".join([f"{scenario}: {f.rule} at step {f.step} on {f.thread}: "
                                       f"{f.message}", *failure_traceback(r.failure),
                                       f"replay: {spec.command('run')}"]), pytrace=False)
        return n

    def check_program(self, program: Callable[[], Awaitable[Any]], *, schedules: int = 200,
                      strategy: str = "random", seed: int = 0, depth: int = 3,
                      backend: str = "asyncio", timeout: float = EXPLORE_TIMEOUT) -> int:
        """Explore your own async program on the engine (threads, mutexes, shared cells): fail
        with the seed and decision list of the first schedule that breaks a rule, races,
        deadlocks, raises or hangs (``timeout`` seconds of wall time per schedule, 0: off; as
        :func:`wddmemu.check_program`). ``program`` is called afresh for every schedule."""
        n = self._schedules or schedules
        first = self._seed if self._seed is not None else seed
        try:
            res = _check_program(program, schedules=n, strategy=strategy, seed=first,
                                 depth=depth, backend=backend, timeout=timeout)
        except SpecError as e:
            why = str(e)
        else:
            why = None
        if why is not None:
            _bad_input(why)
        if not res.ok:
            pytest.fail(res.describe(), pytrace=False)
        return n

    @staticmethod
    def load(path: Path | str) -> FailureFile:
        return load_failure(path)


@pytest.fixture
def wddmemu(request: pytest.FixtureRequest, tmp_path: Path) -> Explorer:
    """Explore wddmemu scenarios and programs inside a test; failure files are saved under the
    test's ``tmp_path``, or in ``--wddmemu-save-dir DIR`` (e.g. a directory of the project that
    ``--wddmemu-failures`` later replays as regression tests)."""
    chosen = request.config.getoption("wddmemu_save_dir")
    return Explorer(request.config, Path(chosen) if chosen else tmp_path / "wddmemu-failures")
