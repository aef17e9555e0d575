"""Exploration on a Dask distributed cluster (``--cluster``): one machine is not the limit.

A driver team that outgrows one host does not need a home-made scheduler: :func:`connect` opens a
``distributed.Client`` on an existing Dask scheduler (``tcp://host:port``) or on a
``LocalCluster`` of worker processes (``local:N``), and :func:`explore_on_cluster` runs the
schedules there with the *same answers* as ``--jobs 1``:

* Schedule *i* is still seed ``seed + i``; the seeds go out as ordered chunks of ``opts.chunk``
  spec dicts (plain data), each chunk a pure, idempotent task (``_explore._run_chunk``): it reads
  nothing but its argument and writes nothing, so Dask may run it twice — which it does when a
  worker dies mid-chunk (the scheduler resubmits the lost task; no schedule is lost or doubled in
  the answer, because results are keyed by schedule index, not by arrival).
* Results are collected as they arrive but decided by index: with stop-on-first the lowest
  failing schedule wins, chunks above it are cancelled, and the winner is final only once every
  chunk below it has reported. Minimisation is the same deterministic :func:`minimise`, run as a
  task, so the failure file is byte-identical to a one-process run.
* Failures are handed to ``on_found`` on the client as soon as they are decided and to
  ``on_failure`` once minimised (the CLI saves them there: workers never write files; the
  early file is what a Ctrl-C keeps), and ``progress`` counts finished schedules across all
  workers.

* ``dfs`` is split by decision prefixes (:class:`DfsSplit`): its search tree is fixed by the
  scenario (a schedule's children depend on its own execution only), so each task explores a
  subtree for up to ``opts.chunk`` schedules and hands back the subtrees it did not reach, which
  go to whichever worker is free (work stealing through the client). The client merges the
  executions with ``vthreads.SplitDfs``: it walks the one-process search over them, so the
  executions count, the classes, the exhaustiveness claim and the failing execution (and hence
  the failure file) are exactly those of ``--jobs 1``. Subtrees the one-process search would
  not have reached (past a stop-on-first failure or ``--schedules``) are wasted work, never
  part of the answer; they are cancelled once the merge is finished.
* ``dpor`` is split by root states (:class:`DporSplit`). Its tree is not fixed (a race found
  in one subtree adds a branch at an ancestor; a finished sibling puts threads to sleep in the
  next), but the executions below one choice are fixed by the stack above it — every node's
  position, enabled tids, preemptions, sleep set and choice, and the last node's done set — and
  they only *write* to the ancestors' backtrack sets, never read them. So the client keeps the
  one sequential search (``vthreads.SplitDpor``); a task runs up to ``opts.chunk`` executions
  of one subtree given by its root state (``vthreads.explore_dpor_subtree``) and hands back its
  executions, the writes it would have made to the root's nodes (in order) and, when the budget
  ran out, the stack below the root. The client replays a result only when its root state is
  the one the search has reached, so the executions count, classes, claim and failing execution
  (hence the failure file) are exactly ``--jobs 1``'s. Workers are kept busy with speculation:
  the subtree the merge waits for first, then continuations, then the untried alternatives of
  the client's stack (deepest first) with the done set they are predicted to have. A result
  for a root state the search never reaches (a new race put another sibling first, or the
  search ended first) is wasted work; at most one task per worker slot is in flight so the
  needed subtree never queues behind speculation.
* ``--jobs N`` for dfs and dpor runs the same splits on a local process pool
  (:func:`explore_split`, :class:`PoolClient`), without the cluster extra.

Workers must import the user's driver and scenario modules: install user packages on every
worker; single-file modules named in ``ship`` are sent with ``client.upload_file``
(docs/cluster.md).

A run nothing stops (code under test that swallows every stop) ends the command, on any
cluster: a ``local:N`` worker gives up into the command's box and ends, a remote one tells the
command on its drive's topic and goes on spinning (:func:`cluster_task`,
``wddmemu/_giving_up.py``).
"""

from __future__ import annotations

import heapq
import importlib.util
import itertools
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from vthreads import (
    DporSubtree,
    DporSubtreeRun,
    RunResult,
    SplitDfs,
    SplitDpor,
    Subtree,
    SubtreeRun,
    explore_dpor_subtree,
    explore_subtree,
)
from vthreads import Strategy as _Strategy

