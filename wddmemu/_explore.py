"""Race hunting: explore many schedules, minimise a failing one, save it, replay it.

* :func:`explore` runs a scenario under ``random`` or ``pct`` schedules (schedule *i* uses seed
  ``seed + i``), or under ``dfs``: every interleaving within a preemption bound, by stateless
  search over the choice points (as CHESS does). With ``jobs > 1`` the seeds are run in ordered
  chunks by a process pool and the lowest failing schedule wins, so the answer is the same as
  with one job.
* :func:`minimise` takes a failing schedule, expresses it as the choices where it deviates from
  ``fifo``, and removes deviations (delta debugging, a bounded number of re-runs) while the same
  rule still breaks.
* :func:`save_failure` / :func:`load_failure` write and read the failure file (JSON, never
  pickle; ``docs/explore.md`` documents the format); :func:`replay` re-runs it exactly.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

from vthreads import (
    SYSTEMATIC,
    Divergence,
    Fifo,
    FifoWithOverrides,
    Recorder,
    Replay,
    RunResult,
    Strategy,
    SystematicResult,
    run_many,
)
from vthreads.lowlevel import refuse_running_loop

from . import _loading
from ._drivers import load_entry_points, needed_by
from ._errors import check_callable, check_int, check_seconds, check_seed_span
from ._files import is_path, printable, read_bounded, shell_word, write_atomically
from ._pool import worker_pool
from ._runner import (
    RunSpec,
    SpecError,
    check_spec,
    current_timeout,
    run_scenario,
    run_scenario_async,
    run_timeout,
    timed_task,
)
from ._schema import KIND_NAMES, NONE, decisions_problem, document_problem, is_kind, kind_name
from ._watchdog import EXPLORE_TIMEOUT, HANG_QUICK_S, HANG_REPLAY_S, stopped_short

FORMAT = "wddmemu-failure"
#: 2 adds ``load`` (the modules and distributions the file needs) and ``spec.driver_options``;
#: version 1 files (which need nothing but the built-ins) are still read
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
#: the largest failure file read (bytes): a decision list of a million steps fits
MAX_FAILURE_FILE = 32 << 20
DEFAULT_SAVE_DIR = Path(".wddmemu/failures")


def package_version() -> str:
    try:
        return version("wddmemu")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


# ---- what a failure is ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """The first thing that broke in a run: a rule id (or ``deadlock``, ``exception``,
    ``step-budget``), at a step, on a thread."""

    rule: str
    step: int
    message: str
    thread: str | None

    @classmethod
    def of(cls, run: RunResult) -> Finding | None:
        if run.violations:
            v = run.violations[0]
            return cls(v.rule, v.step, v.message, v.thread)
        f = run.failure
        if f is not None and f.kind != "violation":
            return cls(f.kind, f.step, f.message, f.thread)
        return None


# ---- strategies the explorer drives: they live in vthreads (one place for strategies) ---------


# ---- explore ---------------------------------------------------------------------------------


#: the most worker processes ``ExploreOptions.jobs`` takes (the CLI uses at most the CPUs)
MAX_JOBS = 1024
_INT63 = (1 << 63) - 1
#: ``ExploreOptions``' int fields and their ranges, both ends included: the CLI's (docs/explore.md),
#: and ``check_program``'s for the fields it shares
OPTION_RANGES = {"schedules": (1, 10**7), "seed": (0, _INT63), "depth": (1, 1000),
                 "preemption_bound": (0, 1000), "jobs": (1, MAX_JOBS),
                 "max_replays": (0, _INT63), "chunk": (1, 10**7)}

#: what ``explore --strategy`` takes: sampling (random, pct) and systematic search (dfs, dpor)
EXPLORE_STRATEGIES = ("random", "pct", "pos", "portfolio", "dfs", "dpor")
#: the strategy ``explore``, campaigns and the fixture's ``check`` use when none is named:
#: POS, the sampler that finds the hard corpus (lost updates under a lock, the bugs a driver
#: author actually writes) at a tenth of random's and PCT's schedules, and the seeded corpus
#: as fast as PCT or faster (docs/explore.md, "Which strategy by default")
DEFAULT_STRATEGY = "pos"


@dataclass(frozen=True)
class ExploreOptions:
    """How to explore: ``strategy`` is one of :data:`EXPLORE_STRATEGIES`; ``schedules`` caps the
    executions; ``preemption_bound`` bounds dfs and dpor (bounded POR for dpor; None: no
    bound, so an exhausted search is a proof for every schedule)."""

    schedules: int = 1000
    strategy: str = DEFAULT_STRATEGY
    seed: int = 0
    depth: int = 3
    preemption_bound: int | None = 2
    jobs: int = 1
    stop_on_first: bool = True
    minimise: bool = True
    #: the minimiser's bounds: a replay cap (deterministic) and a wall-clock budget in seconds
    #: (when to stop only; None: none) — see :func:`minimise`
    max_replays: int = 2000
    minimise_seconds: float | None = 60.0
    chunk: int = 25
    #: ``--faults``: each schedule gets one fault chosen from its seed (:func:`choose_faults`)
    faults: bool = False
    #: where ``faults`` may fall: (steps, thunk calls) of a fifo run; :func:`explore` measures it
    fault_space: tuple[int, int] | None = None
    #: each schedule's wall-clock limit in seconds (0: off), explore's ``--timeout``: a run
    #: still going after it (a CPU loop in the driver, which never reaches a scheduling point)
    #: is stopped as a ``hang`` finding. It decides nothing else: a schedule that ends in time
    #: runs exactly as without it
    timeout: float = EXPLORE_TIMEOUT

    def __post_init__(self) -> None:
        """Refuse what explore cannot run, with :class:`SpecError` (issue 14): the CLI's
        options check the same ranges, and a Python caller gets the same one-line answers
        rather than a TypeError or OverflowError from deep inside a run or a process pool."""
        if not isinstance(self.strategy, str) or self.strategy not in EXPLORE_STRATEGIES:
            raise SpecError(f"unknown exploration strategy {self.strategy!r}: use "
                            f"{', '.join(EXPLORE_STRATEGIES)}")
        for name, (lo, hi) in OPTION_RANGES.items():
            if name != "preemption_bound" or self.preemption_bound is not None:
                check_int(name, getattr(self, name), lo, hi)
        check_seed_span(self.seed, self.schedules)
        for name in ("stop_on_first", "minimise", "faults"):
            v = getattr(self, name)
            if type(v) is not bool:  # "no" would be true
                raise SpecError(f"{name} must be True or False, not {type(v).__name__}")
        fs = self.fault_space
        if fs is not None and not (type(fs) is tuple and len(fs) == 2
                                   and all(type(x) is int and 1 <= x <= _INT63 for x in fs)):
            raise SpecError("fault_space is None (explore measures it) or (steps, thunk calls), "
                            "two ints >= 1")
        check_budget("minimise_seconds", self.minimise_seconds)
        check_seconds("timeout", self.timeout)


def check_budget(name: str, secs: object) -> None:
    """Refuse a minimiser's time budget (:func:`minimise`'s ``seconds``,
    ``ExploreOptions.minimise_seconds``) other than None or a number >= 0 (NaN is not), with a
    one-line :class:`SpecError` naming ``name``."""
    if secs is not None and (type(secs) not in (int, float) or not secs >= 0):
        raise SpecError(f"{name} must be a number >= 0, or None")


def check_found(what: str, found: object) -> None:
    """Refuse anything but a :class:`Found` (what ``ExploreResult.failures`` holds) given to
    ``what`` with a one-line :class:`SpecError`."""
    if not isinstance(found, Found):
        raise SpecError(f"{what} takes a Found (ExploreResult.failures), not "
                        f"{type(found).__name__}")


@dataclass(frozen=True)
class Found:
    """A failing schedule: where exploration met it and how to replay it."""

    index: int
    spec: RunSpec  # strategy "replay" with the decision list
    finding: Finding
    original_spec: RunSpec
    minimised: dict[str, int] = field(default_factory=dict)
    path: Path | None = None


@dataclass(frozen=True)
class ExploreResult:
    runs: int
    failures: tuple[Found, ...]
    pct_steps: int
    exhausted: bool | None = None  # dfs/dpor: whether every schedule within the bound ran
    #: dpor: what the search proved, in one line (``SystematicResult.claim()``)
    claim: str | None = None
    #: dpor: the search ran to its end but pruned at a bound it reached (its claim says
    #: "bounded: … not a proof"); ``exhausted`` is False then (``SystematicResult.bounded``)
    bounded: bool = False

    @classmethod
    def of_search(cls, runs: int, failures: Sequence[Found], pct_steps: int,
                  res: SystematicResult) -> ExploreResult:
        """What a dfs or dpor search (one process or merged from a split) found and covered."""
        return cls(runs, tuple(failures), pct_steps, res.exhausted and not res.bounded,
                   res.claim(), res.bounded)

    @property
    def ok(self) -> bool:
        return not self.failures


#: ``explore --strategy portfolio``: schedule *i* runs ``PORTFOLIO[i % 4]`` (strategy, depth)
#: with seed ``seed + i`` — round-robin over strategies that find different bugs (random for
#: tight two-thread windows, PCT for long uninterrupted runs at depth 2 and 3, POS for orderings
#: of far-apart dependent steps), so no single one's blind spot decides. The schedule's spec
#: names its concrete strategy, so a failure replays and ``found_by`` says which one found it.
PORTFOLIO: tuple[tuple[str, int], ...] = (("random", 3), ("pct", 2), ("pct", 3), ("pos", 3))


def uses_pct(strategy: str) -> bool:
    """The strategy draws PCT schedules (``pct``, or ``portfolio``'s pct turns), so explore
    probes the scenario's step count k first and the summary reports it."""
    return strategy in ("pct", "portfolio")


def _schedule_spec(base: RunSpec, opts: ExploreOptions, k: int, i: int) -> RunSpec:
    strategy, depth = opts.strategy, opts.depth
    if strategy == "portfolio":
        strategy, depth = PORTFOLIO[i % len(PORTFOLIO)]
    spec = replace(base, strategy=strategy, seed=opts.seed + i, depth=depth,
                   pct_steps=k, decisions=None)
    return _with_faults(spec, opts, opts.seed + i)


def _with_faults(spec: RunSpec, opts: ExploreOptions, seed: int) -> RunSpec:
    if not opts.faults or opts.fault_space is None:
        return spec
    return replace(spec, faults=spec.faults + choose_faults(seed, *opts.fault_space))


def measure_faults(base: RunSpec, opts: ExploreOptions) -> ExploreOptions:
    """``opts`` with its :attr:`~ExploreOptions.fault_space` measured when ``--faults`` needs it
    (every explorer calls it before handing out schedules: in-process, pool or cluster)."""
    if opts.faults and opts.fault_space is None:
        return replace(opts, fault_space=fault_space(base))
    return opts


def fault_space(base: RunSpec) -> tuple[int, int]:
    """Where ``--faults`` may inject: the steps and the thunk calls of a fifo run of ``base``
    (at least 1 each)."""
    res = run_scenario(replace(base, strategy="fifo", seed=0, decisions=None))
    calls = res.kernel.thunk_calls if res.kernel is not None else 1
    return max(1, res.run.steps), max(1, calls)


def choose_faults(seed: int, steps: int, calls: int) -> tuple[str, ...]:
    """The fault ``explore --faults`` injects into the schedule with ``seed``: deterministic
    (its own random stream, seeded by the text of the seed, so no schedule decision moves).
    A GPU hang at a step (45 %), an adapter removal at a thunk call (45 %), or the first
    device removed as it is created (10 %: it is always the same run)."""
    rng = random.Random(f"wddmemu.faults/{seed}")
    roll = rng.random()
    if roll < 0.45:
        return (f"tdr@step={rng.randint(1, steps)}",)
    if roll < 0.9:
        return (f"removal@call={rng.randint(1, calls)}",)
    return ("removal@device",)


def _run_one(spec: RunSpec) -> tuple[Finding | None, tuple[int, ...]]:
    r = run_scenario(spec, stop_on_violation=True).run
    return Finding.of(r), r.decisions


async def _run_one_async(spec: RunSpec) -> tuple[Finding | None, tuple[int, ...]]:
    r = (await run_scenario_async(spec, stop_on_violation=True)).run
    return Finding.of(r), r.decisions


def _run_chunk(spec_dicts: list[dict[str, Any]], modules: tuple[str, ...] = ()
               ) -> list[tuple[Any, tuple[int, ...]]]:
    """Worker-process entry: load the parent's ``--load`` modules (a worker that was not
    forked has none), run a chunk of schedules, return plain data."""
    for m in modules:
        _loading.load_module(m)
    specs = [spec_from_dict(d) for d in spec_dicts]
    if len({s.backend for s in specs}) == 1:  # the chunk in one event loop, as one job runs
        outcomes = run_many(_run_one_async, specs, backend=specs[0].backend)
    else:
        outcomes = [_run_one(s) for s in specs]
    return [(None if f is None else (f.rule, f.step, f.message, f.thread), decisions)
            for f, decisions in outcomes]


def probe_steps(base: RunSpec) -> int:
    """PCT's ``k``: the steps of a fifo run of the scenario (at least 10)."""
    r = run_scenario(replace(base, strategy="fifo", seed=0, decisions=None)).run
    return max(10, r.steps)


def explore(
    base: RunSpec,
    opts: ExploreOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
    on_found: Callable[[Found], None] | None = None,
) -> ExploreResult:
    """Run up to ``opts.schedules`` schedules of ``base``; see the module docstring.
    ``on_found`` sees each failure as soon as it is found, before it is minimised (the CLI
    saves it then, so that Ctrl-C loses nothing). Every run of it — the probes, the
    schedules, the minimiser's replays, in any process — is under ``opts.timeout``.
    Synchronous (``LoopRunningError`` inside a running event loop)."""
    refuse_running_loop("wddmemu.explore()", "wddmemu.explore_async")
    check_explore("explore", base, opts, progress=progress, on_found=on_found)
    with run_timeout(opts.timeout):
        return _search(base, opts, progress, on_found)


def check_explore(what: str, base: RunSpec, opts: ExploreOptions,
                  **callbacks: Callable[..., Any] | None) -> None:
    """Refuse (one-line :class:`SpecError`) what ``what`` (explore, or its cluster and pool
    forms) cannot search: a bad spec, options that are not :class:`ExploreOptions`, a callback
    (``progress=``, ``on_found=`` …) that is neither None nor callable."""
    check_spec(base, many=True)
    if not isinstance(opts, ExploreOptions):
        raise SpecError(f"{what} takes ExploreOptions(...) as its options, not "
                        f"{type(opts).__name__}")
    for name, fn in callbacks.items():
        check_callable(name, fn)


def _search(base: RunSpec, opts: ExploreOptions,
            progress: Callable[[int, int], None] | None,
            on_found: Callable[[Found], None] | None) -> ExploreResult:
    """:func:`explore`'s work, its input checked and its timeout in force."""
    opts = measure_faults(base, opts)
    if opts.strategy in ("dfs", "dpor"):  # one fault for the whole search, from --seed
        return _explore_systematic(_with_faults(base, opts, opts.seed), opts, progress, on_found)
    k = probe_steps(base) if uses_pct(opts.strategy) else base.pct_steps
    failures: list[Found] = []
    runs = 0

    def record(i: int, f: Finding, decisions: tuple[int, ...]) -> Found:
        orig = _schedule_spec(base, opts, k, i)
        failures.append(Found(i, orig.with_decisions(decisions), f, orig))
        return failures[-1]

    def tell(runs: int, new: Sequence[Found]) -> None:
        _tell(progress, on_found, runs, len(failures), new)

    if opts.jobs == 1:  # every schedule in one event loop (vthreads.run_many)

        def after(i: int, outcome: tuple[Finding | None, tuple[int, ...]]) -> bool:
            nonlocal runs
            f, decisions = outcome
            runs += 1
            tell(runs, () if f is None else (record(i, f, decisions),))
            return bool(failures) and opts.stop_on_first

        run_many(lambda i: _run_one_async(_schedule_spec(base, opts, k, i)),
                 range(opts.schedules), backend=base.backend, stop=after)
    else:
        runs = _explore_parallel(base, opts, k, record, tell, failures)
    if opts.minimise:
        failures = [minimise(fd, opts.max_replays, seconds=opts.minimise_seconds)
                    for fd in failures]
    return ExploreResult(runs, tuple(failures), k)


def _tell(progress: Callable[[int, int], None] | None, on_found: Callable[[Found], None] | None,
          runs: int, failing: int, new: Sequence[Found]) -> None:
    """Schedules finished, then the failures among them: the count before the files, so that
    a Ctrl-C between the two never shows more failures than schedules (h9), and each file is
    saved once its schedule is counted."""
    if progress:
        progress(runs, failing)
    if on_found:
        for fd in new:
            on_found(fd)


def _explore_parallel(base: RunSpec, opts: ExploreOptions, k: int,
                      record: Callable[[int, Finding, tuple[int, ...]], Found],
                      tell: Callable[[int, Sequence[Found]], None],
                      failures: list[Found]) -> int:
    runs = 0
    indices = list(range(opts.schedules))
    chunks = [indices[j : j + opts.chunk] for j in range(0, len(indices), opts.chunk)]
    modules = _loading.load_arguments()
    # A sliding window of jobs + 1 chunks in flight, read in chunk order. Not waves of `jobs`
    # chunks: a wave waits for its slowest chunk while the other workers idle, which on a
    # shared machine (one worker descheduled for a while) cost more than the parallelism won.
    # Here a worker that finishes takes the next chunk at once, and with stop-on-first at
    # most jobs + 1 chunks past the failing one are ever started (the wave: jobs - 1).
    window = opts.jobs + 1
    with worker_pool(opts.jobs) as pool:

        def submit(c: list[int]) -> Any:
            return pool.submit(timed_task, current_timeout(), _run_chunk,
                               [_schedule_spec(base, opts, k, i).to_dict() for i in c], modules)

        futs = [submit(c) for c in chunks[:window]]
        try:
            for n, c in enumerate(chunks):
                results = futs[n].result()
                if n + window < len(chunks):
                    futs.append(submit(chunks[n + window]))
                new = []
                for i, (f, decisions) in zip(c, results, strict=True):
                    runs += 1
                    if f is not None:
                        new.append(record(i, Finding(*f), tuple(decisions)))
                        if opts.stop_on_first:
                            break
                tell(runs, new)  # the whole chunk's count, then its files (h9)
                if failures and opts.stop_on_first:
                    break
        finally:
            for fut in futs:  # after a stop (or Ctrl-C): the chunks not started yet
                fut.cancel()
    # with stop-on-first the lowest failing index wins, as it does with one job
    failures.sort(key=lambda fd: fd.index)
    if opts.stop_on_first:
        del failures[1:]
    return runs


# ---- dfs and dpor: systematic search within a preemption bound ----------------------------


def _explore_systematic(base: RunSpec, opts: ExploreOptions,
                        progress: Callable[[int, int], None] | None,
                        on_found: Callable[[Found], None] | None = None) -> ExploreResult:
    """Systematic search of the scenario through the harness seam of ``vthreads``
    (``SYSTEMATIC["dfs"]`` / ``SYSTEMATIC["dpor"]``), bounded by ``preemption_bound``.

    ``dfs`` enumerates schedules by iterative preemption bounding: every schedule with 0
    preemptions, then 1, then 2…, so the shallow bugs come first (issue 12; CHESS's order).
    ``dpor`` runs one execution per equivalence class of the steps the engine can see.

    DPOR's dependency relation covers the engine's objects (shared cells, mutexes, queues,
    events, conditions, threads, the clock); state the layers keep in plain Python is not in
    it, so on a scenario the claim is "every class the engine can tell apart" — the
    exhaustiveness is exact for programs that share state only through vthreads objects."""
    failures: list[Found] = []
    runs = 0

    def run_one(strategy: Strategy) -> RunResult:
        nonlocal runs
        r = run_scenario(base, strategy=strategy, stop_on_violation=True).run
        new = []
        if _search_finding(r) is not None:
            new.append(systematic_found(base, opts, runs, r))
            failures.append(new[-1])
        runs += 1
        _tell(progress, on_found, runs, len(failures), new)
        return r

    # with stop_on_first the search ends at the first execution ``failing`` accepts, which is
    # the one run_one recorded: ``failures`` then holds exactly that one
    search = SYSTEMATIC[opts.strategy]
    res = search(run_one, max_executions=opts.schedules, preemption_bound=opts.preemption_bound,
                 stop_on_failure=opts.stop_on_first,
                 failing=lambda r: _search_finding(r) is not None)
    if opts.minimise:
        failures = [minimise(fd, opts.max_replays, seconds=opts.minimise_seconds)
                    for fd in failures]
    return ExploreResult.of_search(runs, failures, base.pct_steps, res)


def systematic_found(base: RunSpec, opts: ExploreOptions, index: int, r: RunResult) -> Found:
    """The :class:`Found` of failing execution ``index`` (0-based) of a dfs or dpor search."""
    f = _search_finding(r)
    assert f is not None
    orig = replace(base, strategy=opts.strategy, seed=0, decisions=tuple(r.decisions))
    return Found(index, orig.with_decisions(r.decisions), f, orig)


def _search_finding(r: RunResult) -> Finding | None:
    # dfs and DPOR end a run that can only repeat explored work by making it diverge from its
    # prefix: that is the search pruning itself, not a finding
    if r.failure is not None and r.failure.kind == "divergence" and not r.violations:
        return None
    return Finding.of(r)


@dataclass(frozen=True)
class FindingGroup:
    """Failures of one exploration that broke the same thing: the rule and the message with
    its numbers (steps, handles, sizes) blanked out. ``first`` is the earliest schedule."""

    rule: str
    shape: str
    first: Found
    count: int
    #: every failure of the group, in schedule order (``first`` is ``members[0]``)
    members: tuple[Found, ...] = ()

    def describe(self) -> str:
        return (f"{self.rule}: {self.first.finding.message} ×{self.count}, first at schedule "
                f"{self.first.index}")

    def later_rules(self, sample: int = 8) -> tuple[dict[str, int], int]:
        """What else broke in this group's schedules after the first finding (which stopped
        them): rule → in how many of the first ``sample`` schedules, replayed to the end
        (:func:`findings_to_end`), and how many were replayed. A schedule's second rule never
        shows in the grouping otherwise (h7: LA-15 behind LA-14 in 200 of 200)."""
        seen: dict[str, int] = {}
        replayed = self.members[:sample] or (self.first,)
        for fd in replayed:
            for rule in dict.fromkeys(f.rule for f in findings_to_end(fd)):
                if rule != self.rule:
                    seen[rule] = seen.get(rule, 0) + 1
        return seen, len(replayed)


def group_failures(failures: Sequence[Found]) -> tuple[FindingGroup, ...]:
    """Group ``failures`` (``--keep-going``) by rule and message shape, in the order each group
    first appeared (issue 11: ``RACE on umd.dev0.heap ×30, first at schedule 4``)."""
    if isinstance(failures, str | bytes) or not isinstance(failures, Iterable):
        raise SpecError(f"group_failures takes the failures (ExploreResult.failures), not "
                        f"{type(failures).__name__}")
    failures = list(failures)
    for fd in failures:
        check_found("group_failures", fd)
    groups: dict[tuple[str, str], list[Found]] = {}
    for fd in sorted(failures, key=lambda x: x.index):
        shape = re.sub(r"0x[0-9a-fA-F]+|\d+", "#", fd.finding.message)
        groups.setdefault((fd.finding.rule, shape), []).append(fd)
    return tuple(FindingGroup(rule, shape, fds[0], len(fds), tuple(fds))
                 for (rule, shape), fds in groups.items())


def _lenient(decisions: Sequence[int] | None) -> Replay:
    """The recording as far as it applies, then fifo: how a changed program is replayed."""
    return Replay(decisions or (), fallback=Fifo(), lenient=True)


def findings_to_end(fd: Found) -> tuple[Finding, ...]:
    """Every distinct finding of ``fd``'s schedule, earliest first (issue 11: no masking).

    Exploration stops a run at its first broken rule; this replays the recorded decisions with
    no stop, then lets fifo finish the run, so what the first finding hid — the DATA corruption
    behind a stale pointer, a deadlock after a race — is reported too, in causal (step) order.
    Identical findings (same rule and message) count once."""
    check_found("findings_to_end", fd)
    r = run_scenario(fd.spec, strategy=_lenient(fd.spec.decisions)).run
    out: dict[tuple[str, str], Finding] = {}
    for v in r.violations:
        out.setdefault((v.rule, v.message), Finding(v.rule, v.step, v.message, v.thread))
    f = r.failure
    if f is not None and f.kind not in ("violation", "divergence"):
        out.setdefault((f.kind, f.message), Finding(f.kind, f.step, f.message, f.thread))
    first = fd.finding
    out.setdefault((first.rule, first.message), first)
    return tuple(sorted(out.values(), key=lambda x: x.step))


# ---- minimise -----------------------------------------------------------------------------------
#
# A failing schedule is expressed as its *deviations*: the choice points (by index) where it ran
# another thread than fifo would have. The minimiser searches for a small set of deviations
# that, replayed over fifo (``FifoWithOverrides``), still breaks the same rule:
#
# 1. truncate: the shortest prefix of the deviations (by choice index) that still fails, by
#    binary search — everything after the last deviation kept runs fifo (the "fifo tail");
# 2. remove chunks: halves, quarters… down to single deviations, keeping every removal after
#    which the rule still breaks, and repeating the single-deviation pass until nothing more
#    can go — a local minimum: removing any one remaining deviation makes the bug disappear.
#
# Replays are cached by prefix: a run's outcome depends only on the overrides at the choice
# points it reached, so a candidate that agrees with a cached run on every choice that run made
# has that run's outcome, without running it. The search is deterministic; its bounds are a
# replay cap (deterministic) and a time budget in wall-clock seconds that only decides *when to
# stop*, never which candidate comes next: a result that did not hit the budget is the same on
# every machine; one that did says so (``budget_hit``) and is merely less small.


@dataclass(frozen=True)
class _Outcome:
    """One replay of a candidate: whether the rule broke, the run's decisions and finding, and
    how many real deviations from fifo it made."""

    ok: bool
    decisions: tuple[int, ...]
    finding: Finding | None
    deviations: int


class _Minimiser:
    """One minimisation: the spec, the deviations, the cache and the budget."""

    def __init__(self, found: Found, deviations: dict[int, int], max_replays: int,
                 seconds: float | None,
                 progress: Callable[[int, int], None] | None) -> None:
        self.found, self.deviations = found, deviations
        self.max_replays, self.progress = max_replays, progress
        self.replays = self.cached = 0
        self.budget_hit = False
        self._deadline = None if seconds is None else time.monotonic() + seconds
        #: horizon (choice points the run made) -> {overrides within it: its outcome}
        self._cache: dict[int, dict[frozenset[tuple[int, int]], _Outcome]] = {}
        self.best: _Outcome | None = None

    def exhausted(self) -> bool:
        if self.replays >= self.max_replays:
            self.budget_hit = True
        elif self._deadline is not None and time.monotonic() > self._deadline:
            self.budget_hit = True  # wall clock: when to stop only, never what to try
        return self.budget_hit

    def _lookup(self, keys: list[int]) -> _Outcome | None:
        for horizon, seen in self._cache.items():
            got = seen.get(frozenset((k, self.deviations[k]) for k in keys if k < horizon))
            if got is not None:
                return got
        return None

    def _replay(self, keys: list[int]) -> _Outcome:
        self.replays += 1
        rec = Recorder(FifoWithOverrides({k: self.deviations[k] for k in keys}))
        run = run_scenario(replace(self.found.spec, strategy="fifo"), strategy=rec,
                           stop_on_violation=True).run
        f = Finding.of(run)
        ok = f is not None and f.rule == self.found.finding.rule
        # the deviations the run really made (an override fifo would have chosen anyway is
        # none), which is what the saved schedule carries
        real = sum(c.chosen != c.fifo for c in rec.choices)
        out = _Outcome(ok, run.decisions, f, real)
        horizon = len(run.decisions)
        self._cache.setdefault(horizon, {})[
            frozenset((k, self.deviations[k]) for k in keys if k < horizon)] = out
        return out

    def fails(self, keys: list[int]) -> bool:
        out = self._lookup(keys)
        if out is not None:
            self.cached += 1
        else:
            out = self._replay(keys)
        if out.ok and (self.best is None or out.deviations <= self.best.deviations):
            self.best = out
        if self.progress:
            self.progress(self.replays,
                          self.best.deviations if self.best else len(self.deviations))
        return out.ok

    def truncate(self, keys: list[int]) -> list[int]:
        """The shortest prefix of ``keys`` that still fails (binary search; ``keys`` fails)."""
        lo, hi = 0, len(keys)  # keys[:hi] fails; keys[:lo] is not known to
        while lo < hi and not self.exhausted():
            mid = (lo + hi) // 2
            if self.fails(keys[:mid]):
                hi = mid
            else:
                lo = mid + 1
        return keys[:hi]

    def remove_chunks(self, keys: list[int]) -> list[int]:
        """Remove chunks of halving size while the rule still breaks, then single deviations
        until none can go (``keys`` fails)."""
        size = max(1, len(keys) // 2)
        while keys and not self.exhausted():
            changed, i = False, 0
            while i < len(keys) and not self.exhausted():
                rest = keys[:i] + keys[i + size:]
                if self.fails(rest):
                    keys, changed = rest, True
                else:
                    i += size
            if size > 1:
                size = max(1, size // 2)
            elif not changed:
                break  # a single-deviation pass removed nothing: a local minimum
        return keys


def minimise(found: Found, max_replays: int = 2000, *, seconds: float | None = 60.0,
             progress: Callable[[int, int], None] | None = None) -> Found:
    """Fewer deviations from fifo, same rule (see the comment above): truncate, then remove
    chunks down to a local minimum, within ``max_replays`` replays and ``seconds`` of wall
    clock (None: no time budget). ``progress(replays, deviations)`` is called after each
    replay. ``minimised`` reports deviations before/after, replays, cache hits and whether a
    budget stopped the search. A hang is returned as found: each replay of it would cost the
    whole ``--timeout``. Refuses (:class:`SpecError`) what ``ExploreOptions`` refuses for
    ``max_replays`` and ``minimise_seconds``."""
    check_found("minimise", found)
    check_int("max_replays", max_replays, *OPTION_RANGES["max_replays"])
    check_budget("seconds", seconds)
    check_callable("progress", progress)
    if found.finding.rule == "hang":
        return found
    spec = found.spec
    assert spec.decisions is not None
    rec = Recorder(Replay(spec.decisions))
    r = run_scenario(spec, strategy=rec, stop_on_violation=True).run
    first = Finding.of(r)
    if first is None or first.rule != found.finding.rule:
        return found  # not reproducible as recorded: leave it alone
    deviations = {k: c.chosen for k, c in enumerate(rec.choices) if c.chosen != c.fifo}
    m = _Minimiser(found, deviations, max_replays, seconds, progress)
    keys = sorted(deviations)
    if not m.fails([]):
        keys = m.remove_chunks(m.truncate(keys))
    report = {"deviations_before": len(deviations), "deviations_after": len(keys),
              "replays": m.replays, "cached": m.cached, "budget_hit": m.budget_hit}
    if m.best is None:
        return replace(found, minimised=report)
    best = m.best
    report["deviations_after"] = best.deviations
    return replace(found, spec=spec.with_decisions(best.decisions),
                   finding=best.finding or found.finding, minimised=report)


# ---- failure files ------------------------------------------------------------------------------


class FailureFileError(SpecError):
    """An unreadable, incompatible or damaged failure file (the CLI exits 2 with this one
    line). A :class:`SpecError`, as every refusal of bad input is: ``except wddmemu.SpecError``
    catches all of :func:`load_failure`'s and :func:`replay`'s (h10)."""


#: the JSON kind each spec field of a failure file must have (check_spec then judges the
#: values): a list where a name belongs reached a registry's ``in`` as an unhashable key
_SPEC_KINDS: dict[str, tuple[type, ...]] = {
    "scenario": (str,), "driver": (str,), "strategy": (str,), "backend": (str,),
    "seed": (int,), "depth": (int,), "pct_steps": (int,), "step_budget": (int,),
    "queue_size": (int,), "ddi_version": (int, NONE), "params": (dict, NONE),
    "driver_options": (dict, NONE), "bugs": (list, NONE),
    "faults": (list, NONE), "decisions": (list, NONE),
}


def _spec_kind_problem(d: dict[str, Any]) -> str | None:
    """The first field of spec ``d`` whose JSON kind is not :data:`_SPEC_KINDS`'s (true and
    false are not integers here), or a ``bugs``/``faults`` entry that is not a string."""
    for name, kinds in _SPEC_KINDS.items():
        if name not in d:
            continue
        v = d[name]
        if not is_kind(v, kinds):
            want = " or ".join(KIND_NAMES[k] for k in kinds)
            return f"the spec's {name} is {kind_name(v)}, not {want}"
        if name in ("bugs", "faults") and not all(isinstance(x, str) for x in v or ()):
            return f"the spec's {name} are not all strings"
    return None


def spec_from_dict(d: dict[str, Any]) -> RunSpec:
    """The :class:`RunSpec` a failure file's ``spec`` object describes; a field that is
    unknown, missing (``scenario``) or of the wrong JSON kind is a :class:`FailureFileError`
    (exit 2, issue 14)."""
    if not isinstance(d, dict):
        raise FailureFileError(f"the file's spec is {kind_name(d)}, not an object")
    fields_ = set(RunSpec.__dataclass_fields__)
    unknown = sorted(set(d) - fields_)
    if unknown:
        raise FailureFileError(f"unknown spec field {unknown[0]!r}")
    if "scenario" not in d:
        raise FailureFileError("the spec has no scenario (the name of the scenario to run)")
    problem = _spec_kind_problem(d)
    if problem is not None:
        raise FailureFileError(problem)
    d = dict(d)
    d["driver_options"] = dict(d.get("driver_options") or {})
    d["bugs"] = tuple(d.get("bugs") or ())
    d["faults"] = tuple(d.get("faults") or ())
    if d.get("decisions") is not None:
        d["decisions"] = tuple(d["decisions"])
    d["params"] = dict(d.get("params") or {})
    return RunSpec(**d)


def _needs(spec: RunSpec) -> dict[str, list[str]]:
    """What replaying ``spec`` needs besides the built-ins: the ``--load`` modules and the
    distributions that provide its scenario and driver (:func:`needed_by`; an unrelated
    installed package is not listed, so the file replays where it is missing), and the module
    of a ``MODULE:ATTR`` driver."""
    name = spec.to_dict()["driver"]
    need = needed_by(spec.scenario, name)
    modules = need["modules"]
    if ":" in name:
        mod = name.partition(":")[0]
        if not any(mod == m or mod.startswith(m + ".") for m in modules):
            modules.append(mod)
    return need


def replay_command(spec: RunSpec, path: Path | str) -> str:
    """The command that replays the failure file at ``path``, saved for ``spec``, in a new
    process: ``wddmemu`` with what loads the modules the file lists (``--load`` as the user
    typed it, ``--allow-load`` for a ``MODULE:ATTR`` driver's module), ``replay PATH``."""
    return (f"{_loading.command_prefix(allow=_needs(spec)['modules'])} replay "
            f"{shell_word(str(path))}")


def failure_document(found: Found) -> dict[str, Any]:
    """The failure file's content (``docs/explore.md`` documents it). Raises
    :class:`SpecError` for a driver given as an object with no name to save."""
    f = found.finding
    o = found.original_spec
    need = _needs(found.spec)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "wddmemu": package_version(),
        "load": need,
        "spec": found.spec.to_dict(),
        "failure": {"rule": f.rule, "step": f.step, "thread": f.thread, "message": f.message},
        "found_by": {"strategy": o.strategy, "seed": o.seed, "depth": o.depth,
                     "pct_steps": o.pct_steps, "schedule": found.index},
        "minimised": dict(found.minimised),
        "replay": _loading.command_prefix(need["modules"], need["modules"]) + " replay {file}",
    }


def failure_file(found: Found, save_dir: Path | str = DEFAULT_SAVE_DIR) -> tuple[Path, bytes]:
    """The failure file's path and bytes, not written: the name is derived from the content
    (same failure, same name), so a caller can know the path before the write."""
    doc = failure_document(found)
    try:
        body = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    except TypeError as e:  # a driver option or parameter the API passed as a Python object
        raise SpecError(f"cannot save the failure of {found.spec.scenario}: {e} (a driver "
                        "option or scenario parameter no JSON file can hold: pass options as "
                        "text, numbers, bools or lists to save and replay the failure)") from None
    digest = hashlib.blake2b(body, digest_size=4).hexdigest()
    return Path(save_dir) / f"{found.spec.scenario}-{found.finding.rule}-{digest}.json", \
        body + b"\n"


def save_failure(found: Found, save_dir: Path | str = DEFAULT_SAVE_DIR) -> Path:
    """Write the failure file (:func:`failure_file`); returns its path."""
    check_found("save_failure", found)
    if not is_path(save_dir):
        raise SpecError(f"save_failure takes a directory path, not {save_dir!r}")
    path, body = failure_file(found, save_dir)
    return write_failure_file(path, body)


def write_failure_file(path: Path, body: bytes) -> Path:
    """Write a failure file atomically (never half a file, issue 14), making its save
    directory if it is missing: the tool's own ``.wddmemu/failures`` or a ``--save-dir`` the
    CLI checked could be made (``_files.check_directory``)."""
    return write_atomically(path, body, make_parents=True)


@dataclass(frozen=True)
class FailureFile:
    path: Path
    spec: RunSpec
    rule: str
    step: int
    message: str
    doc: dict[str, Any]


def load_failure(path: Path | str) -> FailureFile:
    """Read and validate a failure file; :class:`FailureFileError` says what is wrong.

    The file never causes an import or a call by itself: its scenario and driver names resolve
    only through the registries; the modules it lists (its ``load`` section) and a
    ``MODULE:ATTR`` driver are imported only if the user allowed them (``--load``,
    ``--allow-load``, :func:`wddmemu.load_module`, :func:`wddmemu.allow_module`), otherwise
    :class:`wddmemu.LoadRefused` (a :class:`SpecError`: one line, exit 2) says how to allow it.
    """
    if not is_path(path):
        given = repr(path) if isinstance(path, str) else type(path).__name__
        raise FailureFileError(f"load_failure takes the path of a failure file, not {given}")
    p = Path(path)
    try:  # bounded: a failure file is small, /dev/zero never ends (issue 14)
        raw = read_bounded(p, MAX_FAILURE_FILE, "failure file")
    except OSError as e:
        raise FailureFileError(f"cannot read {p}: {e.strerror}") from None
    except SpecError as e:
        raise FailureFileError(str(e)) from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if "infinity" in str(e):  # orjson's words for a number past a double (sweep H D7)
            raise FailureFileError(f"{p} holds a number too large to read "
                                   f"({str(e).rpartition(': ')[2]}): no failure file has one"
                                   ) from None
        raise FailureFileError(f"{p} is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FailureFileError(f"{p} is not a wddmemu failure file (no format {FORMAT!r})")
    v = doc.get("version")
    if type(v) is not int or v not in READ_VERSIONS:
        raise FailureFileError(f"{p} has format version {printable(repr(v))}; this wddmemu "
                               f"reads versions {', '.join(map(str, READ_VERSIONS))}")
    try:
        spec, need = _read_document(doc)
    except FailureFileError as e:
        raise FailureFileError(f"{p}: {e}") from None
    load_entry_points()
    _loading.require(need.get("modules", []), need.get("distributions", []),
                     by=str(p))  # LoadRefused propagates: it says what to do
    try:
        check_spec(spec, by=str(p))
    except _loading.LoadRefused:
        raise
    except SpecError as e:  # an unknown name, or a value out of its range: the error says which
        raise FailureFileError(f"{p}: {e}") from None
    fail = doc["failure"]
    return FailureFile(p, spec, fail["rule"], fail["step"], fail.get("message", ""), doc)


def _read_document(doc: dict[str, Any]) -> tuple[RunSpec, dict[str, list[str]]]:
    """The spec and the ``load`` section of a document whose format and version are right;
    :class:`FailureFileError` names the first field of the wrong shape (``_schema``)."""
    problem = document_problem(doc)
    if problem is not None:
        raise FailureFileError(problem)
    spec = spec_from_dict(doc["spec"])
    problem = decisions_problem(doc["spec"].get("decisions"))
    if problem is not None:
        raise FailureFileError(problem)
    return spec, doc.get("load", {})


@dataclass(frozen=True)
class ReplayOutcome:
    """``reproduced``: the same rule broke at the same step. ``clean``: nothing broke (a fixed
    bug). ``different``: something else broke. ``diverged``: the program no longer matches the
    recording and, replayed as far as the recording applies and then under fifo, still breaks
    something (``got``). When the program changed but that run is clean, the outcome is
    ``clean`` with ``diverged_at`` set: the fix itself usually changes the program."""

    kind: str
    expected: tuple[str, int]
    got: Finding | None
    run: RunResult
    #: the step where the program stopped matching the recording, if it did
    diverged_at: int | None = None


def _damage(divergence: Divergence | None, recorded: int, hang: bool = False) -> str | None:
    """Why a strict replay's divergence shows a damaged decision list rather than a changed
    program (``docs/explore.md``, "replay"), or None when a program change explains it.

    Damage: a decision naming a thread id the run has not started by then (every recorded
    decision named a thread the recorded run had, and the decisions before it matched), or an
    empty list asked for a decision (every scenario run makes its first choice when the
    kernel starts its threads, so no saved failure has an empty list). A decision naming a
    thread that exists but cannot run, and a recording that runs out after one or more
    decisions, are what a fix does to a schedule: those are a changed program. A ``hang``
    may have an empty list: a limit shorter than the start-up stops a run before its first
    choice, and a replay that gets past it simply no longer hangs there."""
    if divergence is None:
        return None
    if divergence.kind == "unknown-thread":
        return (f"the decision list is damaged: {divergence} at step {divergence.step}; the "
                "file was edited or cut, or the program now starts fewer threads: explore "
                "again for a fresh file")
    if divergence.kind == "ran-out" and recorded == 0 and not hang:
        return (f"the decision list is empty, but the run makes a choice at step "
                f"{divergence.step}: the file was edited or cut; explore again for a fresh file")
    return None


def _replay_limits(ff: FailureFile, timeout: float | None, trace: Any) -> tuple[float, ...]:
    """The limits ``replay`` runs ``ff`` under, each only if the one before stopped a hang's
    replay short of its stuck step: the one given; else, for a hang, :data:`HANG_QUICK_S`
    then :data:`HANG_REPLAY_S` (only the second when the trace goes to a stream, which a
    second run would append to); else the limit in force."""
    if timeout is not None:
        return (timeout,)
    if ff.rule != "hang":
        return (current_timeout(),)
    if trace is None or isinstance(trace, (str, Path)):
        return (HANG_QUICK_S, HANG_REPLAY_S)
    return (HANG_REPLAY_S,)


def replay(ff: FailureFile, *, trace: Any = None, backend: str | None = None,
           inject: Sequence[str] = (), timeout: float | None = None) -> ReplayOutcome:
    """Re-run ``ff`` exactly: its decisions and its faults (``inject`` adds more).

    ``timeout`` (seconds, 0 off) bounds the run's wall time; None: for a saved ``hang``
    :data:`HANG_QUICK_S`, and :data:`HANG_REPLAY_S` if that stopped it before its stuck step
    — unwatched, its replay would spin for ever (a pinned hang regression hung pytest) — and
    the limit in force otherwise (``run_timeout``; off by default).

    A decision list the run shows to be damaged (:func:`_damage`) raises
    :class:`FailureFileError` (exit 2): it is never reported as ``clean``, so a regression
    test over a damaged file fails instead of passing as "fixed"."""
    refuse_running_loop("wddmemu.replay()", "wddmemu.replay_async")
    if not isinstance(ff, FailureFile):
        hint = ("run_scenario(found.spec) reruns a Found" if isinstance(ff, Found)
                else "wddmemu.replay(wddmemu.load_failure(path))")
        raise SpecError(f"replay takes a FailureFile, not {type(ff).__name__}: {hint}")
    if isinstance(inject, str) or not isinstance(inject, Sequence):
        raise SpecError(f"inject takes a list of faults, not {type(inject).__name__}")
    spec = ff.spec if backend is None else replace(ff.spec, backend=backend)
    spec = replace(spec, faults=spec.faults + tuple(inject))
    assert spec.decisions is not None
    for limit in _replay_limits(ff, timeout, trace):
        strict = Replay(spec.decisions)
        r = run_scenario(spec, trace=trace, strategy=strict, stop_on_violation=True,
                         timeout=limit).run
        if not stopped_short(r, ff.step):
            break
    if r.failure is not None and r.failure.kind == "divergence":
        damage = _damage(strict.divergence, len(spec.decisions), ff.rule == "hang")
        if damage is not None:
            raise FailureFileError(f"{ff.path}: {damage}")
        at = r.failure.step
        r = run_scenario(spec, strategy=_lenient(spec.decisions), stop_on_violation=True,
                         timeout=limit).run
        f = Finding.of(r)
        return ReplayOutcome("clean" if f is None else "diverged", (ff.rule, ff.step), f, r, at)
    f = Finding.of(r)
    if f is None:
        kind = "clean"
    elif (f.rule, f.step) == (ff.rule, ff.step):
        kind = "reproduced"
    else:
        kind = "different"
    return ReplayOutcome(kind, (ff.rule, ff.step), f, r)
