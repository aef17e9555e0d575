"""Running one scenario under one schedule: the wiring behind ``wddmemu run``, ``explore`` and
``replay``.

A :class:`RunSpec` says everything that determines a run — scenario and parameters, driver and
its DDI version, runtime bugs, strategy, seed, backend, and (for replays) the decision list — and
is what a failure file stores. :func:`run_scenario` builds a fresh kernel, driver, runtime and
checker for it, runs it on the engine, and returns a :class:`ScenarioResult`.
"""

from __future__ import annotations

import functools
import os
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, TypeVar

import kmd
import scenarios
from runtime import RUNTIME_BUGS, DeviceConfig, open_adapter
from scenarios import ScenarioContext
from vthreads import Engine, RunResult, Strategy, log, make_strategy
from vthreads.lowlevel import refuse_running_loop

from . import _loading
from ._checker import Checker
from ._drivers import (
    describe_driver,
    driver_name,
    load_entry_points,
    refuse_driver_object,
    resolve_driver,
)
from ._errors import SpecError, check_backend, check_seconds
from ._files import atomic_path, shell_join
from ._watchdog import Watchdog, check_timeout

T = TypeVar("T")

__all__ = ["DEFAULT_DRIVER", "RunSpec", "ScenarioResult", "SpecError", "check_spec",
           "parse_faults", "resolve_driver", "run_scenario", "run_scenario_async"]

DEFAULT_DRIVER = "reference"
#: ``RunSpec.step_budget``'s default (== the CLI's ``--step-budget`` default)
DEFAULT_STEP_BUDGET = 200_000
#: the MP layer's queue length (``--queue-size``; runtime.DeviceConfig's default)
DEFAULT_QUEUE_SIZE = 16


@dataclass(frozen=True)
class RunSpec:
    scenario: str
    params: dict[str, Any] = field(default_factory=dict)
    #: a registered name (``wddmemu drivers``), ``MODULE:ATTR``, or (in code only, never in a
    #: file) a driver factory, class or instance (an instance: one run only, never explored)
    driver: Any = DEFAULT_DRIVER
    ddi_version: int | None = None
    bugs: tuple[str, ...] = ()
    strategy: str = "fifo"
    seed: int = 0
    depth: int = 3
    pct_steps: int = 1000
    backend: str = "asyncio"
    step_budget: int = DEFAULT_STEP_BUDGET
    queue_size: int = DEFAULT_QUEUE_SIZE
    decisions: tuple[int, ...] | None = None
    #: ``--driver-opt key=value``: keyword arguments of the driver factory
    driver_options: dict[str, Any] = field(default_factory=dict)
    #: ``--inject``: the faults armed on the kernel, in their text form (``kmd.parse_fault``;
    #: ``explore --faults`` picks them from the seed); a failure file stores them as they are
    faults: tuple[str, ...] = ()

    def with_decisions(self, decisions: tuple[int, ...]) -> RunSpec:
        return replace(self, strategy="replay", decisions=tuple(decisions))

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-able data (what a failure file stores). A driver given as an object
        is stored by :func:`driver_name`; one without a name raises :class:`SpecError`."""
        name = driver_name(self.driver)
        if name is None:  # named as messages name it: no memory address (sweep G D5)
            raise SpecError(
                f"the driver {describe_driver(self.driver)} has no name to save: register it "
                "with wddmemu.register_driver(name, factory) or pass it as 'module:attr'")
        d = asdict(replace(self, driver=DEFAULT_DRIVER))
        d["driver"] = name
        d["driver_options"] = dict(self.driver_options)
        d["bugs"] = list(self.bugs)
        d["faults"] = list(self.faults)
        d["decisions"] = None if self.decisions is None else list(self.decisions)
        return d

    def command(self, verb: str = "run", trace: str | None = None,
                timeout: float = 0.0) -> str:
        """The ``wddmemu`` command line that reruns this spec: every option that differs from
        its default (``--step-budget`` too: a step-budget failure needs it), and ``--timeout``
        when ``timeout`` (seconds) is not 0, since a hang rerun without the watchdog never
        ends."""
        parts = ["wddmemu"]
        for m in _loading.load_arguments():
            parts += ["--load", m]
        parts += [verb, self.scenario]
        for k, v in sorted(self.params.items()):
            parts += ["-p", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
        if self.driver != DEFAULT_DRIVER:
            parts += ["--driver", driver_name(self.driver) or repr(self.driver)]
        for k, v in sorted(self.driver_options.items()):
            parts += ["--driver-opt", f"{k}={v}"]
        if self.ddi_version is not None:
            parts += ["--ddi-version", hex(self.ddi_version)]
        for b in self.bugs:
            parts += ["--bug", b]
        for f in self.faults:
            parts += ["--inject", f]
        parts += ["--strategy", self.strategy, "--seed", str(self.seed)]
        if self.strategy == "pct":
            parts += ["--depth", str(self.depth), "--pct-steps", str(self.pct_steps)]
        if self.backend != "asyncio":
            parts += ["--backend", self.backend]
        if self.step_budget != DEFAULT_STEP_BUDGET:
            parts += ["--step-budget", str(self.step_budget)]
        if self.queue_size != DEFAULT_QUEUE_SIZE:
            parts += ["--queue-size", str(self.queue_size)]
        if timeout:
            parts += ["--timeout", _seconds(timeout)]
        if trace:
            parts += ["--trace", trace]
        return shell_join(parts)  # one line whatever a value holds (sweep H D9)


def _seconds(value: float) -> str:
    """``value`` as short text that reads back as the same float (``3``, ``0.3``)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


