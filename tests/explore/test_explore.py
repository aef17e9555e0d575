"""explore / minimise / failure files / replay, over the whole seeded-bug corpus."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from wddmemu import _cli
from wddmemu._explore import (
    ExploreOptions,
    FailureFileError,
    Finding,
    explore,
    load_failure,
    replay,
    save_failure,
)
from wddmemu._runner import RunSpec, run_scenario
from wddmemu.corpus import CORPUS


@pytest.mark.parametrize("bug", CORPUS, ids=[b.name for b in CORPUS])
def test_pct_finds_every_seeded_bug_and_the_saved_failure_replays(bug, tmp_path: Path) -> None:
    res = explore(bug.spec(), ExploreOptions(schedules=1000, strategy="pct", max_replays=40))
    assert res.failures, f"{bug.name}: not found in {res.runs} pct schedules"
    fd = res.failures[0]
    assert fd.finding.rule in bug.rules, fd.finding
    # the reference stack runs the same schedules clean
    for i in range(fd.index + 1):
        ref = replace(bug.reference(), strategy="pct", seed=i, pct_steps=res.pct_steps)
        r = run_scenario(ref).run
        assert r.ok, f"reference failed on {ref}: {r.summary()}"
    # saved, it replays to the same rule at the same step, on asyncio and on trio
    path = save_failure(fd, tmp_path)
    ff = load_failure(path)
    assert (ff.rule, ff.step) == (fd.finding.rule, fd.finding.step)
    for backend in ("asyncio", "trio"):
        out = replay(ff, backend=backend)
        assert out.kind == "reproduced", (backend, out.kind, out.got)


def test_some_bugs_show_only_on_some_interleavings() -> None:
    dependent = [b for b in CORPUS if b.schedule_dependent]
    assert len(dependent) >= 4
    for b in dependent:
        fifo = run_scenario(replace(b.spec(), strategy="fifo")).run
        assert fifo.ok, f"{b.name} shows under fifo already: {fifo.summary()}"


def test_minimisation_removes_deviations_and_keeps_the_rule() -> None:
    base = RunSpec("reentrant-lockasync", driver="lock-order-deadlock", ddi_version=0xB)
    raw = explore(base, ExploreOptions(schedules=50, strategy="random", minimise=False))
    mini = explore(base, ExploreOptions(schedules=50, strategy="random", max_replays=100))
    a, b = raw.failures[0], mini.failures[0]
    assert a.index == b.index and b.finding.rule == a.finding.rule == "deadlock"
    m = b.minimised
    assert m["deviations_after"] < m["deviations_before"]
    assert 0 < m["replays"] <= 100
    # the minimised schedule replays strictly
    out = replay(load_failure(save_failure(b, Path("/tmp") / "wddmemu-mini-test")))
    assert out.kind == "reproduced"


def test_jobs_2_gives_the_same_results_as_jobs_1() -> None:
    base = RunSpec("reentrant-lockasync", driver="lock-order-deadlock", ddi_version=0xB)
    opts = ExploreOptions(schedules=60, strategy="random", stop_on_first=False, minimise=False,
                          chunk=10)
    one = explore(base, opts)
    two = explore(base, replace(opts, jobs=2))
    assert one.runs == two.runs == 60
    key = [(f.index, f.finding, f.spec.decisions) for f in one.failures]
    assert key == [(f.index, f.finding, f.spec.decisions) for f in two.failures]
    assert len(key) >= 2
    first1 = explore(base, replace(opts, stop_on_first=True))
    first2 = explore(base, replace(opts, stop_on_first=True, jobs=2))
    assert first1.failures[0].index == first2.failures[0].index == one.failures[0].index
    # the pool counts the schedules up to the first failure in index order, as one job does
    assert first1.runs == first2.runs == one.failures[0].index + 1


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
def test_dfs_exhausts_a_small_scenario_and_finds_a_bug_in_it() -> None:
    base = RunSpec("gl-icd-lock-entire")
    res = explore(base, ExploreOptions(schedules=2000, strategy="dfs", preemption_bound=1))
    assert res.exhausted is True and res.ok and 10 < res.runs < 2000
    bigger = explore(base, ExploreOptions(schedules=2000, strategy="dfs", preemption_bound=2))
    assert bigger.exhausted and bigger.runs > res.runs
    buggy = explore(replace(base, bugs=("donotwait-waits",)),
                    ExploreOptions(schedules=2000, strategy="dfs", preemption_bound=1))
    assert buggy.failures and buggy.failures[0].finding.rule == "KL-21"


def test_dfs_reports_an_unexhausted_space() -> None:
    res = explore(RunSpec("lock-flags"), ExploreOptions(schedules=30, strategy="dfs",
                                                        preemption_bound=1))
    assert res.runs == 30 and res.exhausted is False


# ---- failure files and the replay command -------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    base = RunSpec("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB)
    res = explore(base, ExploreOptions(schedules=100, strategy="pct", max_replays=30))
    return save_failure(res.failures[0], tmp_path)


def test_failure_file_is_documented_json(saved: Path) -> None:
    doc = orjson.loads(saved.read_bytes())
    assert doc["format"] == "wddmemu-failure" and doc["version"] == 2
    assert doc["wddmemu"]
    assert doc["load"] == {"modules": [], "distributions": []}  # built-ins only
    spec = doc["spec"]
    for k in ("scenario", "params", "driver", "driver_options", "ddi_version", "backend",
              "strategy", "seed", "decisions", "bugs"):
        assert k in spec
    assert spec["driver"] == "no-driver-lock" and spec["ddi_version"] == 0xB
    assert spec["strategy"] == "replay" and all(isinstance(x, int) for x in spec["decisions"])
    assert doc["failure"]["rule"] == "RACE" and doc["failure"]["step"] > 0
    assert doc["found_by"]["strategy"] == "pct"


def test_replay_cli_exit_codes(saved: Path, tmp_path: Path, capsys) -> None:
    assert _cli.main(["replay", str(saved)]) == 1
    assert "reproduced: RACE at step" in capsys.readouterr().out
    trace = tmp_path / "r.jsonl"
    assert _cli.main(["replay", str(saved), "--backend", "trio", "--trace", str(trace)]) == 1
    assert orjson.loads(trace.read_bytes().splitlines()[-1])["violations"][0] == "RACE"
    # the bug fixed: same scenario and schedule with the reference driver → clean, exit 0
    doc = orjson.loads(saved.read_bytes())
    doc["spec"]["driver"] = "reference"
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(orjson.dumps(doc))
    code = _cli.main(["replay", str(fixed)])
    out = capsys.readouterr().out
    # a fixed bug is exit 0, whether or not the fix changed the program (issue 14)
    assert code == 0 and ("clean" in out or "no longer fails" in out), out
    # unreadable / incompatible files: one line, exit 2
    bad = tmp_path / "bad.json"
    for content, msg in ((b"{not json", "is not JSON"),
                         (b'{"format": "other"}', "not a wddmemu failure file"),
                         (orjson.dumps({**doc, "version": 99}), "format version 99"),
                         (orjson.dumps({**doc, "spec": {**doc["spec"], "scenario": "gone"}}),
                          "bad.json: unknown scenario 'gone'"),
                         (orjson.dumps({**doc, "spec": {**doc["spec"], "seed": -1}}),
                          "bad.json: seed takes an integer 0..")):
        bad.write_bytes(content)
        assert _cli.main(["replay", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0]
    assert _cli.main(["replay", str(tmp_path / "missing.json")]) == 2


def test_a_changed_program_that_no_longer_fails_is_exit_0(saved: Path, capsys) -> None:
    """The recording no longer applies (here: cut short); replayed as far as it applies and
    then under fifo, the race is gone — like the plugin's regression item, that is a pass."""
    doc = orjson.loads(saved.read_bytes())
    doc["spec"]["decisions"] = doc["spec"]["decisions"][:3]
    saved.write_bytes(orjson.dumps(doc))
    out = replay(load_failure(saved))
    assert out.kind == "clean" and out.diverged_at is not None
    assert _cli.main(["replay", str(saved)]) == 0
    assert "no longer fails" in capsys.readouterr().out


