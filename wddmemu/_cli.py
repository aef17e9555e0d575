"""The ``wddmemu`` command line.

Exit codes: 0 clean, 1 a rule broke (or a failure was found / reproduced), 2 bad input (one line
on stderr, never a traceback), 3 internal error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import errno
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# Startup: ``wddmemu --version`` and ``--help`` import only click and this module. rich, the
# runner (and with it the engine, kernel, driver, runtime and checker) and matplotlib are
# imported inside the commands that use them — for startup speed only; nothing here is a cycle.
from . import _loading
from ._errors import (
    BACKENDS,
    EXIT_BAD_INPUT,
    EXIT_FAIL,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    MAX_TIMEOUT_S,
    SpecError,
)
from ._files import check_directory, check_output, is_utf8, stdout_may_close, stdout_to_null
from ._interrupt import ctrl_c, is_interrupt, quiet_after_interrupt
from ._schema import is_module_name

if TYPE_CHECKING:
    from rich.console import Console

    from ._explore import Found
    from ._runner import RunSpec, ScenarioResult

#: explore prints a progress line this often (seconds) when stdout is not a terminal
PROGRESS_EVERY = 5.0
DEFAULT_DRIVER = "reference"  # == _runner.DEFAULT_DRIVER (tests/cli checks they agree)
DEFAULT_SAVE_DIR = ".wddmemu/failures"  # == _explore.DEFAULT_SAVE_DIR


class BadInput(click.ClickException):
    exit_code = EXIT_BAD_INPUT


#: what ``--ddi-version`` takes, as its message says: ASCII decimal or 0x hex (``int(t, 0)``
#: also took ``0b1011``, ``1_1`` and Arabic-Indic digits: sweep H D10)
_DECIMAL_OR_HEX = re.compile(r"\s*[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)\s*")


def _int(text: str) -> int:
    if not _DECIMAL_OR_HEX.fullmatch(text):
        raise BadInput(f"{text!r} is not an integer (decimal or 0x hex)")
    return int(text, 16 if "x" in text.lower() else 10)  # int takes the sign, space and 0x


#: ``--jobs`` at most (== _explore.MAX_JOBS: tests/cli checks they agree; _explore is
#: imported late). explore took any int, campaign 1..1,024
MAX_JOBS = 1024


def _cluster_address(_ctx: Any, _param: Any, value: str | None) -> str | None:
    """``--cluster``: an empty address ran locally without a word (sweep H D10)."""
    if value is not None and not value.strip():
        raise click.BadParameter("give local:N, tcp://HOST:PORT or tls://HOST:PORT, not ''")
    return value


#: a seed is a 63-bit int, so that every failure file and report stores it exactly
SEED = click.IntRange(0, 2**63 - 1)


class _Bound(click.ParamType):
    """``--preemption-bound``: an int 0..1000, or ``none`` (None: unbounded dfs/dpor)."""

    name = "0..1000|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | None:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        try:
            n = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither 0..1000 nor none", param, ctx)
        if not 0 <= n <= 1000:
            self.fail(f"{n} is not in 0..1000 (or none: no bound)", param, ctx)
        return n


BOUND = _Bound()


def timeout_option(default: float | None, shown: str | None = None) -> Any:
    """``--timeout SECONDS``: the wall-clock watchdog of each run (``_watchdog``). A ``None``
    default means "not given" (``replay`` then picks one by what it replays: ``shown``)."""
    return click.option("--timeout", default=default, show_default=shown or True, type=float,
                        metavar="SECONDS", callback=_timeout_value,
                        help="stop a run that has not ended after SECONDS of wall time and "
                             "report it as a hang (a CPU loop in the driver); 0: off")


def _timeout_value(ctx: click.Context, param: click.Parameter, value: float | None
                   ) -> float | None:
    if value is None:
        return None
    if not 0 <= value <= MAX_TIMEOUT_S:  # nan fails every comparison
        raise click.BadParameter(f"takes seconds 0..{MAX_TIMEOUT_S:,} (0: off), not {value}")
    return value



def _check_outputs(save_dir: str, junit: str | None, json_out: str | None,
                   reads: tuple[str, ...] = ()) -> None:
    """Every path explore or campaign will write, checked before any schedule runs (none
    over a file the command ``reads``: the campaign file)."""
    check_directory(save_dir, "--save-dir")
    for path, what in ((junit, "--junit report"), (json_out, "--json report")):
        if path is not None:
            check_output(path, what, make_parents=True, reads=reads)
    if junit is not None and json_out is not None and (
            os.path.realpath(junit) == os.path.realpath(json_out)):
        raise BadInput(f"--junit and --json name the same file ({junit}): one report would "
                       "overwrite the other; give each its own path")


def _pairs(items: tuple[str, ...], option: str = "-p") -> dict[str, str]:
    out = {}
    for it in items:
        if not is_utf8(it):  # a byte of argv that is no UTF-8: a surrogate in the str
            raise BadInput(f"{option} takes text, and {it!r} has a byte that is not UTF-8: "
                           "give it as UTF-8 text")
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise BadInput(f"{option} takes key=value, not {it!r}")
        k = k.strip()
        if k in out and out[k] != v.strip():  # the same value twice is harmless
            raise BadInput(f"{option} gives {k} twice ({out[k]!r}, then {v.strip()!r}): "
                           "give it once")
        out[k] = v.strip()
    return out


def _params(items: tuple[str, ...]) -> dict[str, str]:
    return _pairs(items, "-p")


def _faults(_ctx: Any, _param: Any, items: tuple[str, ...]) -> tuple[str, ...]:
    """``--inject``: each fault in its canonical text (docs/kmd.md §7); a bad one is exit 2."""
    import kmd

    try:
        return tuple(str(kmd.parse_fault(t)) for t in items)
    except ValueError as e:
        raise BadInput(str(e)) from None


#: ``--inject`` (run, explore, replay): the fault-injection option
inject_option = click.option(
    "--inject", "inject", multiple=True, metavar="FAULT", callback=_faults,
    help="inject a fault: tdr@step=N, removal@call=N, removal@device[=N] (repeatable; "
         "docs/kmd.md §7)")


# shared options of run / explore ------------------------------------------------------------


def scenario_options(fn: Any) -> Any:
    opts = [
        click.argument("scenario"),
        click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                     help="scenario parameter (repeatable)"),
        click.option("--driver", default=DEFAULT_DRIVER, show_default=True,
                     help="a registered driver ('wddmemu drivers') or MODULE:ATTR"),
        click.option("--driver-opt", "driver_opts", multiple=True, metavar="KEY=VALUE",
                     help="keyword argument of the driver factory (repeatable)"),
        click.option("--ddi-version", default=None, help="the driver's DriverVersion, e.g. 0xB"),
        click.option("--bug", "bugs", multiple=True,
                     help="a seeded runtime or kernel bug (repeatable; 'wddmemu bugs')"),
        click.option("--backend", type=click.Choice(BACKENDS), default="asyncio",
                     show_default=True),
        click.option("--depth", default=3, show_default=True, type=click.IntRange(1, 1000),
                     help="PCT depth d"),
        click.option("--pct-steps", default=1000, show_default=True,
                     type=click.IntRange(1, 10**12),
                     help="PCT's k: the expected number of steps of a run"),
        # == _runner.DEFAULT_STEP_BUDGET (tests/cli checks they agree)
        click.option("--step-budget", default=200_000, show_default=True,
                     type=click.IntRange(1, 10**12),
                     help="livelock guard: scheduling points per run"),
        # == RunSpec.queue_size's default and SPEC_RANGES (tests/cli checks they agree)
        click.option("--queue-size", default=16, show_default=True,
                     type=click.IntRange(1, 65_536),
                     help="commands the MP layer's queue holds before the app blocks"),
        inject_option,
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _spec(scenario: str, params: tuple[str, ...], driver: str, driver_opts: tuple[str, ...],
          ddi_version: str | None, bugs: tuple[str, ...], backend: str, depth: int,
          pct_steps: int, step_budget: int, queue_size: int, strategy: str, seed: int,
          inject: tuple[str, ...] = ()) -> RunSpec:
    from ._runner import RunSpec

    return RunSpec(
        scenario=scenario, params=_params(params), driver=driver,
        ddi_version=None if ddi_version is None else _int(ddi_version), bugs=tuple(bugs),
        strategy=strategy, seed=seed, depth=depth, pct_steps=pct_steps, backend=backend,
        step_budget=step_budget, queue_size=queue_size,
        driver_options=_pairs(driver_opts, "--driver-opt"), faults=inject,
    )


def _console() -> Console:
    """The commands' console (``_console.command_console``: no wrapping off a terminal, quiet
    when the reader closes the pipe)."""
    from ._console import command_console

    return command_console()


# commands -----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wddmemu", prog_name="wddmemu")
@click.option("--load", "load", multiple=True, metavar="MODULE",
              help="import MODULE first (your scenarios and drivers; repeatable), found as "
              "python -m finds it (the current directory first), or a path to a .py file or "
              "a package's directory; failure files may then name it")
@click.option("--allow-load", "allow_load", multiple=True, metavar="MODULE",
              help="let a failure file import MODULE if it lists it (repeatable)")
@click.pass_context
def cli(ctx: click.Context, load: tuple[str, ...], allow_load: tuple[str, ...]) -> None:
    """Emulate the WDDM multithreaded lock path: run, explore and replay concurrency
    scenarios of the D3D9 runtime, a user-mode driver and the kernel.

    Your own scenarios and drivers: --load MODULE, or install them under the entry points
    wddmemu.scenarios / wddmemu.drivers (docs/scenarios.md)."""
    for m in allow_load:
        if not is_module_name(m):  # ' mod' or '' allowed nothing, silently
            raise BadInput(f"--allow-load takes a module name like mypkg.drivers, not {m!r}")
        _loading.allow_module(m)
    if ctx.invoked_subcommand == "trace":
        return  # trace files are data: the trace tools load nothing
    from ._drivers import load_module  # the driver layers: imported for commands only

    for m in load:  # each module's scenarios and drivers are noted (what a file records)
        load_module(m)
    _load_plugins()


def _load_plugins() -> None:
    """The installed entry points; a broken one is a warning line on stderr and is skipped
    (a command that needs what it would provide then fails naming it, exit 2)."""
    import warnings

    from ._drivers import load_entry_points  # the driver layers: imported for commands only

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", _loading.PluginWarning)
        load_entry_points()
    for w in seen:
        if issubclass(w.category, _loading.PluginWarning):
            _err(f"wddmemu: warning: {w.message}")
        else:  # somebody else's warning, caught on the way: as it would have been shown
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@cli.command("scenarios")
def scenarios_cmd() -> int:
    """List the scenarios with their parameters."""
    from rich.table import Table

    import scenarios

    table = Table(show_lines=False, box=None, pad_edge=False)
    table.add_column("scenario", style="bold")
    table.add_column("description")
    table.add_column("parameters")
    for name in sorted(scenarios.REGISTRY):
        sc = scenarios.REGISTRY[name]
        ps = ", ".join(f"{k}={p.default}" + (f" ({p.range[0]}..{p.range[1]})" if p.range else "")
                       for k, p in sc.params.items()) or "-"
        table.add_row(name, sc.description, ps)
    print_listing(table)
    return EXIT_OK


@cli.command("run")
@scenario_options
@click.option("--strategy", type=click.Choice(["fifo", "random", "pct", "pos"]), default="fifo",
              show_default=True)
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--trace", "trace", default=None, metavar="FILE.jsonl",
              help="write the trace log (JSON lines) here")
@timeout_option(0.0)
def run_cmd(scenario: str, params: tuple[str, ...], driver: str, driver_opts: tuple[str, ...],
            ddi_version: str | None, bugs: tuple[str, ...], backend: str, depth: int,
            pct_steps: int, step_budget: int, queue_size: int, inject: tuple[str, ...],
            strategy: str, seed: int, trace: str | None, timeout: float) -> int:
    """Run SCENARIO under one schedule and print a summary."""
    from ._runner import check_spec, run_scenario

    spec = _spec(scenario, params, driver, driver_opts, ddi_version, bugs, backend, depth,
                 pct_steps, step_budget, queue_size, strategy, seed, inject)
    check_spec(spec)
    with ctrl_c():  # a driver in a CPU loop never reaches the loop's own Ctrl-C handling
        if trace is None:
            res = run_scenario(spec, timeout=timeout)
        else:
            check_output(trace, "trace file")  # written atomically by run_scenario
            res = run_scenario(spec, trace=trace, timeout=timeout)
    print_summary(_console(), res, trace, timeout)
    return EXIT_OK if res.ok else EXIT_FAIL


def _shown(text: str) -> str:
    """``text`` on one line, control characters escaped (``\n``, ``\x1b``), cut at 4,096."""
    from ._files import printable

    return printable(text, limit=4096)


def _print_data(console: Console, texts: Iterable[str], *, soft_wrap: bool | None = None
                ) -> None:
    """``texts`` (messages that are data, the code under test's among them) as plain text, line
    by line: their lines stay lines, control characters in them are shown, not obeyed (h8)."""
    for text in texts:
        for line in text.split("\n"):
            console.print(_shown(line), markup=False, highlight=False, soft_wrap=soft_wrap)


def print_summary(console: Console, res: ScenarioResult, trace: str | None,
                  timeout: float = 0.0) -> None:
    """``run``'s summary: the run, each device's counts, the failure (with the user code's
    traceback when it raised) and the command that reruns it (``--timeout`` included)."""
    from rich.markup import escape
    from rich.table import Table

    run = res.run
    spec = res.spec
    status = "[green]clean[/green]" if run.ok else "[red]FAILED[/red]"
    console.print(
        f"{spec.scenario}: {status} — {run.steps} steps, t={run.time_ns / 1e6:.3f} ms virtual, "
        f"{len(run.decisions)} decisions ({spec.strategy}, seed {spec.seed}, {spec.backend})"
    )
    for d in res.devices:
        t = Table(title=f"device (DDI version {d.driver_version:#x}, "
                        f"MP layer {'on' if d.mp_layer else 'off'})", box=None)
        t.add_column("what")
        t.add_column("count", justify="right")
        for ddi in sorted(d.ddi_calls):
            per = d.ddi_calls[ddi]
            t.add_row(f"DDI {ddi}", f"{sum(per.values())}  "
                      + " ".join(f"{th}:{n}" for th, n in sorted(per.items())))
        for code, n in sorted(d.lock_async_results.items()):
            t.add_row(f"LockAsync → {code}", str(n))
        t.add_row("renames", str(d.renames))
        for reason, n in sorted(d.syncs.items()):
            t.add_row(f"sync: {reason}", str(n))
        t.add_row("frames", str(d.frames))
        t.add_row("draws", str(d.draws))
        t.add_row("command buffers submitted", str(d.command_buffers_submitted))
        t.add_row("queue high-water mark", str(d.queue_high_water))
        ungated = ", ".join(f"{k} {n}" for k, n in sorted(d.ungated_calls.items())) or "none"
        t.add_row("entered without the entry lock", ungated)
        t.add_row("entries overlapping another thread", str(d.overlapping_entries))
        for call, n in sorted(d.batched_failures.items()):
            t.add_row(f"batched call failed: {call}", str(n))
        console.print(t)
    left = res.kernel.freed_at_device_destroy if res.kernel is not None else 0
    if left:  # not a finding (no contract rule): the kernel frees them, as dxgkrnl does
        console.print(f"kernel: DestroyDevice freed {left} allocation(s) and resource(s) the "
                      "driver never freed with pfnDeallocateCb")
    # messages are data (the code under test's exception text among them): brackets in them
    # are not markup, and a line break or an escape sequence is shown, not obeyed (h8)
    if run.failure is not None:
        console.print(f"[red]failure[/red]: {escape(_shown(str(run.failure)))}")
        _print_traceback(console, run.failure)
    for v in run.violations:
        console.print(f"[red]{escape(_shown(v.rule))}[/red] step {v.step} on "
                      f"{escape(_shown(v.thread))}: {escape(_shown(v.message))}")
    if not run.ok:
        # one line, as typed: wrapped at the console's width it would not paste as a command
        console.print(f"replay: {spec.command('run', trace, timeout)}", markup=False,
                      highlight=False, soft_wrap=True)
    if trace:
        console.print(f"trace: {trace}")


def _print_traceback(console: Console, failure: Any) -> None:
    """An ``exception`` failure's traceback from the user's first frame on (``_tracebacks``),
    as plain text: nothing else for any other failure."""
    from ._tracebacks import failure_traceback

    _print_data(console, failure_traceback(failure), soft_wrap=True)


def cluster_options(fn: Any) -> Any:
    """``--cluster``, ``--junit`` and ``--json`` (explore and campaign; docs/cluster.md)."""
    for opt in reversed((
        click.option("--cluster", default=None, metavar="ADDRESS", callback=_cluster_address,
                     help="run on a Dask scheduler (tcp://host:port) or on local:N worker "
                          "processes (needs the cluster extra)"),
        click.option("--junit", default=None, metavar="OUT.xml",
                     help="write a JUnit XML report (one testcase per cell)"),
        click.option("--json", "json_out", default=None, metavar="OUT.json",
                     help="write a JSON report"),
    )):
        fn = opt(fn)
    return fn


@cli.command("explore")
@scenario_options
@click.option("--schedules", default=1000, show_default=True, type=click.IntRange(1, 10**7),
              help="schedules to run at most")
# == _explore.DEFAULT_STRATEGY (tests/cli checks they agree; _explore is imported late)
@click.option("--strategy", default="pos", show_default=True,
              type=click.Choice(["random", "pct", "pos", "portfolio", "dfs", "dpor"]))
@click.option("--seed", default=0, show_default=True, type=SEED,
              help="seed of the first schedule")
@click.option("--preemption-bound", default="2", show_default=True, type=BOUND,
              help="dfs and dpor: preemptions at most, 0..1000, or none (no bound: an "
                   "exhausted search then covers every schedule)")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, MAX_JOBS),
              help="worker processes")
@click.option("--save-dir", default=DEFAULT_SAVE_DIR, show_default=True,
              help="where failure files go")
@click.option("--stop-on-first/--keep-going", default=True, show_default=True)
@click.option("--minimise/--no-minimise", default=True, show_default=True)
@click.option("--faults/--no-faults", default=False, show_default=True,
              help="inject one fault per schedule, chosen from its seed (docs/explore.md)")
@timeout_option(60.0)
@cluster_options
def explore_cmd(scenario: str, params: tuple[str, ...], driver: str,
                driver_opts: tuple[str, ...], ddi_version: str | None, bugs: tuple[str, ...],
                backend: str, depth: int, pct_steps: int, step_budget: int,
                queue_size: int, inject: tuple[str, ...], schedules: int,
                strategy: str, seed: int, preemption_bound: int | None, jobs: int, save_dir: str,
                stop_on_first: bool, minimise: bool, faults: bool, timeout: float,
                cluster: str | None, junit: str | None, json_out: str | None) -> int:
    """Run many schedules of SCENARIO; save, minimise and explain each failure. Ctrl-C stops
    it: what was found is kept, the summary printed, exit 130."""
    from ._explore import ExploreOptions
    from ._runner import check_spec

    reports = None
    if cluster or junit or json_out:  # docs/cluster.md: Dask, JUnit and JSON reports
        from ._campaign import reporting_explore

        reports = reporting_explore(cluster, jobs, save_dir, driver, _loading.loaded_modules())
        run_explore = reports
    else:  # dfs and dpor split into subtrees over --jobs processes, the others into chunks
        from ._cluster import explore_local

        run_explore = explore_local

    base = _spec(scenario, params, driver, driver_opts, ddi_version, bugs, backend, depth,
                 pct_steps, step_budget, queue_size, "fifo", 0, inject)
    # more worker processes than CPUs only adds contention (issue 14); results are the same
    # for any --jobs, so the clamp changes no answer
    cpus = os.cpu_count() or 1
    opts = ExploreOptions(schedules=schedules, strategy=strategy, seed=seed, depth=depth,
                          preemption_bound=preemption_bound, jobs=min(jobs, cpus),
                          stop_on_first=stop_on_first, minimise=minimise, faults=faults,
                          timeout=timeout)
    check_spec(base, many=True)
    _check_outputs(save_dir, junit, json_out)
    console = _console()
    if jobs > cpus:
        console.print(f"--jobs {jobs} is more than the {cpus} CPUs here: using {cpus}")
    show = _ExploreDisplay(console, f"{scenario} ({strategy})", schedules, save_dir)
    try:
        with show, ctrl_c():  # opts.timeout bounds each schedule
            res = run_explore(base, opts, progress=show.progress, on_found=show.save_early)
    except BaseException as e:  # Ctrl-C: what was found is on disk already (issue 14)
        if not is_interrupt(e):
            raise
        show.interrupted()
        if reports is not None:  # a report at that path must not say an older run's "ok"
            reports.write(junit, json_out, unfinished=[(base, strategy)])
        return EXIT_INTERRUPTED
    show.summary(res, strategy, preemption_bound)
    paths = show.save_final(res.failures)
    with ctrl_c():  # the explanations replay (a hang for up to 3.5 s): Ctrl-C ends them too
        _explain_all(console, res.failures, paths)
    if reports is not None:
        reports.write(junit, json_out)
    return EXIT_FAIL if res.failures else EXIT_OK


def _explain_all(console: Console, failures: Any, paths: dict[int, Path]) -> None:
    """Each failure explained once; with ``--keep-going``, first one line per distinct
    finding and then the first schedule of each."""
    if len(failures) > 1:
        from ._explore import group_failures

        groups = group_failures(failures)
        console.print(f"{len(failures)} failing schedules, {len(groups)} distinct:")
        for g in groups:
            console.print(f"  {g.describe()}", markup=False, highlight=False)
            later, n = g.later_rules()
            if later:
                also = ", ".join(f"{r} in {k}" for r, k in later.items())
                console.print(f"    and later in the same schedules ({n} replayed to the "
                              f"end): {also}", markup=False, highlight=False)
        failures = [g.first for g in groups]
    for fd in failures:
        explain(console, fd, paths[fd.index])


#: printed under an exhausted dpor claim: what "every interleaving" covers
DPOR_SCOPE = ("(dpor orders steps by what they touch in vthreads objects — SharedCell, Mutex, "
              "queues, events; state a driver keeps in plain attributes is not seen, so keep "
              "shared driver state in SharedCells, or sample with pos: docs/engine.md)")


class _ExploreDisplay:
    """Explore's progress and its failure files. On a terminal, a rich progress bar; otherwise
    (a CI log, a pipe) a plain line every :data:`PROGRESS_EVERY` seconds. The wall clock is
    read for this display only, never for a decision. Each failure is saved the moment it is
    found and replaced by its minimised form at the end."""

    def __init__(self, console: Console, what: str, total: int, save_dir: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console, self.what, self.total, self.save_dir = console, what, total, save_dir
        self.clock = time.perf_counter  # wall clock for the display only, never in results
        self.t0 = self.last = self.clock()
        self.runs = self.failures = 0
        #: schedule index → the file saved as the failure was found, and the run it replays
        self.early: dict[int, tuple[Path, RunSpec]] = {}
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[failures]} failures"),
                            TextColumn("{task.fields[rate]} schedules/s"), console=console,
                            transient=not console.is_terminal, disable=not console.is_terminal)
        self.task = self.bar.add_task(what, total=total, failures=0, rate="-")

    def __enter__(self) -> _ExploreDisplay:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def progress(self, runs: int, failures: int) -> None:
        self.runs, self.failures = runs, failures
        now = self.clock()
        dt = now - self.t0
        rate = f"{runs / dt:.0f}" if dt > 0 else "-"
        if self.console.is_terminal:
            self.bar.update(self.task, completed=runs, failures=failures, rate=rate)
        elif now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.console.print(f"{self.what}: {runs}/{self.total} schedules, {failures} "
                               f"failing, {rate} schedules/s", markup=False, highlight=False)

    def save_early(self, fd: Found) -> None:
        from ._explore import failure_file, write_failure_file

        # noted before it is written: a Ctrl-C during the write still lists a file that made
        # it to disk (interrupted() shows those that exist)
        path, body = failure_file(fd, self.save_dir)
        self.early[fd.index] = path, fd.spec
        write_failure_file(path, body)

    def save_final(self, failures: Any) -> dict[int, Path]:
        from ._explore import save_failure

        paths = {}
        for fd in failures:
            paths[fd.index] = save_failure(fd, self.save_dir)
            early, _spec = self.early.get(fd.index, (None, None))
            if early is not None and early != paths[fd.index]:
                early.unlink(missing_ok=True)  # superseded by the minimised file
        return paths

    def summary(self, res: Any, strategy: str, bound: int | None) -> None:
        from ._explore import uses_pct

        dt = self.clock() - self.t0
        self.console.print(
            f"{res.runs} schedules in {dt:.1f} s ({res.runs / max(dt, 1e-9):.0f}/s), "
            f"{len(res.failures)} failing"
            + (f", pct k={res.pct_steps}" if uses_pct(strategy) else "")
            + ("" if res.exhausted is None or res.claim else
               f", space {'exhausted' if res.exhausted else 'not exhausted'} within "
               + ("no preemption bound" if bound is None else f"{bound} preemptions")))
        if res.claim:
            self.console.print(res.claim, markup=False, highlight=False)
        if strategy == "dpor" and (res.exhausted or res.bounded):
            # the claim is exact only about state the engine sees: a driver's plain attributes
            # shared by the app thread and the worker are outside the dependency relation
            self.console.print(DPOR_SCOPE, markup=False, highlight=False)

    def interrupted(self) -> None:
        from ._explore import replay_command

        dt = self.clock() - self.t0
        # a file the Ctrl-C caught before its write was done is not on disk: not listed
        kept = [(p, spec) for p, spec in self.early.values() if p.exists()]
        self.console.print(f"interrupted: {self.runs} schedules in {dt:.1f} s, "
                           f"{len(kept)} failing (kept, not minimised)",
                           markup=False, highlight=False)
        for path, spec in kept:
            self.console.print(f"saved: {path}", markup=False, highlight=False)
            self.console.print(f"replay: {replay_command(spec, path)}",
                               markup=False, highlight=False, soft_wrap=True)


def explain(console: Console, fd: Found, path: Path) -> None:
    """The failure in words (``wddmemu/_reports.py:explain_lines``), then where it is saved."""
    from ._explore import replay_command
    from ._reports import explain_lines

    _print_data(console, explain_lines(fd))
    console.print(f"saved: {path}", markup=False, highlight=False)
    console.print(f"replay: {replay_command(fd.spec, path)}", markup=False,
                  highlight=False, soft_wrap=True)


@cli.command("replay")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--trace", "trace", default=None, metavar="OUT.jsonl", help="write the trace")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="override the recorded backend")
@inject_option
@timeout_option(None, "off; a saved hang: 0.5, then 3")
def replay_cmd(file: str, trace: str | None, backend: str | None,
               inject: tuple[str, ...], timeout: float | None) -> int:
    """Re-run exactly the schedule recorded in FILE (with the faults it recorded, and any
    --inject added). Exit 1 if the failure reproduces, 0 if the run is now clean. Without
    --timeout a saved hang replays under a 0.5 s watchdog, and under 3 s if that stopped it
    before its step; --timeout 0 turns it off.

    The file imports nothing by itself: modules it lists must be allowed with --load or
    --allow-load (docs/explore.md)."""
    from ._explore import FailureFileError, load_failure, replay
    from ._runner import run_timeout

    if not file:  # load_failure's own words name the API function (sweep H D7)
        raise BadInput("replay takes the path of a failure file, not ''")
    try:
        ff = load_failure(file)
    except FailureFileError as e:
        raise BadInput(str(e)) from None
    in_force = timeout
    if timeout is None:  # not given: off, but a saved hang unwatched would spin for ever
        in_force = 0.0
        if ff.rule == "hang":  # replay's own limits (wddmemu._explore._replay_limits)
            from ._watchdog import HANG_QUICK_S, HANG_REPLAY_S

            in_force = HANG_REPLAY_S
            _console().print(f"replaying a hang under --timeout {HANG_QUICK_S:g}, then "
                             f"{HANG_REPLAY_S:g} if it stops short of its step (give "
                             "--timeout to change it; 0: off)", markup=False, highlight=False)
    with run_timeout(in_force), ctrl_c():  # Ctrl-C ends even a driver in a CPU loop
        if trace is not None:  # written atomically by run_scenario; never over FILE
            check_output(trace, "trace file", reads=(file,))
        try:  # a decision list the run shows to be damaged is bad input too
            out = replay(ff, trace=trace, backend=backend, inject=inject, timeout=timeout)
        except FailureFileError as e:
            raise BadInput(str(e)) from None
    console = _console()
    code = _verdict(console, out, f"{ff.rule} at step {ff.step}")
    if out.kind != "clean":  # what raised, with the file and line of the user's code
        _print_traceback(console, out.run.failure)
    return code


def _verdict(console: Console, out: Any, want: str) -> int:
    """``replay``'s one-line verdict on ``out`` (a ``ReplayOutcome``) and its exit code. The
    rule, step and message are data (the file's, the code under test's): brackets in them are
    not markup, and a line break or an escape sequence is shown, not obeyed (h8 F7, h9)."""
    from rich.markup import escape

    want = escape(_shown(want))
    if out.kind == "reproduced":
        console.print(f"[red]reproduced[/red]: {want}: "
                      f"{escape(_shown(out.got.message)) if out.got else ''}")
        return EXIT_FAIL
    if out.kind == "clean":
        if out.diverged_at is not None:
            console.print(f"[green]no longer fails[/green]: the program changed at step "
                          f"{out.diverged_at} (the fix?); replayed as far as the recording "
                          f"applies, then fifo: {want} is gone")
        else:
            console.print(f"[green]clean[/green]: the recorded schedule no longer breaks {want} "
                          "(fixed?)")
        return EXIT_OK
    if out.kind == "diverged":
        got = out.got
        console.print(f"[yellow]diverged[/yellow] at step {out.diverged_at}: the program no "
                      f"longer matches the recording, and replayed as far as it applies, then "
                      f"fifo, it breaks {escape(_shown(got.rule)) if got else '?'} at step "
                      f"{got.step if got else '?'}")
        return EXIT_FAIL
    got = out.got
    console.print(f"[red]different failure[/red]: expected {want}, got "
                  f"{escape(_shown(got.rule)) if got else '?'} at step {got.step if got else '?'}")
    return EXIT_FAIL


@cli.command("campaign")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, MAX_JOBS),
              help="worker processes on this machine")
@click.option("--save-dir", default=DEFAULT_SAVE_DIR, show_default=True,
              help="where failure files go")
@timeout_option(None, "the file's timeout, or 60")
@cluster_options
def campaign_cmd(file: str, jobs: int, save_dir: str, timeout: float | None,
                 cluster: str | None, junit: str | None, json_out: str | None) -> int:
    """Explore the matrix in FILE (TOML: scenarios × drivers × ddi_versions × strategies);
    save every failure, print a summary. Exit 1 if any cell failed (docs/cluster.md)."""
    from ._campaign import campaign_command

    _check_outputs(save_dir, junit, json_out, reads=(file,))
    return campaign_command(file, jobs, save_dir, cluster, junit, json_out, timeout)


from ._cli_list import bugs_cmd, drivers_cmd, print_listing, rules_cmd  # noqa: E402 (listing)
from ._trace_cli import trace as _trace_group  # noqa: E402 (the group lives with the tools)

for _cmd in (drivers_cmd, bugs_cmd, rules_cmd, _trace_group):
    cli.add_command(_cmd)


# entry point --------------------------------------------------------------------------------


def _err(line: str) -> None:
    """One line on stderr (plain text: the message may contain brackets rich would eat). A
    newline, a control character or an undecodable byte (a surrogate from argv) in a message
    — they come from user input: a key in a TOML file, a file name — is written escaped, so
    the error stays one line and writing it never fails."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _stdout_gone(e: Exception) -> bool:
    """Whether ``e`` is our output meeting a standard output the code under test closed
    (``sys.stdout.close()``, ``os.close(1)``): user code did it, so it is not exit 3, and
    there is nowhere to print the result (sweep E D9)."""
    out = sys.stdout
    if out is None or getattr(out, "closed", False):
        return True
    if isinstance(e, OSError) and e.errno == errno.EBADF:
        try:
            os.fstat(1)
        except OSError:
            return True
    return False


#: the write errors of a standard output that cannot take more: the disk or quota is full,
#: the file is at its size limit, the device failed (``wddmemu rules >/dev/full``)
_OUTPUT_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EFBIG", "EIO")
                           if hasattr(errno, n))