from . import _loading
from ._dask_client import remote_client
from ._explore import (
    ExploreOptions,
    ExploreResult,
    Finding,
    Found,
    _run_chunk,
    _search_finding,
    _with_faults,
    check_explore,
    explore,
    measure_faults,
    minimise,
    probe_steps,
    spec_from_dict,
    systematic_found,
    uses_pct,
)
from ._explore import _schedule_spec as schedule_spec
from ._files import printable, shown
from ._giving_up import (
    BOX_ENV,
    check_open_boxes,
    give_up_box,
    open_inbox,
    take_box_from_env,
    task_resort,
)
from ._pool import worker_pool
from ._runner import (
    RunSpec,
    SpecError,
    check_spec,
    current_timeout,
    run_scenario,
    run_timeout,
    timed_task,
)

LOCAL_PREFIX = "local:"
#: seconds to wait for a remote scheduler before saying it is unreachable
CONNECT_TIMEOUT_S = 5.0
INSTALL_HINT = "pip install 'wddmemu[cluster]'"


class ClusterError(SpecError):
    """The cluster cannot be used as asked (extra missing, scheduler unreachable, a worker that
    cannot import the user's code): the CLI prints the one line and exits 2."""


def _distributed() -> Any:
    # the cluster extra is optional: import it only when --cluster is used, and say how to get it
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"--cluster needs the cluster extra: {INSTALL_HINT}") from None
    return distributed


#: the schemes ``--cluster`` takes besides ``local:N`` (docs/cluster.md): dask's others need
#: what this tool does not set up (``ucx`` its own package and fabric, ``inproc`` a scheduler in
#: this very process, ``ws`` an extra), and failed deep inside dask (exit 3)
SCHEMES = ("tcp", "tls")


def parse_address(address: str) -> tuple[str, int | None]:
    """``("local", N)`` for ``local:N``, ``(address, None)`` for a scheduler URL
    ``tcp://host:port`` or ``tls://host:port``."""
    if address.startswith(LOCAL_PREFIX):
        n = address[len(LOCAL_PREFIX):]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise ClusterError(f"--cluster {address!r}: local:N takes 1 to 256 worker processes")
        return "local", int(n)
    scheme, sep, rest = address.partition("://")
    if sep and scheme and scheme not in SCHEMES:
        raise ClusterError(f"--cluster {printable(address)!r}: unsupported scheme "
                           f"{printable(scheme)!r}: give tcp://host:port, tls://host:port or "
                           "local:N")
    host, _, port = rest.rpartition(":")
    if not sep or not (host and port.isdigit() and 1 <= int(port) <= 65_535):
        raise ClusterError(f"--cluster {printable(address)!r}: give a scheduler address "
                           "tcp://host:port or local:N")
    return address, None