@dataclass(frozen=True)
class ScenarioResult:
    spec: RunSpec
    run: RunResult
    devices: tuple[Any, ...]
    kernel: Any
    events: int

    @property
    def ok(self) -> bool:
        return self.run.ok


def check_spec(spec: RunSpec, *, by: str | None = None, many: bool = False
               ) -> tuple[Any, dict[str, Any]]:
    """Validate everything about ``spec`` that can be checked before running; returns the
    scenario and its resolved parameters. Raises :class:`SpecError`. ``by`` (a file path) marks
    a spec read from a file: names resolve only through the registries and allowed modules.
    ``many``: the spec is the base of many runs (explore, check, a campaign), so its driver
    must be a factory or class, never a driver object (each schedule needs its own driver)."""
    sc, params, _kernel, _driver = _resolve(spec, by=by)
    if many:
        refuse_driver_object(spec.driver, by=by)
    return sc, params


#: the numbers of a :class:`RunSpec` and their ranges (both ends included; docs/explore.md):
#: a seed is a 63-bit int so that every file and report can store it exactly
SPEC_RANGES: dict[str, tuple[int, int]] = {
    "seed": (0, 2**63 - 1), "depth": (1, 1000), "pct_steps": (1, 10**12),
    "step_budget": (1, 10**12), "queue_size": (1, 65_536),
}


def _check_fields(spec: RunSpec) -> None:
    """The kinds and ranges of ``spec``'s fields (SPEC_RANGES, names, lists), as SpecError."""
    for name, (lo, hi) in SPEC_RANGES.items():
        v = getattr(spec, name)
        if type(v) is not int or not lo <= v <= hi:
            shown = v if type(v) is int and v.bit_length() < 200 else type(v).__name__
            raise SpecError(f"{name.replace('_', '-')} takes an integer {lo}..{hi:,}, "
                            f"not {shown!r}")
    v = spec.ddi_version
    if v is not None and (type(v) is not int or not 0 <= v <= 0xFFFFFFFF):
        raise SpecError("ddi-version takes a 32-bit DriverVersion 0..0xFFFFFFFF")
    if not isinstance(spec.params, dict) or not isinstance(spec.driver_options, dict):
        raise SpecError("params and driver options are key=value pairs")
    d = spec.decisions
    if d is not None and (not isinstance(d, Sequence) or isinstance(d, str | bytes)
                          or not all(type(x) is int and 0 <= x < 1 << 31 for x in d)):
        raise SpecError("a decision list holds thread indices (ints >= 0)")
    # the names: a list or dict here reached a registry's `in` as an unhashable key
    for name in ("scenario", "strategy", "backend"):
        if not isinstance(getattr(spec, name), str):
            raise SpecError(f"the {name} is a name, not {type(getattr(spec, name)).__name__}")
    if not isinstance(spec.bugs, tuple | list):
        raise SpecError("bugs must be a list of bug names")


