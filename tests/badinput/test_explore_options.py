"""Issue 14 for the Python API: ``ExploreOptions`` (and ``RunSpec``, below) refuses what
explore cannot run with one :class:`wddmemu.SpecError` line, as the CLI's options do, instead of
a TypeError, ValueError or OverflowError from inside a run or the process pool (found by calling
``explore`` with random options: ``jobs=2**64`` reached ``multiprocessing``'s semaphore,
``chunk=0`` ``range``)."""

from __future__ import annotations

import pytest

from wddmemu import ExploreOptions, RunSpec, SpecError, check_program, check_spec, run_scenario


@pytest.mark.parametrize("kw, says", [
    ({"jobs": 2**64}, "jobs takes 1..1,024, not 18,446,744,073,709,551,616"),
    ({"chunk": 0}, "chunk takes 1..10,000,000, not 0"),
    ({"max_replays": -1}, "max_replays takes 0..9,223,372,036,854,775,807, not -1"),
    ({"seed": -1}, "seed takes 0..9,223,372,036,854,775,807, not -1"),
    # h10: each field by name, the CLI's ranges, and the seeds the schedules will use
    ({"seed": 2**70}, "seed takes 0..9,223,372,036,854,775,807, not 1,180,591,620,717,411,303,424"),
    ({"seed": 2**63 - 1, "schedules": 3}, "seed 9,223,372,036,854,775,807 + 3 schedules passes "
                                           "2**63-1"),
    ({"depth": 5000}, "depth takes 1..1,000, not 5,000"),
    ({"preemption_bound": 10**9}, "preemption_bound takes 0..1,000, not 1,000,000,000"),
    ({"stop_on_first": "no"}, "stop_on_first must be True or False, not str"),
    ({"minimise": None}, "minimise must be True or False, not NoneType"),
    ({"faults": "yes"}, "faults must be True or False, not str"),
    ({"fault_space": (1,)}, "fault_space is None (explore measures it) or (steps, thunk calls)"),
    ({"fault_space": (0, 0)}, "fault_space is None"),
    ({"fault_space": "ab"}, "fault_space is None"),
    ({"schedules": "10"}, "schedules must be an int, not str"),
    ({"depth": 2.0}, "depth must be an int, not float"),
    ({"jobs": True}, "jobs must be an int, not bool"),
    ({"chunk": None}, "chunk must be an int, not NoneType"),
    ({"strategy": ["pct"]}, "unknown exploration strategy ['pct']"),
    ({"minimise_seconds": -1}, "minimise_seconds must be a number >= 0, or None"),
    ({"minimise_seconds": float("nan")}, "minimise_seconds must be a number >= 0, or None"),
    ({"minimise_seconds": "60"}, "minimise_seconds must be a number >= 0, or None"),
    ({"schedules": 0}, "schedules takes 1..10,000,000, not 0"),
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


@pytest.mark.parametrize("call, says", [
    (lambda w: w.explore(None, w.ExploreOptions(schedules=2)), "expected a RunSpec"),
    (lambda w: w.explore(w.RunSpec("lock-flags"), {"schedules": 2}), "takes ExploreOptions"),
    (lambda w: w.save_failure(None), "save_failure takes a Found"),
    (lambda w: w.load_failure(None), "load_failure takes the path of a failure file"),
    (lambda w: w.replay("f.json"), "replay takes a FailureFile, not str"),
])
def test_the_api_refuses_wrong_arguments_with_a_spec_error(call, says: str) -> None:
    """h10: these were AttributeErrors and TypeErrors from deep inside."""
    import wddmemu

    with pytest.raises(SpecError, match=says):
        call(wddmemu)
    assert issubclass(wddmemu.FailureFileError, SpecError)


async def _program() -> None:
    return None


@pytest.mark.parametrize("kw, says", [
    ({"schedules": "5"}, "schedules must be an int, not str"),
    ({"schedules": True}, "schedules must be an int, not bool"),
    ({"schedules": 0}, "schedules takes 1..10,000,000, not 0"),
    ({"seed": "x"}, "seed must be an int, not str"),
    ({"seed": -1}, "seed takes 0..9,223,372,036,854,775,807, not -1"),
    ({"seed": 2**63 - 1, "schedules": 3}, "seed 9,223,372,036,854,775,807 + 3 schedules passes "
                                           "2**63-1"),
    ({"depth": 2.5}, "depth must be an int, not float"),
    ({"depth": 0}, "depth takes 1..1,000, not 0"),
    ({"strategy": 5}, "unknown strategy 5: use random, pct, pos, fifo, free, dfs, dpor"),
    ({"strategy": "replay"}, "unknown strategy 'replay': use random, pct, pos, fifo, free, dfs"),
    ({"backend": "curio"}, "unknown backend 'curio': use asyncio or trio"),
    ({"program": None}, "check_program takes an async function (async def main(): ...), not "
                        "NoneType"),
])
def test_check_program_refuses_bad_arguments_in_one_line(kw: dict, says: str) -> None:
    """h10 F15: a str schedule count or seed was a TypeError from inside the loop, a bool or a
    float depth and a negative seed were run."""
    program = kw.pop("program", _program)
    with pytest.raises(SpecError) as ei:
        check_program(program, **kw)
    assert str(ei.value).startswith(says) and "\n" not in str(ei.value)


def test_check_program_runs_every_strategy_it_names() -> None:
    from wddmemu._program import PROGRAM_STRATEGIES

    for strategy in PROGRAM_STRATEGIES:
        assert check_program(_program, schedules=2, strategy=strategy).ok, strategy


@pytest.mark.parametrize("bad", [float("nan"), -1, "5", True, 10**9])
def test_a_bad_run_timeout_is_one_spec_error_naming_the_keyword(bad: object) -> None:
    # it was a ValueError naming the CLI's --timeout, from inside the run (fuzzing)
    from wddmemu._runner import run_scenario

    with pytest.raises(SpecError, match=r"^timeout takes seconds 0\.\.31,622,400 \(0: off\)"):
        run_scenario(RunSpec("lock-flags"), timeout=bad)  # type: ignore[arg-type]


def test_a_failure_file_may_list_a_module_of_any_identifier() -> None:
    # --load takes non-ASCII module names; the schema's ASCII pattern refused our own files
    from wddmemu._schema import is_module_name

    assert all(map(is_module_name, ["mÿdrv", "pkg.spïn", "_x.y2"]))
    assert not any(map(is_module_name, ["", "1x", "a..b", "a.", "a-b", "a b"]))
