"""Campaign files, the campaign command on this machine, and the JUnit/JSON reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest

from wddmemu import _cli
from wddmemu._campaign import Campaign, CampaignError, load_campaign, parse_campaign
from wddmemu._explore import load_failure
from wddmemu._reports import write_atomically

GOOD = """
[campaign]
scenarios = ["dynamic-vb-ring", "reentrant-lockasync"]
drivers = ["no-driver-lock"]          # optional, default ["reference"]
ddi_versions = [10, 11]
strategies = ["pct"]
schedules = 8
"""


def test_a_good_file_gives_the_matrix_in_file_order(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(GOOD)
    camp = load_campaign(p)
    assert camp == Campaign(scenarios=("dynamic-vb-ring", "reentrant-lockasync"),
                            drivers=("no-driver-lock",), ddi_versions=(10, 11), schedules=8,
                            strategies=("pct",))
    cells = [(s.scenario, s.ddi_version, st) for s, st in camp.cells()]
    assert cells == [("dynamic-vb-ring", 10, "pct"), ("dynamic-vb-ring", 11, "pct"),
                     ("reentrant-lockasync", 10, "pct"), ("reentrant-lockasync", 11, "pct")]
    deep = parse_campaign({"campaign": {"scenarios": ["lock-flags"], "depth": 1000,
                                        "preemption_bound": 1000}})
    assert (deep.depth, deep.preemption_bound) == (1000, 1000)
    bare = parse_campaign({"campaign": {"scenarios": ["lock-flags"]}})
    assert (bare.drivers, bare.strategies) == (("reference",), ("pos",))
    assert bare.preemption_bound == 2
    # "none": no bound, as --preemption-bound none (the cells' ExploreOptions get None)
    free = parse_campaign({"campaign": {"scenarios": ["lock-flags"], "preemption_bound": "none"}})
    assert free.preemption_bound is None and free.options("dpor").preemption_bound is None


BAD = [
    ("[campaign]\nscenarios = [\"lock-flags\"]\ncolour = 1\n", "unknown key 'colour'"),
    ("[campaign]\nscenarios = \"lock-flags\"\n", "scenarios must be a non-empty list"),
    ("[campaign]\nscenarios = []\n", "non-empty list"),
    ("[campaign]\nscenarios = [1]\n", "list of strings"),
    ("[campaign]\nscenarios = [\"nope\"]\n", "nope"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\ndrivers = [\"nodriver\"]\n",
     "unknown driver 'nodriver'"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\nstrategies = [\"bfs\"]\n",
     "unknown strategy 'bfs'"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\nschedules = 0\n", "out of range"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\nschedules = \"9\"\n", "must be an integer"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\nschedules = true\n", "must be an integer"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\nddi_versions = [-1]\n", "out of range"),
    # the CLI's ranges: --depth 1..1000, --preemption-bound 0..1000 (500 was refused here)
    ("[campaign]\nscenarios = [\"lock-flags\"]\ndepth = 1001\n",
     "depth 1001 is out of range"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\npreemption_bound = 1001\n",
     "preemption_bound 1001 is out of range"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\npreemption_bound = \"None\"\n",
     'preemption_bound must be an integer or "none", not \'None\''),
    ("[campaign]\nscenarios = [\"lock-flags\"]\npreemption_bound = true\n",
     'preemption_bound must be an integer or "none"'),
    ("[campaign]\nscenarios = [\"lock-flags\"]\nminimise = 1\n", "true or false"),
    ("[campaign]\nscenarios = [\"lock-flags\"\n", "not valid TOML"),
    ("[other]\nx = 1\n", "expected one [campaign] table"),
    ("[campaign]\ndrivers = [\"reference\"]\n", "needs scenarios"),
    ("campaign = 3\n", "expected one [campaign] table"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\ndrivers = [{name = 1}]\n",
     "a driver entry is a name or"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\ndrivers = [{name = \"reference\", opts = {}}]\n",
     "a driver entry is a name or"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\ndrivers = [{name = \"reference\", "
     "options = {x = 1.5}}]\n", "options of reference.x must be a string, an integer or a"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\ndrivers = [{name = \"reference\", "
     "options = {x = 1}}]\n", "x"),  # the reference driver takes no option x
    ("[campaign]\nscenarios = [\"lock-flags\"]\n[campaign.params.dynamic-vb-ring]\nframes = 2\n",
     "params for 'dynamic-vb-ring', which is not in scenarios"),
    ("[campaign]\nscenarios = [\"dynamic-vb-ring\"]\n[campaign.params.dynamic-vb-ring]\n"
     "frames = [2]\n", "params.dynamic-vb-ring.frames must be a string"),
    ("[campaign]\nscenarios = [\"dynamic-vb-ring\"]\n[campaign.params.dynamic-vb-ring]\n"
     "colour = 2\n", "colour"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\nparams = 3\n",
     "params must be [campaign.params.SCENARIO] tables"),
    # one name per cell: two identical cells would be two JUnit testcases of one name (h6)
    ("[campaign]\nscenarios = [\"lock-flags\"]\ndrivers = [\"reference\", \"reference\"]\n",
     "the matrix has cell lock-flags[reference,ddi=default,pos] twice"),
    ("[campaign]\nscenarios = [\"lock-flags\"]\nstrategies = [\"pct\", \"pct\"]\n",
     "the matrix has cell lock-flags[reference,ddi=default,pct] twice"),
    # tomllib parses nesting recursively: these were a RecursionError, exit 3
    ("[campaign]\nscenarios = " + "[" * 1000 + "]" * 1000 + "\n", "is nested too deeply"),
    ("[campaign]\nx = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", "is nested too deeply"),
    # int() refuses more than 4,300 digits: a ValueError from tomllib, exit 3 before
    ("[campaign]\nscenarios = [\"lock-flags\"]\nschedules = " + "9" * 5000 + "\n",
     "is not a campaign file: it holds a number of more than 4,300 digits"),
]


@pytest.mark.parametrize("text, msg", BAD, ids=[m for _, m in BAD])
def test_bad_files_are_one_line_exit_2(text: str, msg: str, tmp_path: Path, capsys) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(CampaignError, match=msg.replace("[", r"\[")):
        load_campaign(p)
    assert _cli.main(["campaign", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wddmemu: error: ") and msg in err
    assert "Traceback" not in err


def test_a_campaign_file_never_imports_code_on_its_own(tmp_path: Path, monkeypatch,
                                                        capsys) -> None:
    # a MODULE:ATTR driver is resolved only for a module the user loaded or allowed, as a
    # failure file's are: before, the first of these ran the shell command
    ran = tmp_path / "ran"
    (tmp_path / "camp_evil_mod.py").write_text(
        f"import pathlib\npathlib.Path({str(ran)!r}).write_text('imported')\n"
        "def make(driver_version=None):\n    raise SystemExit('called')\n")
    monkeypatch.chdir(tmp_path)  # where a user's module would be found
    p = tmp_path / "c.toml"
    for driver, module in ((f'{{name = "os:system", options = {{command = "touch {ran}"}}}}',
                            "os"), ('"camp_evil_mod:make"', "camp_evil_mod")):
        p.write_text(f'[campaign]\nscenarios = ["lock-flags"]\ndrivers = [{driver}]\n')
        assert _cli.main(["campaign", str(p), "--save-dir", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"is in module {module!r}, which was not loaded: " \
            f"rerun with --load {module} (or --allow-load {module})" in err, err
        assert not ran.exists()


def test_a_campaign_file_is_read_within_a_bound(tmp_path: Path, capsys) -> None:
    # /dev/zero never ends: it was read whole (gigabytes) before the bound
    assert _cli.main(["campaign", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert err == ("wddmemu: error: /dev/zero is too big for a campaign file (more than "
                   "4,194,304 bytes)\n")


def test_a_missing_file_is_exit_2(tmp_path: Path, capsys) -> None:
    assert _cli.main(["campaign", str(tmp_path / "none.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_campaign_saves_failures_and_writes_valid_reports(tmp_path: Path, capsys) -> None:
    p = tmp_path / "c.toml"
    p.write_text(GOOD)
    junit, js, saves = tmp_path / "out" / "r.xml", tmp_path / "r.json", tmp_path / "f"
    argv = ["campaign", str(p), "--save-dir", str(saves), "--junit", str(junit),
            "--json", str(js)]
    assert _cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "4 cells, 2 failing" in out and "replay: wddmemu replay" in out
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuites" and suite.get("tests") == "4"
    cases = suite.findall("./testsuite/testcase")
    assert len(cases) == 4 and suite.find("testsuite").get("failures") == "2"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == [
        "dynamic-vb-ring[no-driver-lock,ddi=0xb,pct]",
        "reentrant-lockasync[no-driver-lock,ddi=0xb,pct]"]
    for c in failed:
        f = c.find("failure")
        assert f.get("type") == "RACE" and "RACE at step" in f.get("message")
        assert "replay: wddmemu replay " in f.text
        saved = f.text.split("saved: ")[1].splitlines()[0]
        assert load_failure(saved).rule == "RACE"
    doc = orjson.loads(js.read_bytes())
    assert doc["format"] == "wddmemu-report" and doc["ok"] is False
    assert [c["ok"] for c in doc["cells"]] == [True, False, True, False]
    assert sorted(x.name for x in saves.iterdir()) == sorted(
        Path(c["failures"][0]["file"]).name for c in doc["cells"] if c["failures"])
    assert [x.name for x in junit.parent.iterdir()] == ["r.xml"]  # no temp file left behind


def test_a_clean_campaign_exits_0(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[campaign]\nscenarios = ["lock-flags"]\nstrategies = ["random", "dfs"]\n'
                 "schedules = 5\n")
    assert _cli.main(["campaign", str(p), "--save-dir", str(tmp_path / "f")]) == 0
    assert not (tmp_path / "f").exists()


def test_explore_writes_the_same_reports(tmp_path: Path) -> None:
    js, junit = tmp_path / "e.json", tmp_path / "e.xml"
    argv = ["explore", "reentrant-lockasync", "--driver", "no-driver-lock", "--ddi-version",
            "0xB", "--schedules", "30", "--save-dir", str(tmp_path / "f"), "--json", str(js),
            "--junit", str(junit), "--no-minimise"]
    assert _cli.main(argv) == 1
    (cell,) = orjson.loads(js.read_bytes())["cells"]
    assert cell["failures"][0]["rule"] == "RACE" and cell["runs"] == 1
    assert Path(cell["failures"][0]["file"]).exists()
    assert ET.parse(junit).getroot().get("failures") == "1"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    p = write_atomically(tmp_path / "r.json", b"old")
    with pytest.raises(TypeError):  # the write fails half-way: the target is untouched
        write_atomically(p, object())  # type: ignore[arg-type]
    assert p.read_bytes() == b"old" and [x.name for x in tmp_path.iterdir()] == ["r.json"]
    write_atomically(p, b"new")
    assert p.read_bytes() == b"new"


def test_an_unwritable_report_is_exit_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("")
    argv = ["explore", "lock-flags", "--schedules", "2", "--save-dir", str(tmp_path / "f"),
            "--json", str(tmp_path / "file" / "r.json")]
    assert _cli.main(argv) == 2
    assert "cannot write --json report" in capsys.readouterr().err


@pytest.mark.slow  # seven explorations of 40 schedules (docs/testing.md)
def test_a_campaign_runs_every_strategy_explore_takes(tmp_path: Path) -> None:
    """A campaign cell is one exploration, so the matrix takes every ``explore`` strategy (pos,
    portfolio and dpor too, not only random/pct/dfs), each cell reported under its own name."""
    from wddmemu._explore import EXPLORE_STRATEGIES

    p, js = tmp_path / "c.toml", tmp_path / "r.json"
    names = ", ".join(f'"{s}"' for s in EXPLORE_STRATEGIES)
    p.write_text('[campaign]\nscenarios = ["reentrant-lockasync"]\ndrivers = ["no-driver-lock"]\n'
                 f"ddi_versions = [11]\nstrategies = [{names}]\nschedules = 40\n"
                 "minimise = false\n")
    assert _cli.main(["campaign", str(p), "--save-dir", str(tmp_path / "f"),
                      "--json", str(js)]) == 1
    cells = orjson.loads(js.read_bytes())["cells"]
    assert [c["strategy"] for c in cells] == list(EXPLORE_STRATEGIES)
    # the sampling strategies find the unlocked driver's race at once; within 40 executions
    # the systematic searches (fewest preemptions first, or one per class) do not reach it
    got = {c["strategy"]: (c["ok"], [f["rule"] for f in c["failures"]], c["runs"]) for c in cells}
    for s in ("random", "pct", "pos", "portfolio"):
        assert got[s][:2] == (False, ["RACE"]), s
    assert got["dfs"] == got["dpor"] == (True, [], 40)



@pytest.mark.parametrize("command", ["explore", "campaign"])
@pytest.mark.parametrize("strategy, jobs, split", [("dfs", "2", True), ("dpor", "2", True),
                                                   ("dfs", "1", False), ("pct", "2", False)])
def test_jobs_splits_dfs_and_dpor_on_every_path(command, strategy, jobs, split, tmp_path: Path,
                                                monkeypatch) -> None:
    """``--jobs N`` splits dfs and dpor into subtrees over N processes on the reporting path
    (``--junit``/``--json``) and in campaigns too, as on the plain command: before, those two
    paths ran every dfs/dpor cell in one process, whatever ``--jobs`` said."""
    from wddmemu import _cluster

    seen: list[tuple[str, int]] = []
    real = _cluster.explore_split

    def recording(base, opts, **kw):
        seen.append((opts.strategy, opts.jobs))
        return real(base, opts, **kw)

    monkeypatch.setattr(_cluster, "explore_split", recording)
    toml = tmp_path / "c.toml"
    toml.write_text(f'[campaign]\nscenarios = ["lock-flags"]\nstrategies = ["{strategy}"]\n'
                    "schedules = 3\n")
    argv = {"explore": ["explore", "lock-flags", "--schedules", "3", "--strategy", strategy,
                        "--json", str(tmp_path / "r.json")],
            "campaign": ["campaign", str(toml)]}[command]
    assert _cli.main([*argv, "--jobs", jobs, "--save-dir", str(tmp_path / "f")]) == 0
    assert seen == ([(strategy, 2)] if split else [])


def test_a_systematic_cell_says_whether_it_exhausted_its_space(tmp_path: Path, capsys) -> None:
    # a clean dfs/dpor cell that stopped at its schedule limit proved nothing: the table, the
    # JSON and the JUnit report must not pass it off as the same "clean" as an exhausted one
    p, js, junit = tmp_path / "c.toml", tmp_path / "c.json", tmp_path / "c.xml"
    for schedules, exhausted in ((3, False), (50, True)):
        p.write_text('[campaign]\nscenarios = ["gl-icd-lock-entire"]\n'
                     f'strategies = ["dpor", "pct"]\nschedules = {schedules}\n'
                     # no bound: gl-icd's 24 classes need 4 preemptions (the run's end is a
                     # step), and "none" proves it for every schedule
                     'preemption_bound = "none"\n')
        argv = ["campaign", str(p), "--save-dir", str(tmp_path / "f"), "--json", str(js),
                "--junit", str(junit)]
        assert _cli.main(argv) == 0
        out = capsys.readouterr().out
        dpor, pct = orjson.loads(js.read_bytes())["cells"]
        assert dpor["exhausted"] is exhausted and pct["exhausted"] is None
        assert pct["coverage"] is None
        assert dpor["coverage"].startswith("exhausted: every interleaving" if exhausted
                                           else "stopped after 3 executions (limit 3)")
        assert ("(exhausted)" if exhausted else "(not exhausted: raise schedules)") in out
        assert f"gl-icd-lock-entire[reference,ddi=default,dpor]: {dpor['coverage']}" in out
        props = {(tc.get("name"), e.get("name")): e.get("value")
                 for tc in ET.parse(junit).getroot().iter("testcase")
                 for e in tc.iter("property")}
        assert props[(dpor["name"], "coverage")] == dpor["coverage"]
        assert (pct["name"], "coverage") not in props


def test_a_campaign_gives_scenario_params_and_driver_option_sets(tmp_path: Path,
                                                                capsys) -> None:
    # one driver with two option sets is two cells, each named by its options; a scenario's
    # params reach every cell of that scenario, as -p would
    p, js = tmp_path / "c.toml", tmp_path / "c.json"
    p.write_text('[campaign]\nscenarios = ["dynamic-vb-ring"]\nschedules = 2\n'
                 'drivers = ["reference", {name = "reference", options = {heap_bytes = 9999999}}]\n'
                 "[campaign.params.dynamic-vb-ring]\nframes = 2\n")
    camp = load_campaign(p)
    assert camp.params == {"dynamic-vb-ring": {"frames": "2"}}
    assert [s.params for s, _ in camp.cells()] == [{"frames": "2"}] * 2
    assert _cli.main(["campaign", str(p), "--save-dir", str(tmp_path / "f"), "--json",
                      str(js)]) == 0
    cells = orjson.loads(js.read_bytes())["cells"]
    assert [(c["runs"], c["driver_options"]) for c in cells] == [
        (2, {}), (2, {"heap_bytes": "9999999"})]
    assert [c["params"] for c in cells] == [{"frames": 2}] * 2  # what the cell ran with, typed


def test_driver_options_make_distinct_cells(tmp_path: Path) -> None:
    from wddmemu import driver

    @driver("campaign-opts-probe", summary="the reference, with an option (tests)")
    def _make(driver_version=None, locked: bool = True):
        import umd

        return umd.ReferenceDriver(umd.DriverConfig(
            driver_version=0xB if driver_version is None else driver_version))

    p = tmp_path / "c.toml"  # (the driver leaves the registry at the end: see finally)
    p.write_text('[campaign]\nscenarios = ["lock-flags"]\nschedules = 1\n'
                 'drivers = [{name = "campaign-opts-probe", options = {locked = true}}, '
                 '{name = "campaign-opts-probe", options = {locked = false}}]\n')
    camp = load_campaign(p)
    assert [s.driver_options for s, _ in camp.cells()] == [{"locked": "true"},
                                                           {"locked": "false"}]
    from wddmemu import DRIVERS
    from wddmemu._campaign import CampaignRun, run_campaign

    try:
        reports = run_campaign(camp, CampaignRun(save_dir=tmp_path / "f"))
    finally:
        DRIVERS.unregister("campaign-opts-probe")
    assert [r.name for r in reports] == [
        "lock-flags[campaign-opts-probe(locked=true),ddi=default,pos]",
        "lock-flags[campaign-opts-probe(locked=false),ddi=default,pos]"]
    # the reports carry the options themselves, not only inside the cell's name
    from wddmemu._reports import json_report, junit_xml

    cells = orjson.loads(json_report(reports))["cells"]
    assert [c["driver_options"] for c in cells] == [{"locked": "true"}, {"locked": "false"}]
    xml = junit_xml(reports).decode()
    assert xml.count('name="driver_options" value="locked=true"') == 1
    assert xml.count('name="driver_options" value="locked=false"') == 1


def test_a_bounded_dpor_cell_says_bounded_not_exhausted(tmp_path: Path, capsys) -> None:
    """h9: a dpor cell whose search reached its preemption bound claimed "bounded: … not a
    proof" under the table, but its table cell said "clean (exhausted)" and the JSON
    "exhausted": true. The table, the JSON and the JUnit coverage now agree."""
    p, js, junit = tmp_path / "c.toml", tmp_path / "c.json", tmp_path / "c.xml"
    p.write_text('[campaign]\nscenarios = ["lock-flags"]\nstrategies = ["dpor", "pct"]\n'
                 "schedules = 200\npreemption_bound = 0\n")
    assert _cli.main(["campaign", str(p), "--save-dir", str(tmp_path / "f"), "--json", str(js),
                      "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    dpor, pct = orjson.loads(js.read_bytes())["cells"]
    assert dpor["coverage"].startswith("bounded: ") and "not a proof" in dpor["coverage"]
    assert (dpor["exhausted"], dpor["bounded"]) == (False, True)
    assert (pct["exhausted"], pct["bounded"]) == (None, None)  # sampled: no coverage claim
    [row] = [x for x in out.splitlines() if x.startswith("lock-flags") and " dpor " in x]
    assert "(bounded, not a proof: raise the bound)" in row and "exhausted" not in row
    props = {(tc.get("name"), e.get("name")): e.get("value")
             for tc in ET.parse(junit).getroot().iter("testcase") for e in tc.iter("property")}
    assert props[(dpor["name"], "coverage")] == dpor["coverage"]


def test_the_json_report_gives_scenario_parameters_their_types(tmp_path: Path) -> None:
    """h9: ``frames = 2`` came out as ``"frames": "2"`` (the command line's text)."""
    import scenarios
    from scenarios import Param, scenario

    @scenario("test-typed-params", "parameters of each type", n=Param(int, 1),
              on=Param(bool, False), label=Param(str, "a"))
    async def typed(ctx, n: int, on: bool, label: str) -> None:
        pass

    try:
        p, js = tmp_path / "c.toml", tmp_path / "c.json"
        p.write_text('[campaign]\nscenarios = ["test-typed-params", "dynamic-vb-ring"]\n'
                     'strategies = ["random"]\nschedules = 1\n'
                     '[campaign.params.test-typed-params]\nn = 0x10\non = true\nlabel = "7"\n'
                     "[campaign.params.dynamic-vb-ring]\nframes = 2\n")
        assert _cli.main(["campaign", str(p), "--save-dir", str(tmp_path / "f"),
                          "--json", str(js)]) == 0
    finally:
        scenarios.REGISTRY.unregister("test-typed-params")
    mine, ring = orjson.loads(js.read_bytes())["cells"]
    assert mine["params"] == {"label": "7", "n": 16, "on": True}
    assert ring["params"] == {"frames": 2}