@contextmanager
def connect(address: str, *, ship: Sequence[str] = (),
            timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (``tcp://host:port``, ``tls://host:port`` or
    ``local:N``; a remote one started within ``timeout`` seconds, 5 by default), with the
    single-file modules in ``ship`` uploaded to every worker; closed (and a local cluster shut
    down) on exit. Raises :class:`ClusterError` with one line when it cannot."""
    where, n = parse_address(address)
    dist = _distributed()
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    if n is not None:
        # its workers give up into the box (wddmemu/_giving_up.py): dask says a worker died
        # under a task with KilledWorker, which _outcome makes a ClusterError
        with give_up_box(ClusterError) as box:
            with _workers_ignore_ctrl_c():
                # processes, one thread each (a schedule holds the GIL for its whole run), on
                # loopback; no dashboard, and the scheduler's bare health endpoint on any free
                # port, not :8787
                lc = dist.LocalCluster(n_workers=n, processes=True, threads_per_worker=1,
                                       host="127.0.0.1", dashboard_address=None,
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                       env={BOX_ENV: str(box)}, silence_logs=logging.CRITICAL)
            with lc, dist.Client(lc) as client:
                ship_modules(client, ship)
                yield client
        return
    with _remote(dist, where, timeout) as client:
        ship_modules(client, ship)
        yield client


@contextmanager
def _remote(dist: Any, where: str, timeout: float) -> Iterator[Any]:
    """:func:`remote_client` on ``where``, whatever goes wrong before it answers said in one
    line: an address dask cannot parse, TLS without its configuration, no answer within
    ``timeout`` (connect and handshake: a server that accepts and stays silent), a server that
    answers but is no dask scheduler (an HTTP server's reply read as a frame length: a
    MemoryError)."""
    try:
        dist.comm.get_address_host_port(where)
    except ValueError as e:
        raise ClusterError(f"--cluster {printable(where)!r}: {printable(str(e), 120)}: give a "
                           "scheduler address tcp://host:port or local:N") from None
    if where.startswith("tls://"):
        _check_tls(dist)
    with ExitStack() as stack:
        try:
            client = stack.enter_context(remote_client(dist, where, timeout))
        except (OSError, TimeoutError) as e:  # refused, no such host, no answer in time
            why = "no answer" if isinstance(e, TimeoutError) else _innermost(e)
            raise ClusterError(f"cannot reach the dask scheduler at {shown(where)} within "
                               f"{timeout:g} s ({why}): start one with 'dask scheduler', or "
                               "use --cluster local:N") from None
        except Exception as e:  # anything it answered that dask could not take
            raise ClusterError(f"{shown(where)} answered, but not as a dask scheduler "
                               f"({type(e).__name__}): check the address and port (a "
                               "scheduler listens on 8786 by default), or use --cluster "
                               "local:N") from None
        yield client


def _innermost(e: BaseException) -> str:
    """The name of the error at the bottom of ``e``'s chain: dask's "Timed out trying to
    connect" says little, its cause (``ConnectionRefusedError``, ``gaierror``) says why."""
    seen: set[int] = set()
    while id(e) not in seen:  # a chain may loop
        seen.add(id(e))
        below = e.__cause__ or e.__context__
        if below is None:
            break
        e = below
    return type(e).__name__


def _check_tls(dist: Any) -> None:
    """Refuse ``tls://`` without the dask TLS configuration a client needs (its SSL context
    comes from ``distributed.comm.tls.*``): without it dask failed with a TypeError deep in its
    connector. A ``distributed.client.security-loader`` hands dask the credentials itself."""
    import dask

    if dask.config.get("distributed.client.security-loader", None):
        return
    try:
        ctx = dist.Security().get_connection_args("client").get("ssl_context")
    except (OSError, ValueError) as e:  # a certificate file missing or unreadable
        raise ClusterError(f"--cluster tls://…: the dask TLS configuration cannot be used: "
                           f"{printable(str(e), 120)}") from None
    if ctx is None:
        raise ClusterError("--cluster tls://…: tls needs the dask TLS configuration "
                           "(distributed.comm.tls.ca-file, distributed.comm.tls.client.cert "
                           "and .key): set it, or use tcp://host:port")


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """While ``local:N`` starts its worker processes, SIGINT is ignored here, and the workers
    inherit that (an ignored signal stays ignored across exec, and Python keeps it so). A
    Ctrl-C in the terminal goes to the whole process group: the workers used to take it, each
    printing a page of CancelledError tracebacks, while this process already stops them
    itself on Ctrl-C (exit 130, h6). Off the main thread no handler can be changed: a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def ship_modules(client: Any, modules: Sequence[str]) -> list[str]:
    """Upload the source file of every single-file module in ``modules`` to all workers
    (``client.upload_file``); packages are not shipped (install them on the workers). Returns
    the files sent."""
    sent = []
    for name in modules:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise ClusterError(f"cannot find module {name!r} to ship to the workers")
        if spec.submodule_search_locations is None and (spec.origin or "").endswith(".py"):
            # to the workers only, not with client.upload_file: that also imports the file
            # into the scheduler, which never needs it, and which for local:N lives in this
            # process, where the module is imported already (a reload would run it twice)
            plugin = _distributed().diagnostics.plugin.UploadFile(spec.origin)
            client.register_plugin(plugin, name=f"wddmemu-ship-{name}")
            sent.append(spec.origin)
    return sent


def plan(base: RunSpec, opts: ExploreOptions, label: str = "") -> Search | DfsSplit | DporSplit:
    """The cluster search for ``opts.strategy``: seed chunks for random and pct, subtrees for
    dfs and dpor."""
    if opts.strategy in ("dfs", "dpor"):  # one set of faults for the whole search, as in one
        check_spec(base, many=True)       # process
        opts = measure_faults(base, opts)
        split = DfsSplit if opts.strategy == "dfs" else DporSplit
        return split(_with_faults(base, opts, opts.seed), opts, label)
    return Search.of(base, opts, label)


# ---- one exploration's chunks, decided by schedule index ------------------------------------


@dataclass
class Search:
    """The chunks of one exploration (``random`` or ``pct``) and what has come back.

    Pure bookkeeping, no Dask: :meth:`take` hands out the next chunk in index order,
    :meth:`accept` files a chunk's results, :meth:`decided` says which failures are final.
    With stop-on-first, ``limit`` is the lowest failing index seen so far: nothing above it is
    submitted any more, and it is final once every chunk that starts below it has reported."""

    base: RunSpec
    opts: ExploreOptions
    k: int
    label: str = ""
    chunks: list[range] = field(default_factory=list)
    next: int = 0
    done: set[int] = field(default_factory=set)
    runs: int = 0
    raw: dict[int, Found] = field(default_factory=dict)
    final: dict[int, Found] = field(default_factory=dict)
    emitted: set[int] = field(default_factory=set)
    limit: int | None = None
    #: the task that runs one chunk on a worker
    task = staticmethod(_run_chunk)

    def __post_init__(self) -> None:
        n, c = self.opts.schedules, self.opts.chunk
        self.chunks = [range(j, min(j + c, n)) for j in range(0, n, c)]

    @classmethod
    def of(cls, base: RunSpec, opts: ExploreOptions, label: str = "") -> Search:
        check_spec(base, many=True)
        k = probe_steps(base) if uses_pct(opts.strategy) else base.pct_steps
        return cls(base, measure_faults(base, opts), k, label)

    def wanted(self, cno: int) -> bool:
        return self.limit is None or self.chunks[cno].start <= self.limit

    def pending(self) -> bool:
        return self.next < len(self.chunks) and self.wanted(self.next)

    def take(self) -> tuple[int, list[dict[str, Any]]]:
        cno = self.next
        self.next += 1
        return cno, [schedule_spec(self.base, self.opts, self.k, i).to_dict()
                     for i in self.chunks[cno]]

    def accept(self, cno: int, out: Sequence[tuple[Any, Sequence[int]]]) -> None:
        if cno in self.done:  # a resubmitted duplicate: same pure result, already filed
            return
        self.done.add(cno)
        self.runs += len(out)
        for i, (f, decisions) in zip(self.chunks[cno], out, strict=True):
            if f is None:
                continue
            orig = schedule_spec(self.base, self.opts, self.k, i)
            self.raw[i] = Found(i, orig.with_decisions(tuple(decisions)), Finding(*f), orig)
            if self.opts.stop_on_first and (self.limit is None or i < self.limit):
                self.limit = i

    def decided(self) -> list[Found]:
        """Raw failures that are final and not yet handed out (in index order)."""
        if not self.opts.stop_on_first:
            new = [self.raw[i] for i in sorted(self.raw) if i not in self.emitted]
        elif self.limit is not None and self.limit not in self.emitted and all(
                cno in self.done for cno, r in enumerate(self.chunks) if r.start <= self.limit):
            new = [self.raw[self.limit]]
        else:
            new = []
        self.emitted.update(fd.index for fd in new)
        return new

    def result(self) -> ExploreResult:
        """The answer ``--jobs 1`` gives: with stop-on-first the winner and ``index + 1``
        runs, else every failure in index order and every schedule run."""
        if self.opts.stop_on_first and self.limit is not None:
            return ExploreResult(self.limit + 1, (self.final[self.limit],), self.k)
        return ExploreResult(self.runs, tuple(self.final[i] for i in sorted(self.final)),
                             self.k)


# ---- dfs and dpor: subtrees, merged into the one-process search -------------------------------


def _scenario_runner(spec_dict: dict[str, Any]) -> Callable[[_Strategy], RunResult]:
    base = spec_from_dict(spec_dict)

    def run_one(strategy: _Strategy) -> RunResult:
        return run_scenario(base, strategy=strategy, stop_on_violation=True).run

    return run_one


def _failing(r: RunResult) -> bool:
    return _search_finding(r) is not None


def _run_subtree(payload: tuple[dict[str, Any], tuple[Subtree, ...], int, int]) -> SubtreeRun:
    """Worker entry: up to ``budget`` schedules of some dfs subtrees of the scenario."""
    spec_dict, subtrees, bound, budget = payload
    return explore_subtree(_scenario_runner(spec_dict), subtrees, preemption_bound=bound,
                           budget=budget, failing=_failing)


def _run_dpor_subtree(payload: tuple[dict[str, Any], DporSubtree, int, int, bool]
                      ) -> DporSubtreeRun:
    """Worker entry: up to ``budget`` executions of one dpor subtree of the scenario."""
    spec_dict, subtree, bound, budget, stop = payload
    return explore_dpor_subtree(_scenario_runner(spec_dict), subtree, preemption_bound=bound,
                                budget=budget, stop_on_failure=stop, failing=_failing)


@dataclass
class _Split:
    """What the dfs and dpor splits share: the merge is the one-process search, so a failure
    it meets is final at once, and the answer is the merged search's."""

    base: RunSpec
    opts: ExploreOptions
    label: str = ""
    runs: int = 0
    #: executions the workers ran, merged or not (``ran - runs`` is speculative work)
    ran: int = 0
    raw: dict[int, Found] = field(default_factory=dict)
    final: dict[int, Found] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._serial = 0
        self._done: set[int] = set()
        self._undecided: list[Found] = []

    def _limits(self) -> dict[str, Any]:
        return {"max_executions": self.opts.schedules,
                "preemption_bound": self.opts.preemption_bound,
                "stop_on_failure": self.opts.stop_on_first}

    def wanted(self, cno: int) -> bool:
        return not self.merged.finished

    def _first_time(self, cno: int) -> bool:
        # a resubmitted duplicate brings the same pure result, already filed
        if cno in self._done:
            return False
        self._done.add(cno)
        return True

    def _file(self, met: Sequence[tuple[int, RunResult]]) -> None:
        for execution, r in met:
            fd = systematic_found(self.base, self.opts, execution - 1, r)
            self.raw[fd.index] = fd
            self._undecided.append(fd)
        self.runs = self.merged.executions

    def decided(self) -> list[Found]:
        """The merge is the one-process search, so a failure it meets is final at once."""
        new, self._undecided = self._undecided, []
        return new

    def result(self) -> ExploreResult:
        if not self.merged.finished:
            raise RuntimeError(f"the {self.opts.strategy} subtrees did not cover the search")
        res = self.merged.result()
        return ExploreResult.of_search(res.executions,
                                       [self.final[i] for i in sorted(self.final)],
                                       self.base.pct_steps, res)


@dataclass
class DfsSplit(_Split):
    """One dfs exploration as subtree tasks (see the module docstring), with the interface of
    :class:`Search` that :func:`drive` uses. A task gets up to ``opts.chunk`` untried subtrees
    and a budget of ``opts.chunk`` schedules. They are handed out in about the order the
    one-process search needs them: first the subtree holding the schedule the merge waits
    for, then fewest preemptions first and, within a level, in the order they came back
    (the one-process search's level-by-level order)."""

    task = staticmethod(_run_subtree)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.merged = SplitDfs(**self._limits())
        self._todo: list[tuple[int, int, Subtree]] = [(0, 0, Subtree((), 0))]

    def pending(self) -> bool:
        return bool(self._todo) and not self.merged.finished

    def _pop_needed(self) -> list[Subtree]:
        need = self.merged.needed or ()
        for j, (_c, _n, sub) in enumerate(self._todo):
            if need[:len(sub.prefix)] == sub.prefix:
                self._todo[j] = self._todo[-1]
                self._todo.pop()
                heapq.heapify(self._todo)
                return [sub]
        return []

    def take(self) -> tuple[int, tuple[dict[str, Any], tuple[Subtree, ...], int, int]]:
        batch = self._pop_needed()
        while self._todo and len(batch) < self.opts.chunk:
            batch.append(heapq.heappop(self._todo)[2])
        self._serial += 1
        return self._serial, (self.base.to_dict(), tuple(batch), self.opts.preemption_bound,
                              self.opts.chunk)

    def accept(self, cno: int, part: SubtreeRun) -> None:
        if not self._first_time(cno):
            return
        self.ran += len(part.executed)
        for sub in part.untried:
            self._serial += 1
            heapq.heappush(self._todo, (sub.cost, self._serial, sub))
        self.merged.add(part)
        self._file(self.merged.merge())


@dataclass
class DporSplit(_Split):
    """One dpor exploration as subtree tasks (see the module docstring): each task runs up to
    ``opts.chunk`` executions of one subtree, given by its root state. The client keeps the
    one-process search (``vthreads.SplitDpor``) and asks for what it will need, in that
    order: the subtree the merge waits for, the continuations of partial results, then the
    untried alternatives of its stack with the root state they are predicted to have. At most
    one task per worker slot is in flight, so the subtree the merge waits for never queues
    behind speculation. A speculation the search does not take is wasted work, never part of
    the answer."""

    task = staticmethod(_run_dpor_subtree)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.merged = SplitDpor(**self._limits())
        self._flying: dict[int, DporSubtree] = {}
        #: tasks in flight at most (drive sets it to the worker slots): a speculative task
        #: queued on a worker would hold up the subtree the merge waits for
        self.slots = 2

    def _next(self) -> DporSubtree | None:
        flying = set(self._flying.values())
        return next((k for k in self.merged.upcoming() if k not in flying), None)

    def pending(self) -> bool:
        return (not self.merged.finished and len(self._flying) < self.slots
                and self._next() is not None)

    def take(self) -> tuple[int, tuple[dict[str, Any], DporSubtree, int, int, bool]]:
        key = self._next()
        assert key is not None
        self._serial += 1
        self._flying[self._serial] = key
        return self._serial, (self.base.to_dict(), key, self.opts.preemption_bound,
                              self.opts.chunk, self.opts.stop_on_first)

    def accept(self, cno: int, part: DporSubtreeRun) -> None:
        if not self._first_time(cno):
            return
        self._flying.pop(cno, None)
        self.ran += len(part.executed)
        self.merged.add(part)
        self._file(self.merged.merge())


# ---- driving searches on a client ------------------------------------------------------------


def _worker_slots(client: Any) -> int:
    return max(1, sum(client.nthreads().values()))


def _outcome(fut: Any, what: str) -> Any:
    try:
        return fut.result()
    except SpecError as e:  # e.g. a worker cannot import the user's driver module
        raise ClusterError(f"a worker could not run {what}: {e} (install your package on every "
                           "worker or --load a single-file module; see docs/cluster.md)") from None
    except Exception as e:
        if type(e).__name__ == "KilledWorker":
            raise ClusterError(f"workers kept dying while running {what}: {e}") from None
        raise


#: how often the command looks for a worker that gave up while it waits (seconds)
GIVE_UP_POLL_S = 0.5


def _first_done(wait: Callable[..., Any], futs: list[Any]) -> set[Any]:
    """The futures of ``futs`` done, once one is; between looks, a worker that gave up ends
    the wait (``check_open_boxes`` raises)."""
    while True:
        try:
            done = wait(futs, timeout=GIVE_UP_POLL_S, return_when="FIRST_COMPLETED").done
        except TimeoutError:  # dask's wait says so by raising; concurrent.futures' returns
            done = set()
        if done:
            return done
        check_open_boxes()


#: the topics a remote worker's run nothing stops is told on start with this; each drive has
#: its own (its client's id and a count), so no other client's or drive's line is taken
GAVE_UP_TOPIC = "wddmemu-gave-up"
_drives = itertools.count()


def cluster_task(seconds: float, topic: str | None, fn: Callable[..., Any], *args: Any) -> Any:
    """The entry of every task :func:`drive` submits: :func:`timed_task`, and a run nothing
    stops (wddmemu/_giving_up.py) given up on. A ``local:N`` worker is ours: it gives up into
    the command's box and ends. A remote cluster's (``topic`` set) is the owner's, perhaps
    running other clients' tasks on other threads: this task's runs tell the command on
    ``topic`` instead, and the worker goes on (a ``--jobs`` pool's worker: ``topic`` None; the
    pool gave it its box)."""
    if topic is None or take_box_from_env():
        return timed_task(seconds, fn, *args)
    worker = _distributed().get_worker()  # in the task's thread: the watchdog's has none
    with task_resort(partial(_tell, worker, topic)):
        return timed_task(seconds, fn, *args)


def _tell(worker: Any, topic: str, line: str) -> None:
    # from the run's watchdog thread, while the task's thread spins in the code under test:
    # log_event hands the message to the worker's event loop, which sends it on
    worker.log_event(topic, f"{line} (on worker {worker.address}, which still runs it)")


@contextmanager
def _told(client: Any) -> Iterator[str | None]:
    """The topic the tasks of one drive on ``client`` tell a run nothing stops on, and an
    inbox taking what comes on it, for the block (None for a ``--jobs`` pool: its box)."""
    if isinstance(client, PoolClient):
        yield None
        return
    topic = f"{GAVE_UP_TOPIC}-{client.id}-{next(_drives)}"
    with open_inbox() as inbox:
        client.subscribe_topic(topic, lambda event: inbox.put(event[1]))  # (time, message)
        try:
            yield topic
        finally:
            client.unsubscribe_topic(topic)


def drive(client: Any, searches: Sequence[Search | _Split], *,
          progress: Callable[[Any], None] | None = None,
          on_failure: Callable[[Any, Found], None] | None = None, window: int | None = None,
          on_found: Callable[[Any, Found], None] | None = None) -> None:
    """Run ``searches`` to the end on ``client``: keep about two chunks per worker thread in
    flight (in search order, then index order), file results as they arrive, cancel chunks a
    stop-on-first winner makes useless, minimise decided failures as tasks. On the client each
    failure goes to ``on_found`` once decided (after ``progress`` counted it; before it is
    minimised: what a Ctrl-C keeps), and to ``on_failure`` when final. A run nothing stops
    on a worker ends the drive in :class:`~wddmemu.RunNotStopped` (or the CLI's last resort)."""
    with _told(client) as topic:
        _drive(client, topic, searches, progress=progress, on_failure=on_failure,
               window=window, on_found=on_found)


def _drive(client: Any, topic: str | None, searches: Sequence[Search | _Split], *,
           progress: Callable[[Any], None] | None, on_failure: Callable[[Any, Found], None] | None,
           window: int | None, on_found: Callable[[Any, Found], None] | None) -> None:
    wait = client.wait if isinstance(client, PoolClient) else _distributed().wait
    window = window or 2 * _worker_slots(client)
    for s in (s for s in searches if isinstance(s, DporSplit)):
        s.slots = _worker_slots(client)
    inflight: dict[Any, tuple[str, Search | _Split, int]] = {}

    def fill() -> None:
        chunks = sum(1 for kind, _, _ in inflight.values() if kind == "chunk")
        for s in searches:
            while chunks < window and s.pending():
                cno, payload = s.take()
                inflight[client.submit(cluster_task, current_timeout(), topic, s.task,
                                       payload, pure=False)] = ("chunk", s, cno)
                chunks += 1

    def settle(s: Search | _Split) -> None:
        for fd in s.decided():
            if on_found:
                on_found(s, fd)
            if s.opts.minimise:
                fut = client.submit(cluster_task, current_timeout(), topic, minimise, fd,
                                    s.opts.max_replays, pure=False)
                inflight[fut] = ("minimise", s, fd.index)
            else:
                finish(s, fd)
        for fut, (kind, owner, cno) in list(inflight.items()):
            if owner is s and kind == "chunk" and not s.wanted(cno):
                fut.cancel()
                del inflight[fut]

    def finish(s: Search | _Split, fd: Found) -> None:
        s.final[fd.index] = fd
        if on_failure:
            on_failure(s, fd)

    fill()
    while inflight:
        done = _first_done(wait, list(inflight))
        for fut in sorted(done & inflight.keys(), key=lambda f: inflight[f][2]):
            if fut not in inflight:  # cancelled by a winner settled earlier in this batch
                continue
            kind, s, n = inflight.pop(fut)
            if kind == "chunk":
                s.accept(n, _outcome(fut, f"schedules of {s.label or s.base.scenario}"))
                if progress:
                    progress(s)
            else:
                finish(s, _outcome(fut, f"the minimisation of schedule {n}"))
            settle(s)
        fill()


def explore_on_cluster(client: Any, base: RunSpec, opts: ExploreOptions, *,
                       progress: Callable[[int, int], None] | None = None,
                       on_failure: Callable[[Found], None] | None = None,
                       on_found: Callable[[Found], None] | None = None) -> ExploreResult:
    """:func:`explore` on a Dask client: the same :class:`ExploreResult` as ``jobs=1`` (see the
    module docstring). ``progress(runs, failures)`` counts schedules finished on any worker;
    ``on_found`` gets each failure as soon as it is decided, before it is minimised (as
    :func:`explore`'s does), ``on_failure`` each final (minimised) one, on the client."""
    check_explore("explore_on_cluster", base, opts, progress=progress, on_failure=on_failure,
                  on_found=on_found)
    with run_timeout(opts.timeout):  # the probes' runs here, and every task's (timed_task)
        search = plan(base, opts)
        drive(client, [search],
              progress=(lambda s: progress(s.runs, len(s.raw))) if progress else None,
              on_failure=(lambda s, fd: on_failure(fd)) if on_failure else None,
              on_found=(lambda s, fd: on_found(fd)) if on_found else None)
    return search.result()


# ---- dfs and dpor on local worker processes (--jobs N) ---------------------------------------


def _loaded_then(modules: tuple[str, ...], fn: Callable[..., Any], *args: Any) -> Any:
    # a worker that was not forked has none of the parent's --load modules
    for m in modules:
        _loading.load_module(m)
    return fn(*args)


class PoolClient:
    """What :func:`drive` needs of a Dask client, over a local ``ProcessPoolExecutor``: the
    dfs and dpor splits run on ``--jobs N`` processes without the cluster extra. Each task
    first loads the parent's ``--load`` modules."""

    wait = staticmethod(futures.wait)

    def __init__(self, pool: futures.ProcessPoolExecutor, jobs: int) -> None:
        self.pool, self.jobs = pool, jobs
        self.modules = _loading.load_arguments()

    def submit(self, fn: Callable[..., Any], *args: Any, pure: bool = False
               ) -> futures.Future[Any]:
        return self.pool.submit(_loaded_then, self.modules, fn, *args)

    def nthreads(self) -> dict[int, int]:
        return dict.fromkeys(range(self.jobs), 1)


#: the strategies :func:`explore_split` splits into subtrees (the others split into chunks)
SPLIT_STRATEGIES = ("dfs", "dpor")


def explore_split(base: RunSpec, opts: ExploreOptions, *,
                  progress: Callable[[int, int], None] | None = None,
                  on_found: Callable[[Found], None] | None = None) -> ExploreResult:
    """``dfs`` or ``dpor`` with ``opts.jobs`` worker processes on this machine: the same split
    as on a cluster, so the same :class:`ExploreResult` as ``jobs=1`` (runs, claim, failures,
    failure files). ``on_found`` gets each failure as soon as it is decided, before it is
    minimised, as :func:`explore`'s does."""
    if opts.strategy not in SPLIT_STRATEGIES:
        raise ValueError("explore_split splits dfs and dpor; explore runs the others")
    with worker_pool(opts.jobs) as pool:  # Ctrl-C: the queued tasks dropped, workers ended
        return explore_on_cluster(PoolClient(pool, opts.jobs), base, opts, progress=progress,
                                  on_found=on_found)




def explore_local(base: RunSpec, opts: ExploreOptions, *,
                  progress: Callable[[int, int], None] | None = None,
                  on_found: Callable[[Found], None] | None = None) -> ExploreResult:
    """:func:`explore` with ``opts.jobs`` processes on this machine for every strategy: dfs and
    dpor through :func:`explore_split`, the others through explore's own chunks. The answer is
    ``jobs=1``'s either way; the command, its reporting path and campaigns all call this, so
    ``--jobs`` means the same wherever it is given."""
    if opts.jobs > 1 and opts.strategy in SPLIT_STRATEGIES:  # each puts opts.timeout in force
        return explore_split(base, opts, progress=progress, on_found=on_found)
    return explore(base, opts, progress=progress, on_found=on_found)


#: :func:`connect` under its public name (``wddmemu.connect_cluster``)
connect_cluster = connect
