"""The cluster's bookkeeping, without Dask: chunks go out in index order, results arrive in any
order, and the answer is decided by schedule index (issue 15), so it equals ``--jobs 1``."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from wddmemu._cluster import ClusterError, DporSplit, Search, explore_split, parse_address, plan
from wddmemu._explore import ExploreOptions, ExploreResult, _run_chunk, explore
from wddmemu._runner import RunSpec

BASE = RunSpec("dynamic-vb-ring", driver="noexistingref-with-queued-refs")
OPTS = ExploreOptions(schedules=24, strategy="pct", chunk=4, minimise=False)
DEADLOCK = RunSpec("reentrant-lockasync", driver="lock-order-deadlock", ddi_version=0xB)


def _run_all(search: Search, order: list[int]) -> dict[int, list]:
    """Take every chunk, then run them (the real chunk function) and return results by chunk."""
    payloads = {}
    while search.pending():
        cno, payload = search.take()
        payloads[cno] = payload
    return {cno: _run_chunk(payloads[cno]) for cno in order if cno in payloads}


def test_keep_going_in_any_arrival_order_equals_one_job() -> None:
    opts = replace(OPTS, stop_on_first=False)
    one = explore(BASE, opts)
    s = Search.of(BASE, opts)
    results = _run_all(s, list(range(6)))
    for cno in (5, 2, 0, 4, 1, 3):  # arrival order is not index order
        s.accept(cno, results[cno])
        s.accept(cno, results[cno])  # a resubmitted chunk's duplicate result changes nothing
    for fd in s.decided():
        s.final[fd.index] = fd
    got = s.result()
    assert got.runs == one.runs == 24
    assert [(f.index, f.finding, f.spec) for f in got.failures] == \
        [(f.index, f.finding, f.spec) for f in one.failures]
    assert len(one.failures) >= 3


def test_stop_on_first_waits_for_lower_chunks_and_cancels_higher_ones() -> None:
    one = explore(BASE, OPTS)
    win = one.failures[0].index
    s = Search.of(BASE, OPTS)
    results = {cno: _run_chunk(s.take()[1]) for cno in range(6)}
    # a failure in a late chunk arrives first: it bounds the search but is not final
    late = min(c for c, out in results.items() if any(f for f, _ in out) and c > win // 4)
    assert late + 1 < len(s.chunks)
    s.accept(late, results[late])
    assert s.limit is not None and s.limit > win and s.decided() == []
    assert not s.wanted(late + 1)  # chunks above the bound are cancelled / never submitted
    for cno in range(late):
        s.accept(cno, results[cno])
    (fd,) = s.decided()
    s.final[fd.index] = fd
    assert fd.index == win and s.decided() == []
    got = s.result()
    assert got.runs == one.runs == win + 1
    assert got.failures[0].spec == one.failures[0].spec


def test_chunks_cover_every_schedule_once() -> None:
    s = Search.of(BASE, replace(OPTS, schedules=10, chunk=3))
    assert [list(r) for r in s.chunks] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    seeds = [d["seed"] for r in range(4) for d in s.take()[1]]
    assert seeds == list(range(10)) and not s.pending()


def _drive_in_process(split: DporSplit, seed: int) -> ExploreResult:
    """What ``drive`` does, without Dask: three tasks in flight, results back in a random
    order, each delivered twice (a resubmitted task)."""
    rng, flying = random.Random(seed), {}
    while not split.merged.finished:
        while split.pending() and len(flying) < 3:
            cno, payload = split.take()
            flying[cno] = payload
        cno = rng.choice(sorted(flying))
        part = split.task(flying.pop(cno))
        split.accept(cno, part)
        split.accept(cno, part)
        for fd in split.decided():
            split.final[fd.index] = fd
    return split.result()


@pytest.mark.parametrize("spec, opts", [
    (RunSpec("gl-icd-lock-entire"), ExploreOptions(strategy="dpor", preemption_bound=4, chunk=1,
                                                   minimise=False)),
    pytest.param(DEADLOCK, ExploreOptions(schedules=200, strategy="dpor", preemption_bound=1,
                                          chunk=4, minimise=False), marks=pytest.mark.slow),
])
def test_dpor_split_into_subtrees_equals_one_process(spec, opts) -> None:
    one = explore(spec, opts)
    for seed in (0, 1):
        split = plan(spec, opts)
        assert isinstance(split, DporSplit)
        got = _drive_in_process(split, seed)
        assert (got.runs, got.exhausted, got.claim) == (one.runs, one.exhausted, one.claim)
        assert [(f.index, f.finding, f.spec) for f in got.failures] == \
            [(f.index, f.finding, f.spec) for f in one.failures]
        assert split.ran >= split.runs and split.merged.used <= split.merged.filed
    assert one.claim is not None and (one.exhausted or one.failures)


@pytest.mark.parametrize("addr, msg", [("local:0", "1 to 256"), ("local:x", "1 to 256"),
                                       ("myhost:8786", "tcp://host:port")])
def test_bad_addresses(addr: str, msg: str) -> None:
    with pytest.raises(ClusterError, match=msg):
        parse_address(addr)


def test_good_addresses() -> None:
    assert parse_address("local:2") == ("local", 2)
    assert parse_address("tcp://127.0.0.1:8786") == ("tcp://127.0.0.1:8786", None)


def test_jobs_split_dpor_over_local_processes_equals_one_process() -> None:
    icd = RunSpec("gl-icd-lock-entire")
    # no bound: with one, the failing runs' end (it cuts the other threads off: every order
    # of their steps before it is a class of its own) takes the buggy search past it
    opts = ExploreOptions(strategy="dpor", chunk=1, jobs=2, stop_on_first=False, minimise=False,
                          preemption_bound=None)
    for spec in (icd, replace(icd, bugs=("donotwait-waits",))):
        got, one = explore_split(spec, opts), explore(spec, replace(opts, jobs=1))
        assert (got.runs, got.exhausted, got.claim) == (one.runs, one.exhausted, one.claim)
        assert [(f.index, f.finding, f.spec) for f in got.failures] == \
            [(f.index, f.finding, f.spec) for f in one.failures]
    assert one.failures and got.exhausted
    with pytest.raises(ValueError, match="splits dfs and dpor"):
        explore_split(icd, replace(opts, strategy="pct"))