def test_a_changed_program_that_still_fails_is_diverged_exit_1(tmp_path: Path, capsys) -> None:
    res = explore(RunSpec("dynamic-vb-ring", driver="track-in-lockasync"),
                  ExploreOptions(schedules=20, strategy="pct", minimise=False))
    path = save_failure(res.failures[0], tmp_path)
    doc = orjson.loads(path.read_bytes())
    doc["spec"]["decisions"] = doc["spec"]["decisions"][:3]
    path.write_bytes(orjson.dumps(doc))
    out = replay(load_failure(path))
    assert out.kind == "diverged" and out.diverged_at is not None
    assert out.got is not None and out.got.rule == "LA-13"  # fifo meets it too
    assert _cli.main(["replay", str(path)]) == 1
    assert "diverged at step" in capsys.readouterr().out


def test_a_version_1_file_still_replays(saved: Path) -> None:
    doc = orjson.loads(saved.read_bytes())
    del doc["load"], doc["spec"]["driver_options"]
    saved.write_bytes(orjson.dumps({**doc, "version": 1}))
    ff = load_failure(saved)
    assert ff.spec.driver_options == {} and replay(ff).kind == "reproduced"


def test_load_failure_rejects_a_spec_without_decisions(saved: Path) -> None:
    doc = orjson.loads(saved.read_bytes())
    doc["spec"]["decisions"] = None
    saved.write_bytes(orjson.dumps(doc))
    with pytest.raises(FailureFileError, match="no decision list"):
        load_failure(saved)


