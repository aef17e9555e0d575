"""The cluster's bookkeeping, without Dask: chunks go out in index order, results arrive in any
order, and the answer is decided by schedule index (issue 15), so it equals ``--jobs 1``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wddmemu._cluster import ClusterError, Search, parse_address, plan
from wddmemu._explore import ExploreOptions, _run_chunk, explore
from wddmemu._runner import RunSpec

BASE = RunSpec("dynamic-vb-ring", driver="noexistingref-with-queued-refs")
OPTS = ExploreOptions(schedules=24, strategy="pct", chunk=4, minimise=False)


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


def test_dpor_is_refused_in_one_line() -> None:
    with pytest.raises(ClusterError, match="cannot split dpor"):
        plan(BASE, replace(OPTS, strategy="dpor"))


@pytest.mark.parametrize("addr, msg", [("local:0", "1 to 256"), ("local:x", "1 to 256"),
                                       ("myhost:8786", "tcp://host:port")])
def test_bad_addresses(addr: str, msg: str) -> None:
    with pytest.raises(ClusterError, match=msg):
        parse_address(addr)


def test_good_addresses() -> None:
    assert parse_address("local:2") == ("local", 2)
    assert parse_address("tcp://127.0.0.1:8786") == ("tcp://127.0.0.1:8786", None)
