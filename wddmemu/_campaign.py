"""Campaigns: a matrix of explorations from one TOML file, run locally or on a Dask cluster.

A campaign file names the matrix ``scenarios × drivers × ddi_versions × strategies`` and how many
schedules each cell explores; ``wddmemu campaign FILE.toml`` runs every cell (with ``--jobs`` on
this machine, or all cells at once on ``--cluster``), saves every failure, prints a summary table
and writes ``--junit``/``--json`` reports (docs/cluster.md has the file format). A bad file is one
line and exit 2, never a traceback; exit 1 if any cell failed, 0 if all are clean.

:func:`install` wires this module into the ``wddmemu`` CLI: the ``campaign`` command, and the
``--cluster``, ``--junit`` and ``--json`` options of ``explore``.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from . import _loading
from ._cli_list import listing_console
from ._cluster import (
    ClusterError,
    connect,
    drive,
    explore_local,
    explore_on_cluster,
    plan,
)
from ._console import OutputConsole
from ._errors import check_seconds
from ._explore import (
    DEFAULT_SAVE_DIR,
    DEFAULT_STRATEGY,
    EXPLORE_STRATEGIES,
    ExploreOptions,
    ExploreResult,
    Found,
    replay_command,
    save_failure,
)
from ._files import printable, read_bounded
from ._interrupt import ctrl_c, is_interrupt
from ._reports import CellReport, cell_name, write_reports
from ._runner import DEFAULT_DRIVER, SPEC_RANGES, RunSpec, SpecError, check_spec, run_timeout
from ._watchdog import EXPLORE_TIMEOUT

#: every strategy ``explore`` takes: a campaign cell is one exploration
STRATEGIES = EXPLORE_STRATEGIES
_MAX_U32 = 0xFFFF_FFFF


class CampaignError(SpecError):
    """A campaign file that cannot be run (the CLI prints the one line and exits 2)."""


# ---- the campaign file --------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    kind: str  # "strs" | "ints" | "int" | "bound" | "bool" | "seconds" | "drivers" | "tables"
    default: Any
    lo: int = 0
    hi: int = _MAX_U32


#: every key of ``[campaign]``: its type, default (None: required) and range
KEYS: dict[str, _Key] = {
    "scenarios": _Key("strs", None),
    "drivers": _Key("drivers", (DEFAULT_DRIVER,)),  # names or {name, options} (_drivers)
    "ddi_versions": _Key("ints", (None,), 0, _MAX_U32),
    "strategies": _Key("strs", (DEFAULT_STRATEGY,)),
    "schedules": _Key("int", 100, 1, 10_000_000),
    "seed": _Key("int", 0, 0, 2**63 - 1),
    # the CLI's ranges (--depth, --preemption-bound): a cell is the explore command it names
    "depth": _Key("int", 3, *SPEC_RANGES["depth"]),
    "preemption_bound": _Key("bound", 2, 0, 1000),  # or "none", as --preemption-bound none
    "max_replays": _Key("int", 200, 0, 1_000_000),
    "chunk": _Key("int", 25, 1, 100_000),
    "stop_on_first": _Key("bool", True),
    "minimise": _Key("bool", True),
    # each schedule's wall-clock limit, explore's --timeout (the CLI's --timeout overrides it)
    "timeout": _Key("seconds", EXPLORE_TIMEOUT),
    # parsed on their own (_drivers, _scenario_params): tables, not plain values
    "params": _Key("tables", {}),
}


@dataclass(frozen=True)
class Campaign:
    """A parsed, validated campaign file."""

    scenarios: tuple[str, ...]
    drivers: tuple[str, ...] = (DEFAULT_DRIVER,)
    ddi_versions: tuple[int | None, ...] = (None,)
    strategies: tuple[str, ...] = (DEFAULT_STRATEGY,)
    schedules: int = 100
    seed: int = 0
    depth: int = 3
    preemption_bound: int | None = 2
    max_replays: int = 200
    chunk: int = 25
    stop_on_first: bool = True
    minimise: bool = True
    #: each schedule's wall-clock limit in seconds (0: off), as explore's ``--timeout``
    timeout: float = EXPLORE_TIMEOUT
    #: ``drivers``' option sets, one per entry (``{}`` for a bare name), as ``--driver-opt``
    driver_options: tuple[dict[str, str], ...] = ()
    #: scenario → its ``-p`` parameters (``[campaign.params.SCENARIO]``)
    params: dict[str, dict[str, str]] = field(default_factory=dict)

    def options(self, strategy: str, jobs: int = 1) -> ExploreOptions:
        return ExploreOptions(schedules=self.schedules, strategy=strategy, seed=self.seed,
                              depth=self.depth, preemption_bound=self.preemption_bound,
                              jobs=jobs, stop_on_first=self.stop_on_first,
                              minimise=self.minimise, max_replays=self.max_replays,
                              chunk=self.chunk, timeout=self.timeout)

    def cells(self) -> list[tuple[RunSpec, str]]:
        """Every (base spec, strategy) of the matrix, in file order (scenario slowest)."""
        opts = self.driver_options or tuple({} for _ in self.drivers)
        return [(RunSpec(sc, driver=drv, ddi_version=ddi, depth=self.depth,
                         params=dict(self.params.get(sc, {})), driver_options=dict(dopts)),
                 strat)
                for sc in self.scenarios for drv, dopts in zip(self.drivers, opts, strict=True)
                for ddi in self.ddi_versions for strat in self.strategies]


def _value(where: str, name: str, key: _Key, v: Any) -> Any:
    def bad(what: str) -> CampaignError:
        return CampaignError(f"{where}: {name} must be {what}, not {v!r}")

    if key.kind == "bool":
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if key.kind == "bound" and v == "none":
        return None
    if key.kind == "seconds":
        try:
            check_seconds(name, v)
        except SpecError as e:
            raise CampaignError(f"{where}: {e}") from None
        return v
    items = v if key.kind in ("strs", "ints") else [v]
    if key.kind in ("strs", "ints") and (not isinstance(v, list) or not v):
        raise bad("a non-empty list")
    for x in items:
        if key.kind == "strs" and not isinstance(x, str):
            raise bad("a list of strings")
        if key.kind != "strs":
            if isinstance(x, bool) or not isinstance(x, int):
                raise bad("a list of integers" if key.kind == "ints" else
                          'an integer or "none"' if key.kind == "bound" else "an integer")
            if not key.lo <= x <= key.hi:
                raise CampaignError(f"{where}: {name} {x} is out of range "
                                    f"({key.lo} to {key.hi})")
    return tuple(v) if key.kind in ("strs", "ints") else v


def _cli_text(where: str, what: str, table: Any) -> dict[str, str]:
    """A TOML table of ``key = value`` as the ``key=value`` text the CLI would pass (``-p``,
    ``--driver-opt``): the same conversion and checks then apply as on a command line."""
    if not isinstance(table, dict):
        raise CampaignError(f"{where}: {what} must be a table of key = value")
    out = {}
    for k, v in table.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, int | str):
            out[k] = str(v)
        else:
            raise CampaignError(f"{where}: {what}.{k} must be a string, an integer or a "
                                f"boolean, not {v!r}")
    return out


def _drivers(where: str, v: Any) -> tuple[tuple[str, ...], tuple[dict[str, str], ...]]:
    """``drivers``: names, or ``{name = "...", options = {...}}`` for a driver with options
    (so one driver may appear with several option sets)."""
    if not isinstance(v, list) or not v:
        raise CampaignError(f"{where}: drivers must be a non-empty list, not {v!r}")
    names, opts = [], []
    for x in v:
        if isinstance(x, dict):
            extra = sorted(set(x) - {"name", "options"})
            if extra or not isinstance(x.get("name"), str):
                raise CampaignError(f"{where}: a driver entry is a name or "
                                    '{name = "NAME", options = {key = value}}, not ' + repr(x))
            names.append(x["name"])
            opts.append(_cli_text(where, f"options of {x['name']}", x.get("options", {})))
        elif isinstance(x, str):
            names.append(x)
            opts.append({})
        else:
            raise CampaignError(f"{where}: drivers must be a list of names or tables, not {v!r}")
    return tuple(names), tuple(opts)


def _scenario_params(where: str, v: Any, names: Sequence[str]) -> dict[str, dict[str, str]]:
    if not isinstance(v, dict):
        raise CampaignError(f"{where}: params must be [campaign.params.SCENARIO] tables")
    for sc in v:
        if sc not in names:
            raise CampaignError(f"{where}: params for {sc!r}, which is not in scenarios")
    return {sc: _cli_text(where, f"params.{sc}", t) for sc, t in v.items()}


def _refuse_unloaded(where: str, drivers: Sequence[str]) -> None:
    """A campaign file is a file we read, and a file never makes us import or run code: a
    ``MODULE:ATTR`` driver it names is resolved only when the user loaded or allowed MODULE
    (``--load``, ``--allow-load``), as a failure file's modules are (``_loading``). Before,
    ``drivers = [{name = "os:system", options = {command = "…"}}]`` ran the command."""
    for name in drivers:
        module = name.partition(":")[0] if ":" in name else None
        if module is not None and not _loading.is_allowed(module):
            raise CampaignError(f"{where}: driver {name!r} is in module {module!r}, which was "
                                f"not loaded: rerun with --load {module} (or --allow-load "
                                f"{module}) if you trust it; a campaign file never imports "
                                "code on its own")


def parse_campaign(doc: dict[str, Any], where: str = "campaign file") -> Campaign:
    """Validate a parsed TOML document; :class:`CampaignError` says what is wrong in one line
    (unknown keys, wrong types, out-of-range numbers, unknown scenario/driver/strategy)."""
    extra = sorted(set(doc) - {"campaign"})
    if extra or not isinstance(doc.get("campaign"), dict):
        raise CampaignError(f"{where}: expected one [campaign] table"
                            + (f", not [{extra[0]}]" if extra else ""))
    table = doc["campaign"]
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise CampaignError(f"{where}: unknown key {unknown[0]!r} in [campaign]: use "
                            + ", ".join(KEYS))
    if "scenarios" not in table:
        raise CampaignError(f"{where}: [campaign] needs scenarios = [...]")
    given = dict(table)
    drivers = _drivers(where, given.pop("drivers")) if "drivers" in given else None
    params = given.pop("params", {})
    camp = Campaign(**{n: _value(where, n, KEYS[n], v) for n, v in given.items()})
    camp = replace(camp, params=_scenario_params(where, params, camp.scenarios))
    if drivers is not None:  # option sets kept only when some driver has options
        camp = replace(camp, drivers=drivers[0],
                       driver_options=drivers[1] if any(drivers[1]) else ())
    _refuse_unloaded(where, camp.drivers)
    bad = [s for s in camp.strategies if s not in STRATEGIES]
    if bad:
        raise CampaignError(f"{where}: unknown strategy {bad[0]!r}: use "
                            + ", ".join(STRATEGIES))
    names = [cell_name(*c) for c in camp.cells()]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:  # one name per cell: reports (JUnit above all) tell cells by name
        raise CampaignError(f"{where}: the matrix has cell {twice} twice: list each driver "
                            "(with its options), DDI version, strategy and scenario once")
    for spec, _ in camp.cells()[:: len(camp.strategies)]:
        try:
            check_spec(spec, many=True)
        except (SpecError, ValueError) as e:
            raise CampaignError(f"{where}: {e}") from None
    return camp


#: the largest campaign file read: a matrix of thousands of cells is a few hundred KiB, and
#: ``/dev/zero`` never ends (it grew to gigabytes before this bound)
MAX_CAMPAIGN_FILE = 4 << 20


def load_campaign(path: Path | str) -> Campaign:
    """Read and validate a campaign file (TOML): at most :data:`MAX_CAMPAIGN_FILE` bytes; a
    file too big, not TOML, or nested deeper than the parser's recursion (tomllib parses
    arrays and inline tables recursively: 1,000 ``[`` were an exit 3) is one line."""
    p = Path(path)
    try:
        raw = read_bounded(p, MAX_CAMPAIGN_FILE, "campaign file")
    except OSError as e:
        raise CampaignError(f"cannot read {printable(str(p))}: {e.strerror or e}") from None
    except SpecError as e:
        raise CampaignError(str(e)) from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CampaignError(f"{printable(str(p))} is not valid TOML: {e}") from None
    except RecursionError:
        raise CampaignError(f"{printable(str(p))} is nested too deeply to be a campaign "
                            "file") from None
    except ValueError:  # an integer of more than 4,300 digits: int() refuses it
        raise CampaignError(f"{printable(str(p))} is not a campaign file: it holds a number "
                            "of more than 4,300 digits") from None
    return parse_campaign(doc, str(p))


# ---- running it -------------------------------------------------------------------------------


@dataclass
class CampaignRun:
    """Where a campaign runs and what it reports on the way."""

    save_dir: Path | str = DEFAULT_SAVE_DIR
    jobs: int = 1
    cluster: str | None = None
    ship: Sequence[str] = ()
    #: called with (schedules finished so far, failing cells so far)
    progress: Callable[[int, int], None] | None = None
    clock: Callable[[], float] = time.perf_counter  # report timings only, never decisions


def run_campaign(camp: Campaign, how: CampaignRun | None = None,
                 reports: list[CellReport] | None = None) -> list[CellReport]:
    """Explore every cell of ``camp``; each failure is saved under ``how.save_dir`` as soon as it
    is found (and again, minimised, when its cell ends). The reports are in matrix order
    whatever order the cells finished in. Locally each finished cell's report is appended to
    ``reports`` as it ends, so a caller interrupted mid-campaign still has them."""
    how = how or CampaignRun()
    if how.cluster:  # locally each cell's explore puts its own timeout in force
        with run_timeout(camp.timeout):  # the plans' probes, and every task (timed_task)
            return _run_on_cluster(camp, how)
    reports = [] if reports is None else reports
    done = 0
    for spec, strat in camp.cells():
        t0 = how.clock()

        def cell_progress(runs: int, _failures: int, before: int = done) -> None:
            if how.progress:
                how.progress(before + runs, sum(bool(r.result.failures) for r in reports))

        early: dict[int, Path] = {}  # saved as found, so that Ctrl-C loses nothing

        def found(fd: Found, early: dict[int, Path] = early) -> None:
            early[fd.index] = Path(save_failure(fd, how.save_dir))

        res = explore_local(spec, camp.options(strat, how.jobs), progress=cell_progress,
                            on_found=found)
        paths = tuple(save_failure(fd, how.save_dir) for fd in res.failures)
        for fd, path in zip(res.failures, paths):
            first = early.get(fd.index)
            if first is not None and first != Path(path):
                first.unlink(missing_ok=True)  # superseded by the minimised file
        reports.append(CellReport(spec, strat, camp.schedules, res, paths, how.clock() - t0))
        done += camp.schedules
    return reports


def _run_on_cluster(camp: Campaign, how: CampaignRun) -> list[CellReport]:
    # every cell is a Search on the one client, so two workers are busy even when each cell is
    # a single chunk
    assert how.cluster is not None
    cells = camp.cells()
    searches = [plan(spec, camp.options(strat), f"{spec.scenario}/{spec.driver}")
                for spec, strat in cells]
    t0 = how.clock()
    last = {id(s): t0 for s in searches}
    paths: dict[int, dict[int, Path]] = {id(s): {} for s in searches}

    def progress(s: Any) -> None:
        last[id(s)] = how.clock()
        if how.progress:
            how.progress(sum(x.runs for x in searches),
                         sum(bool(x.raw) for x in searches))

    early: dict[tuple[int, int], Path] = {}  # saved as decided, so that Ctrl-C loses nothing

    def on_found(s: Any, fd: Any) -> None:
        early[id(s), fd.index] = Path(save_failure(fd, how.save_dir))

    def on_failure(s: Any, fd: Any) -> None:
        last[id(s)] = how.clock()
        path = paths[id(s)][fd.index] = save_failure(fd, how.save_dir)
        first = early.pop((id(s), fd.index), None)
        if first is not None and first != Path(path):
            first.unlink(missing_ok=True)  # superseded by the minimised file

    with connect(how.cluster, ship=how.ship) as client:
        drive(client, searches, progress=progress, on_failure=on_failure, on_found=on_found)
    out = []
    for (spec, strat), s in zip(cells, searches, strict=True):
        res = s.result()
        out.append(CellReport(spec, strat, camp.schedules, res,
                              tuple(paths[id(s)][fd.index] for fd in res.failures),
                              last[id(s)] - t0))
    return out


def ship_list(driver_names: Sequence[str], load: Any = ()) -> tuple[str, ...]:
    """The modules to send to workers: every ``--load``ed module, and the module of each
    ``MODULE:ATTR`` driver (only single files are actually shipped, see ``ship_modules``)."""
    mods = [load] if isinstance(load, str) else list(load or ())
    mods += [d.partition(":")[0] for d in driver_names if ":" in d]
    return tuple(dict.fromkeys(mods))


# ---- the CLI ------------------------------------------------------------------------------------


def _write(cells: Sequence[CellReport], junit: str | None, json_out: str | None,
           suite: str, unfinished: Sequence[tuple[RunSpec, str]] = ()) -> None:
    try:
        write_reports(cells, junit=junit, json_out=json_out, suite=suite, unfinished=unfinished)
    except OSError as e:
        raise click.ClickException(f"cannot write the report: {e}") from None


def _exclusive(cluster: str | None, jobs: int) -> None:
    if cluster and jobs != 1:
        raise ClusterError("use --jobs N or --cluster ADDRESS, not both")


def campaign_command(file: str, jobs: int, save_dir: str, cluster: str | None,
                     junit: str | None, json_out: str | None,
                     timeout: float | None = None) -> int:
    """What ``wddmemu campaign`` does (its options are declared with the CLI, in ``_cli``):
    explore the matrix in FILE, save every failure, print a summary, write the reports.
    ``timeout`` (``--timeout``), when given, replaces the file's. Returns the exit code: 1 if
    any cell failed."""
    camp = load_campaign(file)
    if timeout is not None:
        camp = replace(camp, timeout=timeout)
    _exclusive(cluster, jobs)
    if jobs < 1:
        raise CampaignError("--jobs must be >= 1")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = OutputConsole()  # quiet, not exit 1, when the reader closes the pipe
    cells = camp.cells()
    reports: list[CellReport] = []
    try:
        with Progress(TextColumn("[bold]campaign"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[failed]} failing cells"), console=console,
                      transient=not console.is_terminal) as bar, ctrl_c():
            task = bar.add_task("", total=len(cells) * camp.schedules, failed=0)
            reports = run_campaign(camp, CampaignRun(
                save_dir, jobs, cluster, ship_list(camp.drivers),
                lambda runs, failed: bar.update(task, completed=runs, failed=failed)), reports)
    except BaseException as e:  # Ctrl-C: the cells that ended are reported, failures kept
        if not is_interrupt(e):
            raise
        ended = {r.name for r in reports}
        unfinished = [c for c in cells if cell_name(*c) not in ended]
        console.print(f"interrupted: {len(reports)} of {len(cells)} cells ended (not ended: "
                      f"{', '.join(cell_name(*c) for c in unfinished)}); every failure found "
                      f"so far is in {save_dir}", markup=False, highlight=False, soft_wrap=True)
        print_campaign(listing_console(), reports)
        _write(reports, junit, json_out, "wddmemu.campaign", unfinished)
        return 130
    print_campaign(listing_console(), reports)
    _write(reports, junit, json_out, "wddmemu.campaign")
    return 1 if any(r.result.failures for r in reports) else 0


def print_campaign(console: Console, reports: Sequence[CellReport]) -> None:
    """The summary table: one row per cell, then each failure's replay command."""
    table = Table(title="campaign", box=None, pad_edge=False)
    for col in ("scenario", "driver", "ddi", "strategy", "runs", "result", "seconds"):
        table.add_column(col, justify="right" if col in ("runs", "seconds") else "left",
                         no_wrap=True)
    for r in reports:
        f = r.result.failures
        verdict = (f"[red]{f[0].finding.rule}[/red] at step {f[0].finding.step}"
                   + (f" (+{len(f) - 1})" if len(f) > 1 else "")) if f else "[green]clean[/green]"
        if not f and r.result.exhausted is not None:  # dfs/dpor: proved, or only sampled
            verdict += (" (exhausted)" if r.result.exhausted
                        # h9: a bounded dpor search said "(exhausted)" here, "not a proof" below
                        else " [yellow](bounded, not a proof: raise the bound)[/yellow]"
                        if r.result.bounded
                        else " [yellow](not exhausted: raise schedules)[/yellow]")
        ddi = "default" if r.spec.ddi_version is None else hex(r.spec.ddi_version)
        table.add_row(r.spec.scenario, r.driver_label, ddi, r.strategy, str(r.result.runs),
                      verdict, f"{r.seconds:.1f}")
    console.print(table)
    failed = [r for r in reports if r.result.failures]
    console.print(f"{len(reports)} cells, {len(failed)} failing, "
                  f"{sum(r.result.runs for r in reports)} schedules")
    for r in reports:
        if (line := r.coverage()) is not None:
            console.print(f"{r.name}: {line}", markup=False, highlight=False)
    for r in failed:
        for fd, p in zip(r.result.failures, r.paths, strict=True):
            console.print(f"replay: {replay_command(fd.spec, p)}", markup=False,
                          highlight=False, soft_wrap=True)