def kernel_config(sc: Any, params: dict[str, Any], bugs: Any) -> kmd.KernelConfig:
    """The kernel's configuration for a run of ``sc`` with ``params``: its ``kernel=``
    overrides and the spec's kernel bugs. Raises :class:`SpecError` (one line, exit 2) when
    the scenario's function raises or gives what ``KernelConfig`` refuses — user input, never
    an internal error (h8)."""
    try:
        over = sc.kernel_overrides(params)
    except ValueError as e:
        raise SpecError(str(e)) from None
    try:
        return kmd.KernelConfig(**over, bugs=frozenset(b for b in bugs if b in kmd.KERNEL_BUGS))
    except (TypeError, ValueError) as e:
        raise SpecError(f"scenario {sc.name}: kernel= gave a configuration the kernel refuses "
                        f"({type(e).__name__}: {e})") from None


def _resolve(spec: RunSpec, *, by: str | None = None
             ) -> tuple[Any, dict[str, Any], kmd.KernelConfig, Any]:
    """:func:`check_spec`, also returning the kernel configuration and the driver it built to
    validate ``spec`` (a fresh driver: a driver keeps per-run state, so each run resolves its
    own; the configuration once, so a scenario's ``kernel=`` runs once a run)."""
    if not isinstance(spec, RunSpec):  # a name or a dict is the natural slip (h10)
        raise SpecError(f"expected a RunSpec (wddmemu.RunSpec('dynamic-vb-ring', ...)), not "
                        f"{type(spec).__name__}")
    load_entry_points()
    _check_fields(spec)
    try:
        sc = scenarios.get(spec.scenario)
    except KeyError as e:
        hint = _loading.broken_hint("scenario", spec.scenario)
        if hint:
            raise SpecError(f"unknown scenario {spec.scenario!r}{hint}") from None
        raise SpecError(str(e.args[0]) if e.args else str(e)) from None
    try:
        params = sc.resolve(spec.params)
    except ValueError as e:
        raise SpecError(str(e)) from None
    kconf = kernel_config(sc, params, spec.bugs)
    for b in spec.bugs:
        if not isinstance(b, str) or (b not in RUNTIME_BUGS and b not in kmd.KERNEL_BUGS):
            known = ", ".join([*RUNTIME_BUGS, *kmd.KERNEL_BUGS])
            raise SpecError(f"unknown bug {b!r}: choose from {known}")
    check_backend(spec.backend)
    parse_faults(spec.faults)
    if spec.strategy == "replay" and spec.decisions is None:
        raise SpecError("the replay strategy needs a decision list (use 'wddmemu replay FILE')")
    try:
        make_strategy(spec.strategy, seed=spec.seed, depth=spec.depth, pct_steps=spec.pct_steps,
                      decisions=spec.decisions or ())
    except ValueError as e:
        raise SpecError(str(e)) from None
    # only an explicit --ddi-version is a request a driver may refuse; the scenario's declared
    # version is a default for drivers that take one (resolve_driver)
    driver = resolve_driver(spec.driver, spec.ddi_version, spec.driver_options, by=by,
                            default_version=sc.ddi_version)
    return sc, params, kconf, driver


#: id -> (a weak reference to) every driver object that has run: a driver keeps its state
_ran: dict[int, Any] = {}


def _forget(key: int) -> Callable[[weakref.ref[Any]], object]:
    """The callback that drops ``key`` from :data:`_ran` when its driver is collected: C code
    only (``partial`` of ``dict.pop``; called with the dead reference, which becomes pop's
    unused default). A driver is collected at any point of a run, and a Python callback is
    bytecode a SIGINT handler can run in: its KeyboardInterrupt was then raised inside the
    finalizer, where CPython can only print "Exception ignored in: <function
    _claim_driver.<locals>.<lambda>>" and drop it (h9). No bytecode, no handler: the interrupt
    lands in the code that dropped the driver, which unwinds as every Ctrl-C does."""
    return functools.partial(_ran.pop, key)


