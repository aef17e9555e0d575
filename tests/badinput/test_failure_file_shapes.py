"""A failure file of the wrong shape is one line naming the field and what it must be (exit 2),
never a Python error's text; a damaged decision list is exit 2, never "no longer fails"; the
values a file hands to a scenario or a driver factory are held to what the command line could
have given. (A user's hand-edited files: ``"failure": null`` said ``'NoneType' object is not
subscriptable``, ``"decisions": []`` passed as fixed, ``{"bug": ["a"]}`` reached the factory.)
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import wddmemu
from tests.support.loading import loading_state_kept
from wddmemu import _cli
from wddmemu._errors import SpecError
from wddmemu._explore import ExploreOptions, explore, save_failure
from wddmemu._runner import RunSpec, check_spec

#: what no message about a file may show: Python's own words for a wrong type
PYTHON_WORDS = ("NoneType", "subscriptable", "has no attribute", "object is not", "KeyError",
                "Traceback", "malformed failure file (")


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real saved failure (a RACE of no-driver-lock), as a document to edit."""
    base = RunSpec("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB)
    res = explore(base, ExploreOptions(schedules=50, strategy="pct", max_replays=30))
    path = save_failure(res.failures[0], tmp_path_factory.mktemp("saved"))
    return orjson.loads(path.read_bytes())


def _replay(tmp_path: Path, doc: dict[str, Any], capsys: pytest.CaptureFixture[str],
            *extra: str) -> tuple[int, str, str]:
    p = tmp_path / "f.json"
    p.write_text(json.dumps(doc))  # json: orjson cannot write the ints over 64 bits
    code = _cli.main([*extra, "replay", str(p)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _set(*path: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting ``doc[path[0]]…[path[-2]] = path[-1]``; the value ``DEL`` deletes."""
    *keys, value = path

    def edit(d: dict[str, Any]) -> None:
        for k in keys[:-1]:
            d = d[k]
        if value is DEL:
            del d[keys[-1]]
        else:
            d[keys[-1]] = value

    return edit


DEL = object()

SHAPES = [
    (_set("failure", None), "the file's failure is null, not an object"),
    (_set("failure", DEL), "the file has no failure (the rule and step that broke)"),
    (_set("failure", "RACE"), "the file's failure is a string, not an object"),
    (_set("failure", "rule", DEL), "the failure has no rule"),
    (_set("failure", "rule", ""), "the failure's rule is empty"),
    (_set("failure", "step", "111"), "the failure's step is a string, not an integer"),
    (_set("failure", "step", -1), "the failure's step is -1: a step is 0.."),
    (_set("failure", "step", True), "the failure's step is a boolean, not an integer"),
    (_set("failure", "thread", 123), "the failure's thread is an integer, not a string or null"),
    (_set("failure", "message", None), "the failure's message is null, not a string"),
    (_set("failure", "colour", 1), "the failure has an unknown field 'colour'"),
    (_set("load", "h1pkg"), "the file's load is a string, not an object"),
    (_set("load", None), "the file's load is null, not an object"),
    (_set("load", "modules", "h1pkg"), "the load's modules is a string, not a list"),
    (_set("load", "modules", [3]), "the load's modules[0] is an integer: the list holds module"),
    (_set("load", "modules", ["../x"]), "the load's modules[0] is '../x': the list holds"),
    (_set("load", "modules", ["\x1b[31m"]), "the load's modules[0] is '\\x1b[31m'"),
    (_set("load", "distributions", [None]), "the load's distributions[0] is null"),
    (_set("load", "distributions", ["a b"]), "the load's distributions[0] is 'a b'"),
    (_set("load", "extra", []), "the load has an unknown field 'extra'"),
    (_set("spec", None), "the file's spec is null, not an object"),
    (_set("spec", []), "the file's spec is a list, not an object"),
    (_set("spec", DEL), "the file has no spec (the run to replay)"),
    (_set("spec", "scenario", DEL), "the spec has no scenario"),
    (_set("found_by", []), "the file's found_by is a list, not an object"),
    (_set("found_by", "seed", "0"), "the found_by's seed is a string, not an integer"),
    (_set("minimised", "budget_hit", 0), "the minimised's budget_hit is an integer, not a bool"),
    (_set("replay", 5), "the file's replay is an integer, not a string"),
    (_set("wddmemu", None), "the file's wddmemu is null, not a string"),
    (_set("colour", "red"), "the file has an unknown field 'colour'"),
    (_set("version", True), "has format version True"),
    (_set("spec", "decisions", DEL), "the spec has no decision list"),
    (_set("spec", "decisions", [-1, 0]), "the spec's decisions[0] is -1: a thread id is 0.."),
    (_set("spec", "decisions", [0, "1"]), "the spec's decisions[1] is a string, not a thread"),
    (_set("spec", "decisions", [0, 1 << 31]), "the spec's decisions[1] is 2147483648"),
    (_set("spec", "decisions", [0, 2**70]),
     "the spec's decisions[1] is an integer too large (past 64 bits), not a thread"),
]


@pytest.mark.parametrize("edit, says", SHAPES, ids=[s for _, s in SHAPES])
def test_every_malformed_shape_names_the_field(tmp_path: Path, capsys, doc: dict[str, Any],
                                               edit: Callable[[dict[str, Any]], None],
                                               says: str) -> None:
    d = copy.deepcopy(doc)
    edit(d)
    code, out, err = _replay(tmp_path, d, capsys)
    assert code == 2, out + err
    assert err.count("\n") == 1 and says in err, err
    assert not any(w in err for w in PYTHON_WORDS), err


def test_the_unedited_file_reproduces(tmp_path: Path, capsys, doc: dict[str, Any]) -> None:
    code, out, _ = _replay(tmp_path, doc, capsys)
    assert code == 1 and "reproduced" in out


# ---- damaged decision lists -----------------------------------------------------------------


def test_an_empty_decision_list_is_damage_not_a_fix(tmp_path: Path, capsys,
                                                     doc: dict[str, Any]) -> None:
    d = copy.deepcopy(doc)
    d["spec"]["decisions"] = []
    code, out, err = _replay(tmp_path, d, capsys)
    assert code == 2 and "no longer fails" not in out, out + err
    assert "the decision list is empty, but the run makes a choice at step 1" in err
    assert err.count("\n") == 1


def test_a_thread_id_the_run_never_had_is_damage_not_a_fix(tmp_path: Path, capsys,
                                                           doc: dict[str, Any]) -> None:
    d = copy.deepcopy(doc)
    d["spec"]["decisions"] = [9] * len(d["spec"]["decisions"])
    code, out, err = _replay(tmp_path, d, capsys)
    assert code == 2 and "no longer fails" not in out, out + err
    assert "the decision list is damaged: decision 1 names thread tid 9, but the run has " \
           "started only 3 threads (tids 0..2) at step 1" in err
    # the same a little later: the decisions before it matched, the tid still never existed
    d["spec"]["decisions"] = [*doc["spec"]["decisions"][:5], 40, *doc["spec"]["decisions"][6:]]
    code, out, err = _replay(tmp_path, d, capsys)
    assert code == 2 and "decision 6 names thread tid 40" in err, out + err


def test_a_real_fix_that_changes_the_schedule_still_no_longer_fails(
        tmp_path: Path, capsys, doc: dict[str, Any]) -> None:
    """The reference driver takes its lock: the recording names a thread that exists but is
    blocked there (or runs out). That is a changed program, exit 0, as before."""
    d = copy.deepcopy(doc)
    d["spec"]["driver"] = "reference"
    code, out, err = _replay(tmp_path, d, capsys)
    assert code == 0 and ("no longer fails" in out or "clean" in out), out + err
    d = copy.deepcopy(doc)
    d["spec"]["decisions"] = d["spec"]["decisions"][:20]  # ran out after 20: a changed program
    code, out, err = _replay(tmp_path, d, capsys)
    assert code == 0 and "no longer fails" in out, out + err


def test_the_regression_item_of_a_damaged_file_fails(pytester, doc: dict[str, Any]) -> None:
    d = Path(pytester.mkdir("failures"))
    for name, decisions in (("empty", []), ("nine", [9] * 40)):
        damaged = copy.deepcopy(doc)
        damaged["spec"]["decisions"] = decisions
        (d / f"{name}.json").write_bytes(orjson.dumps(damaged))
    result = pytester.runpytest("--wddmemu-failures", str(d))
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*damaged failure file*decision list is empty*",
                                 "*damaged failure file*names thread tid 9*"])


# ---- values handed to the scenario and the driver factory -----------------------------------


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A loadable module ``bi_probe`` whose driver ``bi-probe`` records what it is given (it
    stays loaded for the module's tests: a process loads a module once)."""
    site = tmp_path_factory.mktemp("site")
    (site / "bi_probe.py").write_text(
        "import umd, wddmemu\n"
        "GOT = []\n"
        "@wddmemu.driver('bi-probe', replace=True)\n"
        "def make(driver_version=None, bug: str = 'x', n: int = 1, on: bool = False,\n"
        "         ratio: float = 0.5, names: tuple = ('a',)):\n"
        "    GOT.append((bug, n, on, ratio, names))\n"
        "    return umd.ReferenceDriver()\n")
    sys.path.insert(0, str(site))
    # the next tests must not see bi_probe as --loaded (their replay lines would say so)
    with loading_state_kept():
        yield
    sys.path.remove(str(site))
    wddmemu.DRIVERS.unregister("bi-probe")
    sys.modules.pop("bi_probe", None)


OPTIONS = [
    ({"bug": ["a"]}, "driver option bug takes text, not a list"),
    ({"bug": 5}, "driver option bug takes text, not an integer"),
    ({"n": True}, "driver option n takes an integer, not a boolean"),
    ({"n": "x"}, "driver option n takes an integer, not 'x'"),
    ({"n": 2**70}, "driver option n takes an integer, not an integer too large (past 64 "
                   "bits)"),  # orjson: a float
    ({"n": 2**63}, "n takes a 64-bit integer (-2**63..2**63-1), not 9223372036854775808"),
    ({"n": "0x10000000000000000000"}, "driver option n takes a 64-bit integer"),
    ({"n": None}, "driver option n takes an integer, not null"),
    ({"on": 1}, "driver option on takes true/false, not an integer"),
    ({"ratio": "x"}, "driver option ratio takes a number, not 'x'"),
    ({"ratio": [1]}, "driver option ratio takes a number, not a list"),
    ({"names": [1]}, "driver option names takes a comma-separated list of names, not a list"),
]


@pytest.mark.parametrize("options, says", OPTIONS, ids=[s for _, s in OPTIONS])
def test_a_driver_option_from_a_file_is_held_to_what_the_cli_gives(
        tmp_path: Path, capsys, doc: dict[str, Any], probe: None, options: dict[str, Any],
        says: str) -> None:
    d = copy.deepcopy(doc)
    d["spec"]["driver"], d["spec"]["driver_options"] = "bi-probe", options
    d["load"]["modules"] = ["bi_probe"]
    calls = len(sys.modules["bi_probe"].GOT) if "bi_probe" in sys.modules else 0
    code, out, err = _replay(tmp_path, d, capsys, "--load", "bi_probe")
    assert code == 2 and says in err and err.count("\n") == 1, out + err
    assert len(sys.modules["bi_probe"].GOT) == calls  # refused before the factory is called


def test_what_the_cli_saves_and_typed_values_both_reach_the_factory(
        tmp_path: Path, capsys, doc: dict[str, Any], probe: None) -> None:
    d = copy.deepcopy(doc)
    d["spec"]["driver"] = "bi-probe"
    d["load"]["modules"] = ["bi_probe"]
    for options in ({"bug": "y", "n": "0x7", "on": "yes", "ratio": "2", "names": "b,c"},
                    {"bug": "y", "n": 7, "on": True, "ratio": 2, "names": ["b", "c"]}):
        d["spec"]["driver_options"] = options
        code, out, err = _replay(tmp_path, d, capsys, "--load", "bi_probe")
        assert code == 0, out + err  # the reference driver: the race is gone
        assert sys.modules["bi_probe"].GOT[-1] == ("y", 7, True, 2.0, ("b", "c"))


def test_a_huge_int_driver_option_on_the_command_line_is_one_line(capsys) -> None:
    argv = ["run", "dynamic-vb-ring", "--driver-opt", "heap_bytes=0x10000000000000000000"]
    assert _cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "driver option heap_bytes takes a 64-bit integer" in err
    assert _cli.main(["run", "lock-flags", "--driver-opt", "heap_bytes=0x7fffffffffffffff"]) == 0


def test_the_api_holds_options_and_parameters_to_64_bits() -> None:
    """Saving such a run used to fail inside orjson ("Integer exceeds 64-bit range", exit 3):
    now check_spec refuses it before anything runs."""
    with pytest.raises(SpecError, match="heap_bytes takes a 64-bit integer"):
        check_spec(RunSpec("dynamic-vb-ring", driver_options={"heap_bytes": 2**64}))
    with pytest.raises(SpecError, match="heap_bytes takes an integer, not a boolean"):
        check_spec(RunSpec("dynamic-vb-ring", driver_options={"heap_bytes": True}))
    check_spec(RunSpec("dynamic-vb-ring", driver_options={"heap_bytes": 4096}))


def test_a_rangeless_int_parameter_is_64_bit() -> None:
    import scenarios
    from scenarios import Param

    @scenarios.scenario("test-rangeless", "an int without a range", n=Param(int, 2, "n"))
    async def rangeless(ctx: Any, n: int) -> None:
        pass

    try:
        sc = scenarios.get("test-rangeless")
        assert sc.resolve({"n": "-0x8000000000000000"}) == {"n": -(2**63)}
        for bad in ("0x8000000000000000", 2**63, 2**70):
            with pytest.raises(ValueError, match="parameter n takes a 64-bit integer"):
                sc.resolve({"n": bad})
    finally:
        scenarios.REGISTRY.unregister("test-rangeless")


@pytest.mark.parametrize("params, code, says", [
    ({"frames": "2"}, 1, ""),  # what `-p frames=2` saves: the command line's own text
    ({"frames": 2}, 1, ""),  # what the API saves
    ({"frames": "2x"}, 2, "parameter frames takes an integer, not '2x'"),
    ({"frames": "0x10000000000000000000"}, 2, "parameter frames takes 1..100000, not"),
    ({"frames": 2**70}, 2, "parameter frames takes an integer 1..100000, not a number too large"),
    ({"frames": True}, 2, "parameter frames takes an integer 1..100000, not true"),
])
def test_a_parameter_from_a_file_is_what_p_could_give(tmp_path: Path, capsys, params: dict,
                                                      code: int, says: str) -> None:
    res = explore(RunSpec("dynamic-vb-ring", driver="no-driver-lock", params={"frames": "2"}),
                  ExploreOptions(schedules=20, strategy="pct", minimise=False))
    d = orjson.loads(save_failure(res.failures[0], tmp_path / "s").read_bytes())
    assert d["spec"]["params"] == {"frames": "2"}  # the CLI's text is what a file holds
    d["spec"]["params"] = params
    got, out, err = _replay(tmp_path, d, capsys)
    assert got == code and says in err, out + err