def test_explore_cli(tmp_path: Path, capsys) -> None:
    argv = ["explore", "reentrant-lockasync", "--driver", "lock-order-deadlock",
            "--ddi-version", "0xB", "--schedules", "200", "--save-dir", str(tmp_path)]
    assert _cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "deadlock at step" in out and "replay: wddmemu replay" in out
    assert "last events up to step" in out and "before the break" not in out
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    assert _cli.main(["replay", str(files[0])]) == 1
    clean = ["explore", "reentrant-lockasync", "--ddi-version", "0xB", "--schedules", "20",
             "--save-dir", str(tmp_path / "none")]
    assert _cli.main(clean) == 0
    assert _cli.main(["explore", "reentrant-lockasync", "--schedules", "0"]) == 2


def test_finding_of_a_clean_run_is_none() -> None:
    assert Finding.of(run_scenario(RunSpec("lock-flags")).run) is None


# ---- dpor (issue 12): systematic search with a proof -------------------------------------


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
def test_dpor_exhausts_a_small_scenario_in_fewer_executions_than_dfs() -> None:
    from wddmemu import ExploreOptions, RunSpec, explore

    base = RunSpec("gl-icd-lock-entire")
    # dpor at bound 4 (a superset of bound 2's interleavings) still runs far fewer executions
    # than dfs at bound 2; at bound 2 dpor's claim is "bounded" (h8 F4, docs/explore.md)
    dpor = explore(base, ExploreOptions(schedules=2000, strategy="dpor", preemption_bound=4))
    dfs = explore(base, ExploreOptions(schedules=2000, strategy="dfs", preemption_bound=2))
    assert dpor.ok and dfs.ok
    assert dpor.exhausted and dfs.exhausted
    assert dpor.claim is not None and dpor.claim.startswith("exhausted: every interleaving of")
    assert dpor.runs <= 30 < 1000 < dfs.runs


def test_dpor_finds_a_seeded_bug_and_the_failure_replays(tmp_path) -> None:
    from wddmemu import ExploreOptions, RunSpec, explore, load_failure, replay, save_failure

    base = RunSpec("gl-icd-lock-entire", bugs=("donotwait-waits",))
    res = explore(base, ExploreOptions(schedules=200, strategy="dpor"))
    assert [fd.finding.rule for fd in res.failures] == ["KL-21"]
    assert res.claim is not None and res.claim.startswith("stopped at the first failure")
    path = save_failure(res.failures[0], tmp_path)
    out = replay(load_failure(path))
    assert out.kind == "reproduced"


# ---- no masking (issue 11): the whole failing schedule is reported ------------------------