def _claim_driver(driver: Any) -> None:
    """Refuse a driver object that ran before (an instance given twice, or a factory that
    returns the same object each time): its state from the earlier run (device names,
    handles, counters) would make this run differ from the same spec run alone."""
    key = id(driver)
    held = _ran.get(key)
    if held is not None and (held() if isinstance(held, weakref.ref) else held) is driver:
        raise SpecError(f"the driver object {describe_driver(driver)} has run a schedule "
                        "already, and a driver keeps its state from one run to the next: pass "
                        "a factory or class, which makes a fresh driver for every run")
    try:
        _ran[key] = weakref.ref(driver, _forget(key))
    except TypeError:  # no weak references to it: keep it (and its id) for good
        _ran[key] = driver


def parse_faults(texts: Any) -> tuple[kmd.Fault, ...]:
    """The faults ``texts`` (``RunSpec.faults``) name; :class:`SpecError` for a bad one."""
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise SpecError("faults must be a list of fault texts")
    try:
        return tuple(kmd.parse_fault(t) for t in texts)
    except ValueError as e:
        raise SpecError(str(e)) from None


def _prepare(
    spec: RunSpec,
    trace: str | Path | IO[bytes] | bool | None,
    strategy: Strategy | None,
    stop_on_violation: bool,
) -> tuple[Engine, Checker, Any, dict[str, Any]]:
    sc, params, kconf, driver = _resolve(spec)
    _claim_driver(driver)
    if strategy is None:
        strategy = make_strategy(spec.strategy, seed=spec.seed, depth=spec.depth,
                                 pct_steps=spec.pct_steps, decisions=spec.decisions)
    engine = Engine(
        strategy, seed=spec.seed, backend=spec.backend, step_budget=spec.step_budget,
        trace=trace, context={"scenario": spec.scenario}, stop_on_violation=stop_on_violation,
    )
    checker = Checker().attach(engine)
    box: dict[str, Any] = {}

    faults = parse_faults(spec.faults)

    async def main() -> None:
        kernel = kmd.Kernel(kconf)
        for f in faults:
            kernel.arm_fault(f)
        box["kernel"] = kernel
        adapter = await open_adapter(kernel, driver)
        ctx = ScenarioContext(kernel, adapter,
                              DeviceConfig(queue_size=spec.queue_size,
                                           bugs=frozenset(spec.bugs) - kconf.bugs,
                                           keep_draws=False),
                              params)
        box["ctx"] = ctx
        # the data oracle judges each DMA buffer as it finishes: nothing of a frame is kept
        checker.watch_dma(kernel, ctx.devices)
        # A scenario's expectations are judged after the checker's final checks, so that a
        # failed expectation (which ends an explore run at once) never masks the data oracle.
        failed: list[str] = []
        ctx.expect = lambda ok, message: None if ok else failed.append(message)  # type: ignore
        await sc.fn(ctx, **params)
        log("scenario.teardown")  # explanations tell teardown events from the body's
        await ctx.close()
        checker.final([kernel], ctx.devices)
        for message in failed:
            ScenarioContext.expect(ctx, False, message)

    box["main"] = main
    return engine, checker, box, params


def _result(spec: RunSpec, run: RunResult, checker: Checker, box: dict[str, Any]
            ) -> ScenarioResult:
    ctx = box.get("ctx")
    kernel = box.get("kernel")
    return ScenarioResult(
        spec=spec,
        run=run,
        devices=tuple(d.statistics() for d in ctx.devices) if ctx else (),
        kernel=kernel.statistics() if kernel else None,
        events=checker.events_seen,
    )


def run_scenario(
    spec: RunSpec,
    *,
    trace: str | Path | IO[bytes] | bool | None = None,
    strategy: Strategy | None = None,
    stop_on_violation: bool = False,
    timeout: float | None = None,
) -> ScenarioResult:
    """Run ``spec`` once. ``strategy`` overrides the spec's (explorers pass prefix replays);
    ``stop_on_violation`` ends the run at the first broken rule (explore and replay use it);
    ``timeout`` (seconds, 0 off; default: :func:`run_timeout`'s) stops a hung run as ``hang``.
    Synchronous: inside a running event loop it raises ``LoopRunningError``
    (use :func:`run_scenario_async`)."""
    refuse_running_loop("wddmemu.run_scenario()", "wddmemu.run_scenario_async")
    if timeout is not None:
        check_seconds("timeout", timeout)  # a SpecError naming the keyword, not --timeout
    with _atomic_trace(trace) as target, _cwd_kept():
        engine, checker, box, _ = _prepare(spec, target, strategy, stop_on_violation)
        dog = Watchdog(_timeout[0] if timeout is None else timeout).attach(engine)
        return _result(spec, dog.run(engine, box["main"], name="app"), checker, box)


