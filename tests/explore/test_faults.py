"""Fault injection through the harness (issue 14): ``RunSpec.faults`` / ``--inject``,
``explore --faults`` (chosen from the seed, saved, replayed exactly), the data oracle on dropped
work, the built-in scenarios' handling of device loss, and the fault sweep."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import scenarios
from scenarios import builtin
from tests.support.faults import SweepCounts, builtin_names, fault_points, run_one, sweep
from wddmemu import _cli
from wddmemu._explore import (
    ExploreOptions,
    choose_faults,
    explore,
    load_failure,
    replay,
    save_failure,
    spec_from_dict,
)
from wddmemu._runner import RunSpec, SpecError, check_spec, run_scenario


def test_faults_are_part_of_the_spec_the_file_and_the_command_line() -> None:
    spec = RunSpec("reentrant-lockasync", faults=("tdr@step=40", "removal@device"))
    d = spec.to_dict()
    assert d["faults"] == ["tdr@step=40", "removal@device"]
    assert spec_from_dict(d) == spec
    cmd = spec.command()
    assert "--inject tdr@step=40 --inject removal@device" in cmd
    with pytest.raises(SpecError, match="cannot inject 'tdr@soon'"):
        check_spec(replace(spec, faults=("tdr@soon",)))


def test_choose_faults_is_a_function_of_the_seed_within_the_run() -> None:
    picks = [choose_faults(seed, 900, 40) for seed in range(200)]
    assert picks == [choose_faults(seed, 900, 40) for seed in range(200)]
    assert all(len(p) == 1 for p in picks)
    kinds = {p[0].split("@")[0] + "@" + p[0].split("@")[1].split("=")[0] for p in picks}
    assert kinds == {"tdr@step", "removal@call", "removal@device"}
    steps = [int(p[0].split("=")[1]) for p in picks if p[0].startswith("tdr")]
    calls = [int(p[0].split("=")[1]) for p in picks if p[0].startswith("removal@call")]
    assert min(steps) >= 1 and max(steps) <= 900 and len(set(steps)) > 20
    assert min(calls) >= 1 and max(calls) <= 40


def test_an_injected_hang_drops_queued_draws_without_a_false_data_finding() -> None:
    """275 of 302 hung reentrant-lockasync runs reported the aborted draws as never executed."""
    import io

    import orjson

    for ddi in (0xA, 0xB):
        buf = io.BytesIO()
        res = run_scenario(RunSpec("reentrant-lockasync", ddi_version=ddi,
                                   faults=("tdr@step=300",)), trace=buf)
        assert res.kernel.tdrs == 1 and res.kernel.faults_fired == ("tdr@step=300",)
        events = [orjson.loads(x) for x in buf.getvalue().splitlines()]
        dropped = [d for e in events if e["event"] == "kmd.dma.end" for d in e.get("dropped", ())]
        assert len(dropped) >= 4  # the hung buffer's draws and everything queued behind it
        assert res.ok, res.run.violations[:2]


def test_a_scenario_that_meets_the_loss_recreates_its_device() -> None:
    for fault in ("removal@call=9", "removal@device"):
        res = run_scenario(RunSpec("reentrant-lockasync", faults=(fault,)))
        assert res.ok, res.run.failure
        # the lost device (if it got that far) and then a new one that renders every draw
        assert res.devices[-1].draws == 12 and res.kernel.faults_fired == (fault,)
    assert [d.draws for d in run_scenario(RunSpec("reentrant-lockasync",
                                                  faults=("removal@call=9",))).devices] == [2, 12]


def test_dropped_draws_are_excused_only_on_a_removed_device() -> None:
    """The oracle still reports a draw a driver drops while its device is alive: the seeded
    driver that swallows callback errors is caught after an injected removal too."""
    spec = RunSpec("dynamic-vb-ring", driver="swallow-callback-errors",
                   faults=("removal@call=29",))
    res = run_scenario(spec)
    assert not res.ok and res.run.violations[0].rule == "ERR-1"


def test_explore_faults_finds_saves_and_replays_exactly(tmp_path: Path) -> None:
    base = RunSpec("dynamic-vb-ring", driver="swallow-callback-errors")
    opts = ExploreOptions(schedules=3, strategy="random", seed=5, faults=True,
                          minimise=False)
    res = explore(base, opts)
    (fd,) = res.failures
    assert fd.finding.rule == "ERR-1"
    assert fd.spec.faults == choose_faults(opts.seed + fd.index, *opts_space(base))
    ff = load_failure(save_failure(fd, tmp_path))
    assert ff.spec.faults == fd.spec.faults and ff.doc["spec"]["faults"] == list(fd.spec.faults)
    out = replay(ff)
    assert out.kind == "reproduced"
    # the same schedule without its fault no longer breaks: the fault is what exposes the bug
    assert fd.original_spec.faults == fd.spec.faults
    assert run_scenario(replace(fd.original_spec, faults=())).ok


def opts_space(base: RunSpec) -> tuple[int, int]:
    from wddmemu._explore import fault_space

    return fault_space(base)


def test_faulted_runs_are_deterministic_across_backends() -> None:
    spec = RunSpec("multi-app-threads", strategy="random", seed=5, faults=("tdr@step=120",))
    a = run_scenario(spec)
    b = run_scenario(replace(spec, backend="trio"))
    assert a.run.decisions == b.run.decisions and a.kernel == b.kernel
    assert a.kernel.faults_fired == ("tdr@step=120",) and a.ok and b.ok


class _Ctx:
    def __init__(self, faulted: bool) -> None:
        self.faulted = faulted


def test_a_removal_no_fault_explains_is_not_excused() -> None:
    from runtime import d3d9

    removed = d3d9.D3DError(d3d9.D3DERR_DEVICEREMOVED, "Lock failed")
    other = d3d9.D3DError(d3d9.D3DERR_INVALIDCALL, "Lock failed")
    assert builtin.device_lost(_Ctx(True), removed)  # type: ignore[arg-type]
    assert builtin.device_lost(_Ctx(True), builtin.DeviceLost("x"))  # type: ignore[arg-type]
    assert not builtin.device_lost(_Ctx(False), removed)  # type: ignore[arg-type]
    assert not builtin.device_lost(_Ctx(True), other)  # type: ignore[arg-type]


def test_without_the_handling_a_fault_ends_in_an_escaped_device_removed() -> None:
    """What the handling is for: the unwrapped scenario body lets the removal escape."""
    name = "faults-test-unhandled"
    if name not in scenarios.REGISTRY:
        fn = builtin.dynamic_vb_ring.__wrapped__  # type: ignore[attr-defined]
        scenarios.scenario(name, "dynamic-vb-ring without device-loss handling",
                           **scenarios.get("dynamic-vb-ring").params)(fn)
    res = run_scenario(RunSpec(name, faults=("removal@call=9",)))
    assert res.run.failure is not None and res.run.failure.kind == "exception"
    assert "DEVICEREMOVED" in res.run.failure.message
    assert run_scenario(RunSpec("dynamic-vb-ring", faults=("removal@call=9",))).ok


# ---- the CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv,message", [
    (["run", "dynamic-vb-ring", "--inject", "tdr@later"], "cannot inject 'tdr@later'"),
    (["run", "dynamic-vb-ring", "--inject", "removal@call=0"], "N takes 1..1000000000"),
    (["explore", "dynamic-vb-ring", "--inject", "removal"], "cannot inject 'removal'"),
    (["replay", "x.json", "--inject", "tdr@step=-1"], "cannot inject 'tdr@step=-1'"),
])
def test_bad_inject_is_one_line_and_exit_2(argv: list[str], message: str, capsys) -> None:
    assert _cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_run_inject_and_replay_of_a_file_with_faults(tmp_path: Path, capsys) -> None:
    assert _cli.main(["run", "tdr-mid-lock", "--inject", "removal@device",
                      "--inject", "tdr@step=50"]) == 0
    assert "tdr-mid-lock: clean" in capsys.readouterr().out
    argv = ["explore", "dynamic-vb-ring", "--driver", "swallow-callback-errors", "--faults",
            "--strategy", "random", "--seed", "6", "--schedules", "1", "--no-minimise",
            "--save-dir", str(tmp_path)]
    assert _cli.main(argv) == 1
    (path,) = tmp_path.glob("*.json")
    capsys.readouterr()
    assert _cli.main(["replay", str(path)]) == 1
    assert "reproduced: ERR-1" in capsys.readouterr().out


def test_a_failure_file_whose_faults_are_not_a_list_is_refused(tmp_path: Path) -> None:
    import orjson

    from wddmemu._explore import FailureFileError

    d = RunSpec("dynamic-vb-ring", decisions=(0,)).to_dict()
    d["faults"] = "tdr@step=3"
    with pytest.raises(FailureFileError, match="the spec's faults is a string, not a list or null"):
        spec_from_dict(d)
    d["faults"] = ["tdr@never"]
    p = tmp_path / "f.json"
    p.write_bytes(orjson.dumps({"format": "wddmemu-failure", "version": 2, "spec": d,
                                "failure": {"rule": "X", "step": 1}}))
    with pytest.raises(FailureFileError, match="cannot inject 'tdr@never'"):
        load_failure(p)


# ---- the sweep ---------------------------------------------------------------------------


def test_fault_points_cover_each_kind() -> None:
    assert fault_points(100, 10, (0.5,)) == ("tdr@step=50", "removal@call=5", "removal@device")


def test_the_sweep_counts_what_breaks() -> None:
    """The counters can be non-zero: a seeded bug under a fault is counted as a finding."""
    counts = SweepCounts()
    run_one(RunSpec("dynamic-vb-ring", driver="swallow-callback-errors",
                    faults=("removal@call=29",)), counts)
    assert counts.runs == 1 and len(counts.findings) == 1 and not counts.incomplete


@pytest.mark.parametrize("name", builtin_names())
def test_small_fault_sweep(name: str) -> None:
    """Every built-in scenario, a hang and a removal half-way and removal@device, at 0xB (and
    0xA for the reentrant one; the slow sweep runs both everywhere): 0 hangs, 0 escaped
    exceptions, 0 false findings, every trace complete."""
    ddis = (0xA, 0xB) if name == "reentrant-lockasync" else (0xB,)
    counts = sweep([name], fractions=(0.5,), ddis=ddis)
    assert counts.runs == 3 * len(ddis)
    assert (counts.hangs, counts.exceptions, counts.findings, counts.incomplete) == (
        [], [], [], [])


@pytest.mark.slow
def test_full_fault_sweep() -> None:
    """``python -m tests.support.faults``: every scenario × five hangs, five removals and
    removal@device × 0xA and 0xB × fifo, two random and one pct schedule."""
    from tests.support.faults import FULL

    counts = sweep(**FULL)  # type: ignore[arg-type]
    assert counts.runs >= len(builtin_names()) * 2 * 4 * 6
    assert (counts.hangs, counts.exceptions, counts.findings, counts.incomplete) == (
        [], [], [], []), counts.line()


def test_every_explorer_hands_out_the_same_faulted_schedules() -> None:
    """In-process, the process pool and the cluster's search all measure the fault space before
    handing out schedules: schedule i gets the same fault from each."""
    from wddmemu._cluster import Search
    from wddmemu._explore import _schedule_spec

    base = RunSpec("dynamic-vb-ring", driver="swallow-callback-errors")
    opts = ExploreOptions(schedules=6, strategy="random", seed=5, faults=True, minimise=False,
                          chunk=2)
    search = Search.of(base, opts)
    assert search.opts.fault_space == opts_space(base)
    _cno, dicts = search.take()
    assert [tuple(d["faults"]) for d in dicts] == [
        _schedule_spec(base, search.opts, search.k, i).faults for i in (0, 1)]
    one = explore(base, opts)
    two = explore(base, replace(opts, jobs=2))
    assert [(f.index, f.spec) for f in one.failures] == [(f.index, f.spec) for f in two.failures]
    assert one.failures and one.failures[0].spec.faults
