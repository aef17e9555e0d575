"""Issue 14 for the Python API: ``ExploreOptions`` (and ``RunSpec``, below) refuses what
explore cannot run with one :class:`wddmemu.SpecError` line, as the CLI's options do, instead of
a TypeError, ValueError or OverflowError from inside a run or the process pool (found by calling
``explore`` with random options: ``jobs=2**64`` reached ``multiprocessing``'s semaphore,
``chunk=0`` ``range``)."""

from __future__ import annotations

import pytest

from wddmemu import ExploreOptions, RunSpec, SpecError, check_spec, run_scenario


@pytest.mark.parametrize("kw, says", [
    ({"jobs": 2**64}, "jobs takes at most 1024 worker processes"),
    ({"chunk": 0}, "chunk must be >= 1, max_replays and seed >= 0"),
    ({"max_replays": -1}, "chunk must be >= 1, max_replays and seed >= 0"),
    ({"seed": -1}, "chunk must be >= 1, max_replays and seed >= 0"),
    ({"schedules": "10"}, "schedules must be an int, not str"),
    ({"depth": 2.0}, "depth must be an int, not float"),
    ({"jobs": True}, "jobs must be an int, not bool"),
    ({"chunk": None}, "chunk must be an int, not NoneType"),
    ({"strategy": ["pct"]}, "unknown exploration strategy ['pct']"),
    ({"minimise_seconds": -1}, "minimise_seconds must be a number >= 0, or None"),
    ({"minimise_seconds": float("nan")}, "minimise_seconds must be a number >= 0, or None"),
    ({"minimise_seconds": "60"}, "minimise_seconds must be a number >= 0, or None"),
    ({"schedules": 0}, "schedules, jobs and depth must be >= 1"),
])
def test_bad_explore_options_are_one_spec_error(kw: dict, says: str) -> None:
    with pytest.raises(SpecError) as e:
        ExploreOptions(**kw)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_good_explore_options_pass() -> None:
    opts = ExploreOptions(schedules=3, jobs=1024, chunk=1, max_replays=0, minimise_seconds=0)
    assert (opts.jobs, opts.chunk, opts.minimise_seconds) == (1024, 1, 0)
    assert ExploreOptions(minimise_seconds=None).minimise_seconds is None


@pytest.mark.parametrize("kw, says", [
    ({"strategy": []}, "the strategy is a name, not list"),
    ({"strategy": {}}, "the strategy is a name, not dict"),
    ({"scenario": ["dynamic-vb-ring"]}, "the scenario is a name, not list"),
    ({"backend": 1}, "the backend is a name, not int"),
    ({"bugs": 1}, "bugs must be a list of bug names"),
    ({"bugs": None}, "bugs must be a list of bug names"),
    ({"decisions": 2}, "a decision list holds thread indices"),
    ({"decisions": "01"}, "a decision list holds thread indices"),
    ({"decisions": {0: 1}}, "a decision list holds thread indices"),
])
def test_a_run_spec_of_the_wrong_kinds_is_one_spec_error(kw: dict, says: str) -> None:
    """The same for ``RunSpec`` through ``check_spec`` (and so ``run_scenario`` and
    ``explore``): before, a list as the strategy met the registry's ``in`` (TypeError:
    unhashable type) and an int as ``bugs`` or ``decisions`` was iterated."""
    spec = RunSpec(**{"scenario": "discard-every-frame", **kw})
    with pytest.raises(SpecError) as e:
        check_spec(spec)
    assert says in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SpecError):
        run_scenario(spec)