# ---- explore --cluster/--junit/--json -------------------------------------------------------


@dataclass
class ReportingExplore:
    """``explore`` for the explore command when it was given ``--cluster``, ``--junit`` or
    ``--json``: sent to the cluster (when ``cluster`` is set) and recorded as a report cell.

    The command calls it exactly where it would call :func:`~wddmemu.explore`, then
    :meth:`write` the reports; each failure reaches the command's ``on_found`` as it is
    decided, on the cluster path as on the local ones."""

    cluster: str | None
    save_dir: str
    ship: tuple[str, ...] = ()
    cells: list[CellReport] = field(default_factory=list)
    clock: Callable[[], float] = time.perf_counter  # report timings only, never a decision

    def __call__(self, base: RunSpec, opts: ExploreOptions, **kw: Any) -> ExploreResult:
        t0 = self.clock()
        if self.cluster:
            check_spec(base, many=True)
            with connect(self.cluster, ship=self.ship) as client:
                # the command's on_found saves each failure as it is decided: what Ctrl-C
                # keeps and lists (h9: the interrupted summary said "0 failing", no files)
                res = explore_on_cluster(client, base, replace(opts, jobs=1),
                                         progress=kw.get("progress"), on_found=kw.get("on_found"))
        else:
            res = explore_local(base, opts, **kw)
        # content-addressed names: the command's own save writes these same bytes again
        paths = tuple(save_failure(fd, self.save_dir) for fd in res.failures)
        self.cells.append(CellReport(base, opts.strategy, opts.schedules, res, paths,
                                     self.clock() - t0))
        return res

    def write(self, junit: str | None, json_out: str | None,
              unfinished: Sequence[tuple[RunSpec, str]] = ()) -> None:
        _write(self.cells, junit, json_out, "wddmemu.explore", unfinished)


def reporting_explore(cluster: str | None, jobs: int, save_dir: str, driver: Any,
                      load: Sequence[str]) -> ReportingExplore:
    """The explore the command uses with ``--cluster``/``--junit``/``--json`` (checks that
    ``--cluster`` and ``--jobs`` are not both given: exit 2)."""
    _exclusive(cluster, jobs)
    drivers = [driver] if isinstance(driver, str) else []
    return ReportingExplore(cluster, save_dir, ship_list(drivers, load))