def _output_failed(e: Exception) -> str | None:
    """The one line for ``e``, a write of ours meeting a full disk or a failed device: the
    machine's condition, not an emulator bug, so it is exit 2, not 3 (sweep H D4). What stdout
    still holds goes to /dev/null (``stdout_to_null``), so Python's flush at exit does not fail
    again and print a traceback; None for any other exception."""
    if not isinstance(e, OSError) or e.errno not in _OUTPUT_ERRNOS:
        return None
    stdout_to_null()
    return (f"wddmemu: error: the output could not be written ({os.strerror(e.errno)}): free "
            "some space, or send it elsewhere")


def _reader_closed(e: SystemExit) -> bool:
    """Whether ``e`` is click's answer to a reader that closed stdout while click itself wrote
    (``--help``, ``--version``): it wraps stdout in its ``PacifyFlushWrapper`` and exits 1.
    Every command's own output meets a closed pipe itself (``OutputConsole``,
    ``stdout_may_close``) and ends with its own code, so only click's output comes here, and
    its own code is 0: ``wddmemu --help | head -0`` is exit 0, as the README promises."""
    # by the wrapper's name: click 8.2 renamed it _PacifyFlushWrapper and deprecated the old
    # public alias (reading it warns)
    return e.code == 1 and type(sys.stdout).__name__.endswith("PacifyFlushWrapper")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns (and exits with) the documented exit code."""
    try:
        rv = cli.main(args=argv, prog_name="wddmemu", standalone_mode=False)
    except click.exceptions.Exit as e:
        rv = e.exit_code
    except SystemExit as e:
        if not _reader_closed(e):
            raise
        rv = EXIT_OK
    except (click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C (click turns it into Abort)
        _err("wddmemu: interrupted")
        rv = EXIT_INTERRUPTED
    except click.exceptions.NoArgsIsHelpError as e:  # `wddmemu`, `wddmemu trace` alone
        # the help as --help shows it, on stdout, then the one line: escaped into that line,
        # the whole help became one unreadable line of "\n"s
        with stdout_may_close():
            click.echo(e.ctx.get_help() if e.ctx is not None else "")
        _err(f"wddmemu: error: {e.ctx.command_path if e.ctx else 'wddmemu'} needs a command "
             "(listed above)")
        rv = EXIT_BAD_INPUT
    except click.ClickException as e:
        _err(f"wddmemu: error: {e.format_message()}")
        rv = EXIT_BAD_INPUT
    except SpecError as e:
        _err(f"wddmemu: error: {e}")
        rv = EXIT_BAD_INPUT
    except BaseException as e:
        if is_interrupt(e):  # Ctrl-C inside a task group, or inside trio's scheduler
            _err("wddmemu: interrupted")
            rv = EXIT_INTERRUPTED
        elif isinstance(e, Exception) and _stdout_gone(e):
            _err("wddmemu: error: standard output was closed (by the driver or a --load "
                 "module?), so the result could not be printed: keep sys.stdout and fd 1 open")
            rv = EXIT_BAD_INPUT
        elif isinstance(e, Exception) and (line := _output_failed(e)) is not None:
            _err(line)
            rv = EXIT_BAD_INPUT
        elif isinstance(e, Exception):  # an emulator bug: say so in one line, exit 3
            from vthreads.lowlevel import describe_exception  # (startup: see _errors)

            _err(f"wddmemu: internal error: {describe_exception(e)[1]}")
            rv = EXIT_INTERNAL
        else:
            raise
    if argv is None:
        if rv == EXIT_INTERRUPTED:
            quiet_after_interrupt()
        sys.exit(rv or 0)
    return int(rv or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