def test_findings_to_end_shows_the_data_corruption_behind_the_first_finding() -> None:
    from wddmemu import ExploreOptions, RunSpec, explore, findings_to_end

    spec = RunSpec("dynamic-vb-ring", driver="track-in-lockasync")
    res = explore(spec, ExploreOptions(schedules=20, strategy="pct", minimise=False))
    first = res.failures[0]
    assert first.finding.rule == "LA-13"
    every = findings_to_end(first)
    rules = [f.rule for f in every]
    assert rules[0] == "LA-13" and "DATA" in rules  # the stale tracking's symptom, unmasked
    assert [f.step for f in every] == sorted(f.step for f in every)
    assert len({(f.rule, f.message) for f in every}) == len(every)


def test_findings_to_end_of_a_single_finding_is_that_finding() -> None:
    from wddmemu import ExploreOptions, RunSpec, explore, findings_to_end

    spec = RunSpec("reentrant-lockasync", driver="lock-order-deadlock", ddi_version=0xB)
    res = explore(spec, ExploreOptions(schedules=200, strategy="pct", minimise=False))
    every = findings_to_end(res.failures[0])
    assert [f.rule for f in every] == ["deadlock"]


def test_explore_cli_prints_every_finding_of_the_schedule(tmp_path, capsys) -> None:
    from wddmemu import _cli

    rc = _cli.main(["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync",
                    "--schedules", "5", "--no-minimise", "--save-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "earliest first:" in out and "DATA" in out


def test_keep_going_groups_identical_findings() -> None:
    from wddmemu import ExploreOptions, RunSpec, explore, group_failures

    spec = RunSpec("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB)
    res = explore(spec, ExploreOptions(schedules=30, strategy="pct", stop_on_first=False,
                                       minimise=False))
    groups = group_failures(res.failures)
    assert sum(g.count for g in groups) == len(res.failures) > len(groups) >= 1
    assert [g.first.index for g in groups] == sorted(g.first.index for g in groups)
    assert all(g.rule == "RACE" for g in groups)
    top = max(groups, key=lambda g: g.count)
    assert f"×{top.count}, first at schedule {top.first.index}" in top.describe()


def test_keep_going_says_what_broke_later_in_a_groups_schedules(tmp_path, capsys) -> None:
    """h7: the grouping names each schedule's first finding only; a rule behind it (DATA
    behind LA-13 here) is found by replaying some of the group's schedules to the end."""
    from wddmemu import ExploreOptions, RunSpec, explore, group_failures

    spec = RunSpec("dynamic-vb-ring", driver="track-in-lockasync")
    res = explore(spec, ExploreOptions(schedules=6, stop_on_first=False, minimise=False))
    (group,) = group_failures(res.failures)
    assert group.rule == "LA-13" and group.members[0] is group.first
    later, n = group.later_rules(sample=3)
    assert n == 3 and later.get("DATA", 0) >= 1 and "LA-13" not in later
    assert _cli.main(["explore", "dynamic-vb-ring", "--driver", "track-in-lockasync",
                      "--keep-going", "--schedules", "4", "--no-minimise",
                      "--save-dir", str(tmp_path / "saved")]) == 1
    assert "and later in the same schedules (4 replayed to the end): DATA in " in (
        capsys.readouterr().out)


def test_an_exhausted_dpor_says_what_it_does_not_see(tmp_path, capsys) -> None:
    """Under an exhausted dpor claim the CLI says the claim covers state in vthreads objects
    only: a third-party driver keeping its shared counters in plain attributes got
    "exhausted: every interleaving …" while pct found its lost update."""
    from wddmemu._cli import DPOR_SCOPE

    # bound 4: its 24 classes need up to 4 preemptions (the end of the run is in the relation)
    argv = ["explore", "gl-icd-lock-entire", "--strategy", "dpor", "--preemption-bound", "4",
            "--save-dir", str(tmp_path)]
    assert _cli.main(argv) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "exhausted: every interleaving" in out and " ".join(DPOR_SCOPE.split()) in " ".join(
        out.split())
    assert _cli.main([*argv[:3], "pos", "--schedules", "3", "--save-dir", str(tmp_path)]) == 0
    assert "dpor orders steps" not in capsys.readouterr().out
