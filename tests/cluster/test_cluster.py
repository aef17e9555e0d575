"""Exploration on Dask distributed (issue 15): same answers as ``--jobs 1``, byte-identical
failure files, no schedule lost when a worker dies, one-line errors when the cluster cannot be
used. The LocalCluster tests are ``slow`` (a cluster of processes takes seconds to start); the
fast smoke test drives an in-process cluster."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from dataclasses import replace
from pathlib import Path

import distributed  # the test extra installs the cluster extra
import pytest

from tests.support.interrupt import has_saved
from wddmemu import _cli
from wddmemu._cluster import ClusterError, connect, explore_on_cluster, ship_modules
from wddmemu._explore import ExploreOptions, explore, save_failure
from wddmemu._runner import RunSpec

OFTEN = RunSpec("dynamic-vb-ring", driver="noexistingref-with-queued-refs")
DEADLOCK = RunSpec("reentrant-lockasync", driver="lock-order-deadlock", ddi_version=0xB)
ICD = RunSpec("gl-icd-lock-entire")  # dfs exhausts it within preemption bound 1


def _key(res) -> list:
    return [(f.index, f.finding, f.spec, f.minimised) for f in res.failures]


def test_smoke_in_process_cluster_gives_the_one_job_answer() -> None:
    opts = ExploreOptions(schedules=12, strategy="pct", chunk=2, max_replays=20)
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=None, silence_logs=logging.ERROR) as lc, \
            distributed.Client(lc) as client:
        seen: list[int] = []
        got = explore_on_cluster(client, OFTEN, opts, progress=lambda r, f: seen.append(r))
    one = explore(OFTEN, opts)
    assert got.runs == one.runs and _key(got) == _key(one)
    assert seen and seen == sorted(seen) and seen[-1] <= 12


def test_missing_extra_is_one_line_exit_2(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    argv = ["explore", "lock-flags", "--schedules", "2", "--cluster", "local:2"]
    assert _cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == "wddmemu: error: --cluster needs the cluster extra: pip install " \
                  "'wddmemu[cluster]'\n"


def test_an_unreachable_scheduler_is_one_line_exit_2(monkeypatch, capsys) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr("wddmemu._cluster.CONNECT_TIMEOUT_S", 1.0)
    argv = ["explore", "lock-flags", "--schedules", "2", "--cluster", f"tcp://127.0.0.1:{port}"]
    assert _cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wddmemu: error: cannot reach the dask scheduler at "
                          f"tcp://127.0.0.1:{port} within 1 s") and err.count("\n") == 1


@pytest.mark.parametrize("extra, msg", [(["--jobs", "2"], "not both"),
                                        (["--cluster", "local:0"], "1 to 256")])
def test_refusals_come_before_any_cluster_starts(extra, msg, capsys) -> None:
    argv = ["explore", "lock-flags", "--schedules", "2", "--cluster", "local:2", *extra]
    assert _cli.main(argv) == 2
    assert msg in capsys.readouterr().err


# ---- on a LocalCluster of worker processes ------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    with connect("local:2") as c:
        yield c


@pytest.mark.slow
def test_cli_cluster_saves_the_same_bytes_as_one_job(tmp_path: Path, capsys) -> None:
    common = ["explore", "reentrant-lockasync", "--driver", "lock-order-deadlock",
              "--ddi-version", "0xB", "--strategy", "random", "--schedules", "60"]
    assert _cli.main([*common, "--save-dir", str(tmp_path / "one")]) == 1
    assert _cli.main([*common, "--save-dir", str(tmp_path / "dask"), "--cluster", "local:2"]) == 1
    (one,) = (tmp_path / "one").iterdir()
    (dask,) = (tmp_path / "dask").iterdir()
    assert one.name == dask.name and one.read_bytes() == dask.read_bytes()
    assert "minimised:" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_keep_going_and_stop_on_first_equal_one_job(client, strategy: str) -> None:
    opts = ExploreOptions(schedules=40, strategy=strategy, chunk=3, stop_on_first=False,
                          minimise=False)
    got, one = explore_on_cluster(client, OFTEN, opts), explore(OFTEN, opts)
    assert got.runs == one.runs == 40 and _key(got) == _key(one) and len(one.failures) >= 5
    first = replace(opts, stop_on_first=True, minimise=True, max_replays=40)
    saved: list = []
    got = explore_on_cluster(client, DEADLOCK, first, on_failure=saved.append)
    one = explore(DEADLOCK, first)
    assert got.runs == one.runs and _key(got) == _key(one) and saved == list(got.failures)


@pytest.mark.slow
@pytest.mark.parametrize("spec, opts", [
    (OFTEN, ExploreOptions(schedules=60, strategy="pct", chunk=4, stop_on_first=False,
                           minimise=False)),
    # dpor: results are keyed by subtree, so a resubmitted one is filed once
    (RunSpec("reentrant-lockasync", ddi_version=0xB),
     ExploreOptions(schedules=40, strategy="dpor", preemption_bound=1, chunk=3,
                    stop_on_first=False, minimise=False)),
], ids=["pct", "dpor"])
def test_a_killed_worker_loses_no_schedule(client, spec, opts) -> None:
    client.wait_for_workers(2)
    pids = client.run(os.getpid)
    killed: list[int] = []

    def progress(runs: int, _failures: int) -> None:
        # kill a worker that is running a chunk right now, once, early in the run
        busy = [w for w, keys in client.processing().items() if keys and w in pids]
        if not killed and busy:
            killed.append(pids[busy[0]])
            os.kill(pids[busy[0]], signal.SIGKILL)

    got = explore_on_cluster(client, spec, opts, progress=progress)
    one = explore(spec, opts)
    assert killed, "no worker was busy when a chunk finished"
    assert (got.runs, got.exhausted, got.claim, _key(got)) == \
           (one.runs, one.exhausted, one.claim, _key(one))
    assert one.runs == opts.schedules
    client.wait_for_workers(2)
    assert killed[0] not in client.run(os.getpid).values()  # the nanny started a new one


@pytest.mark.slow
def test_a_single_file_driver_module_is_shipped_to_workers(client, tmp_path: Path,
                                                           monkeypatch) -> None:
    mod = "wddmemu_shipped_driver_test"
    (tmp_path / f"{mod}.py").write_text(
        "import umd\n\n"
        "def make(driver_version=None):\n"
        "    return umd.make_driver('no-driver-lock', driver_version=driver_version)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = RunSpec("reentrant-lockasync", driver=f"{mod}:make", ddi_version=0xB)
    opts = ExploreOptions(schedules=8, strategy="pct", chunk=2, max_replays=20)
    with pytest.raises(ClusterError, match="install your package on every worker"):
        explore_on_cluster(client, spec, opts)  # the workers cannot import it yet
    assert ship_modules(client, [mod, "wddmemu"]) == [str(tmp_path / f"{mod}.py")]
    got, one = explore_on_cluster(client, spec, opts), explore(spec, opts)
    assert _key(got) == _key(one) and got.failures
    a, b = save_failure(got.failures[0], tmp_path / "a"), save_failure(one.failures[0],
                                                                      tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.slow
def test_campaign_on_the_cluster_equals_the_local_campaign(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[campaign]\nscenarios = ["dynamic-vb-ring", "reentrant-lockasync"]\n'
                    'drivers = ["reference", "no-driver-lock"]\nddi_versions = [10, 11]\n'
                    'strategies = ["pct", "random"]\nschedules = 12\nchunk = 4\n')
    runs = {}
    for how in ("local", "dask"):
        extra = ["--cluster", "local:2"] if how == "dask" else ["--jobs", "1"]
        assert _cli.main(["campaign", str(toml), "--save-dir", str(tmp_path / how),
                          "--json", str(tmp_path / f"{how}.json"), *extra]) == 1
        runs[how] = {p.name: p.read_bytes() for p in (tmp_path / how).iterdir()}
    assert runs["local"] == runs["dask"] and len(runs["local"]) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("bugs", [(), ("donotwait-waits",)])
def test_dfs_split_into_subtrees_equals_one_process(client, bugs) -> None:
    spec = replace(ICD, bugs=bugs)
    opts = ExploreOptions(schedules=2000, strategy="dfs", preemption_bound=1, chunk=4,
                          stop_on_first=False, minimise=False)
    got, one = explore_on_cluster(client, spec, opts), explore(spec, opts)
    assert one.exhausted and one.claim is not None and "exhausted: every interleaving" in one.claim
    assert (got.runs, got.exhausted, got.claim) == (one.runs, one.exhausted, one.claim)
    assert _key(got) == _key(one) and bool(bugs) == bool(one.failures)
    capped = replace(opts, schedules=25)
    got, one = explore_on_cluster(client, spec, capped), explore(spec, capped)
    assert (got.runs, got.exhausted, got.claim, _key(got)) == \
           (one.runs, one.exhausted, one.claim, _key(one)) == (25, False, one.claim, _key(one))


ICD_BUG = ["gl-icd-lock-entire", "--bug", "donotwait-waits", "--preemption-bound", "1"]
DEADLOCK_ARGS = ["reentrant-lockasync", "--driver", "lock-order-deadlock", "--ddi-version",
                 "0xB", "--preemption-bound", "1"]


@pytest.mark.slow
@pytest.mark.parametrize("args, split, claim", [
    ([*ICD_BUG, "--strategy", "dfs"], ["--cluster", "local:2"], "execution 1 of 1"),
    ([*ICD_BUG, "--strategy", "dfs"], ["--jobs", "2"], "execution 1 of 1"),
    ([*ICD_BUG, "--strategy", "dpor"], ["--jobs", "2"], "execution 1 of 1"),
    # the failure is deep in the dpor search: many subtrees merged to reach it
    ([*DEADLOCK_ARGS, "--strategy", "dpor"], ["--cluster", "local:2"], "execution 157 of 157"),
])
def test_cli_split_search_saves_the_same_bytes_as_one_job(args, split, claim, tmp_path: Path,
                                                          capsys) -> None:
    common = ["explore", *args, "--schedules", "200"]
    assert _cli.main([*common, "--save-dir", str(tmp_path / "one")]) == 1
    out_one = capsys.readouterr().out.replace("\n", " ")
    assert _cli.main([*common, "--save-dir", str(tmp_path / "split"), *split]) == 1
    out_split = capsys.readouterr().out.replace("\n", " ")
    (one,) = (tmp_path / "one").iterdir()
    (two,) = (tmp_path / "split").iterdir()
    assert one.name == two.name and one.read_bytes() == two.read_bytes()
    claim = f"stopped at the first failure, {claim}"
    assert claim in out_one and claim in out_split


@pytest.mark.slow
def test_cli_dpor_exhausts_on_the_cluster_with_the_one_job_claim(tmp_path: Path,
                                                                 capsys) -> None:
    common = ["explore", "gl-icd-lock-entire", "--strategy", "dpor", "--preemption-bound", "none",
              "--save-dir", str(tmp_path)]
    assert _cli.main(common) == 0
    out_one = capsys.readouterr().out.replace("\n", " ")
    assert _cli.main([*common, "--cluster", "local:2"]) == 0
    out_dask = capsys.readouterr().out.replace("\n", " ")
    claim = "exhausted: every interleaving of 24 equivalence classes explored"
    assert claim in out_one and claim in out_dask
    assert out_one[out_one.index(claim):].split(")")[0] == \
        out_dask[out_dask.index(claim):].split(")")[0]


@pytest.mark.slow
def test_a_driver_stuck_on_a_worker_is_a_hang_not_a_lost_worker(client) -> None:
    """A CPU loop in driver code on a Dask worker (its task thread, where SIGALRM cannot
    reach, in a process that did not inherit the command's limit): the task carries
    ``--timeout`` and the run ends as ``hang``, like on one process."""
    spec = RunSpec("dynamic-vb-ring", driver="tests.support.hang:driver")
    opts = ExploreOptions(schedules=2, strategy="random", chunk=1, minimise=False, timeout=0.5)
    got = explore_on_cluster(client, spec, opts)
    assert [f.finding.rule for f in got.failures] == ["hang"]
    assert "was in DDI Rename" in got.failures[0].finding.message


@pytest.mark.slow
def test_a_single_file_module_that_registers_a_driver_and_a_scenario_runs_on_local_n(
        tmp_path: Path) -> None:
    """``--load ./file.py`` + ``--cluster local:N``: the file goes to the workers only; it used
    to be imported again (reloaded) by the scheduler in this very process, whose registries
    then refused its names (exit 3; h6's F3)."""
    import subprocess
    import textwrap

    (tmp_path / "onefile.py").write_text(textwrap.dedent("""
        import umd
        import wddmemu
        from scenarios import scenario
        from scenarios.builtin import reentrant_lockasync

        @wddmemu.driver("onefile-drv")
        def make(driver_version=None):
            return umd.make_driver("no-driver-lock", driver_version=driver_version or 0xB)

        @scenario("onefile-scenario", "the built-in reentrant-lockasync, from a file")
        async def run(ctx):
            await reentrant_lockasync(ctx, 3, 2)
        """))
    cli = "import sys; from wddmemu._cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", cli, "--load", "./onefile.py", "explore",
            "onefile-scenario", "--driver", "onefile-drv", "--ddi-version", "0xB",
            "--schedules", "6", "--cluster", "local:2", "--save-dir", "saved"]
    p = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, (p.stdout, p.stderr)  # the driver's race, found on the workers
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert list((tmp_path / "saved").glob("onefile-scenario-*.json"))


@pytest.mark.slow
def test_ctrl_c_of_a_local_cluster_campaign_is_130_without_the_workers_tracebacks(
        tmp_path: Path) -> None:
    """A terminal's Ctrl-C goes to the whole process group: the local:N workers took it too and
    each printed a page of CancelledError tracebacks (h6's F7). They ignore it now; this
    process stops them."""
    import subprocess
    import time

    toml = tmp_path / "long.toml"
    toml.write_text('[campaign]\nscenarios = ["dynamic-vb-ring"]\n'
                    'drivers = ["track-in-lockasync", "reference"]\nstrategies = ["pos"]\n'
                    "schedules = 100000\nstop_on_first = false\n")
    cli = "import sys; from wddmemu._cli import main; sys.exit(main(sys.argv[1:]))"
    saved = tmp_path / "saved"
    p = subprocess.Popen([sys.executable, "-c", cli, "campaign", str(toml), "--save-dir",
                          str(saved), "--cluster", "local:2"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)  # its own group, as a terminal's job is
    try:
        deadline = time.monotonic() + 180
        while not has_saved(saved):  # the workers are running
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGINT)  # the whole group, as Ctrl-C in a terminal
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    assert p.returncode == 130, (out, err)
    assert "Traceback" not in err and "CancelledError" not in err, err


@pytest.mark.slow
def test_a_package_the_workers_cannot_import_is_one_line_on_stderr(tmp_path: Path) -> None:
    """A --load package is not shipped (install it on the workers): the error is one line —
    without distributed's "Compute Failed" page before it (h6's F5)."""
    import subprocess
    import textwrap

    (tmp_path / "localpkg").mkdir()
    (tmp_path / "localpkg" / "__init__.py").write_text(textwrap.dedent("""
        import umd
        import wddmemu

        @wddmemu.driver("localpkg-drv")
        def make(driver_version=None):
            return umd.make_driver("reference", driver_version=driver_version)
        """))
    cli = "import sys; from wddmemu._cli import main; sys.exit(main(sys.argv[1:]))"
    p = subprocess.run([sys.executable, "-c", cli, "--load", "localpkg", "explore",
                        "reentrant-lockasync", "--driver", "localpkg-drv", "--schedules", "4",
                        "--cluster", "local:2", "--save-dir", "saved"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, (p.stdout, p.stderr)
    (line,) = p.stderr.splitlines()
    assert line.startswith("wddmemu: error: a worker could not run schedules of "
                           "reentrant-lockasync: unknown driver 'localpkg-drv'")