@contextmanager
def _atomic_trace(trace: str | Path | IO[bytes] | bool | None
                  ) -> Iterator[str | Path | IO[bytes] | bool | None]:
    """A trace given as a path is written beside it and renamed over it when the run ends: the
    file appears complete or not at all, and a run that raises leaves an old file untouched.
    Streams and ``True``/``None`` pass through."""
    if isinstance(trace, str | Path):
        with atomic_path(trace) as tmp:
            yield tmp
    else:
        yield trace


def _getcwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # removed under the process: there is nothing to go back to
        return None


@contextmanager
def _cwd_kept() -> Iterator[None]:
    """The working directory is back when the run ends, whatever the driver did with it: the
    trace's rename (after this), the failure files explore saves and the paths it prints are
    relative to the directory the user ran in (sweep E D8: a DDI's ``os.chdir`` put them
    elsewhere and the printed ``replay`` command failed)."""
    cwd = _getcwd()
    try:
        yield
    finally:
        if cwd is not None and _getcwd() != cwd:
            with suppress(OSError):
                os.chdir(cwd)


_timeout = [0.0]  # the --timeout of the command in progress (seconds; 0: off)


def current_timeout() -> float:
    """The ``--timeout`` in force (seconds; 0: off): what a task sent to another process must
    carry, since a worker that was not forked from this one starts with the default."""
    return _timeout[0]


def timed_task(seconds: float, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` under :func:`run_timeout` of ``seconds``: the entry of every task that
    runs schedules in a worker process (a ``--jobs`` pool, a Dask worker), so a driver stuck in
    a CPU loop there is a ``hang`` finding, not a worker lost for good (a run nothing stops:
    ``wddmemu/_giving_up.py``)."""
    with run_timeout(seconds):
        return fn(*args)


@contextmanager
def run_timeout(seconds: float) -> Iterator[None]:
    """Every :func:`run_scenario` in the block (explore's schedules, replays, minimising) runs
    under a wall-clock watchdog of ``seconds`` (``0``: off); ``docs/explore.md``."""
    old, _timeout[0] = _timeout[0], check_timeout(seconds)
    try:
        yield
    finally:
        _timeout[0] = old


async def run_scenario_async(
    spec: RunSpec,
    *,
    trace: str | Path | IO[bytes] | bool | None = None,
    strategy: Strategy | None = None,
    stop_on_violation: bool = False,
    timeout: float | None = None,
) -> ScenarioResult:
    """:func:`run_scenario` from inside a running event loop (pytest-trio tests, notebooks,
    explore's one loop for many schedules). The backend is the running loop's, and the
    result's ``spec.backend`` says which.

    It is a coroutine, but not a cooperative one: the run holds the loop from start to end,
    never yielding to it, so other tasks wait, and the host's cancellation (``anyio.fail_after``,
    ``asyncio.wait_for``, a cancel scope) is seen only once the run is over — it cannot stop
    it. Bound the run's wall time with ``timeout`` (seconds: the watchdog stops it as a
    ``hang``); keep the loop responsive by running :func:`run_scenario` in a worker thread
    (``await anyio.to_thread.run_sync(run_scenario, spec)``). A controlled run never yields
    on purpose: it may run inside another engine's emulated thread, where any yield would be a
    foreign await, and the watchdog's alarm, the Ctrl-C handler and asyncio's task factory
    are held per run, on the premise that nothing else runs on the loop meanwhile (docs/explore.md,
    "Running inside an event loop")."""
    if timeout is not None:
        check_seconds("timeout", timeout)
    with _atomic_trace(trace) as target, _cwd_kept():
        engine, checker, box, _ = _prepare(spec, target, strategy, stop_on_violation)
        dog = Watchdog(_timeout[0] if timeout is None else timeout).attach(engine)
        run = await dog.run_async(engine, box["main"], name="app")
        # the run took the running loop's backend (the engine's context says so in the trace):
        # so does the result's spec, which a failure file and a replay line are made from
        return _result(replace(spec, backend=engine.backend), run, checker, box)
