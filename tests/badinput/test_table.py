"""Issue 14: the bad-input table. Every command of the ``wddmemu`` CLI, fed nonsense, exits with
its documented code — 2 for bad input, with ONE line on stderr (``wddmemu: error: …``) and no
traceback; never 3 (our own bug), never a run that "fails" because its input was nonsense.

The cases run in-process through :func:`wddmemu._cli.main` (the console script's entry point,
so the exit-code mapping is the real one), a few in a subprocess at the end. ``{d}`` in an
argument is the case's temporary directory, where the case's files are written first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import scenarios
from wddmemu import _cli
from wddmemu._runner import RunSpec

# ---- files the cases read ---------------------------------------------------------------------


def _failure_doc(**spec: Any) -> dict[str, Any]:
    s = RunSpec("dynamic-vb-ring", decisions=(0, 0, 0)).to_dict()
    s["strategy"] = "replay"
    s.update(spec)
    return {"format": "wddmemu-failure", "version": 2, "load": {"modules": [],
                                                                  "distributions": []},
            "spec": s, "failure": {"rule": "LA-13", "step": 10, "thread": "app",
                                   "message": "m"}}


def _ff(**spec: Any) -> bytes:
    return json.dumps(_failure_doc(**spec)).encode()


def _ff_doc(doc_change: dict[str, Any]) -> bytes:
    doc = _failure_doc()
    doc.update(doc_change)
    return json.dumps(doc).encode()


GOOD_TRACE = (b'{"step":0,"t":0,"thread":"app","event":"thread.start"}\n'
              b'{"step":1,"t":5,"thread":"app","event":"thread.exit"}\n')
CAMPAIGN = b'[campaign]\nscenarios = ["dynamic-vb-ring"]\nschedules = 2\n'

#: user modules the --load / --driver cases import (written into {d}, which is on sys.path)
MODULES = {
    "bi_raises_on_import": b"raise RuntimeError('broken at import')\n",
    "bi_syntax_error": b"def f(:\n",
    "bi_factory_raises": b"def make(driver_version=None):\n    raise RuntimeError('no')\n",
    "bi_factory_keyerror": b"def make(driver_version=None):\n    return {}['x']\n",
    "bi_not_a_driver": b"make = 42\ndef returns_int(driver_version=None):\n    return 7\n",
    "bi_exits": b"import sys\nsys.exit(5)\n",
}

# ---- the table --------------------------------------------------------------------------------

#: (argv, expected exit code, files to write under {d} first)
Case = tuple[list[str], int, dict[str, bytes]]
CASES: list[tuple[str, Case]] = []


def case(name: str, argv: list[str], code: int = 2, **files: bytes) -> None:
    CASES.append((name, (argv, code, {k.replace("__", "."): v for k, v in files.items()})))


R, E = ["run", "dynamic-vb-ring"], ["explore", "dynamic-vb-ring", "--schedules", "2"]

# the group, unknown commands and options
case("no-such-command", ["frobnicate"])
case("unknown-group-option", ["--frobnicate", "scenarios"])
case("load-no-such-module", ["--load", "no_such_user_module_x", "scenarios"])
case("load-not-a-name", ["--load", "not a module", "scenarios"])
case("load-empty", ["--load", "", "scenarios"])
case("load-dots", ["--load", "..", "scenarios"])
case("load-raises-on-import", ["--load", "bi_raises_on_import", "scenarios"])
case("load-syntax-error", ["--load", "bi_syntax_error", "scenarios"])
case("load-sys-exit", ["--load", "bi_exits", "scenarios"])
case("load-missing-value", ["--load"])
case("allow-load-missing-value", ["--allow-load"])
for verb in ("run", "explore", "replay", "campaign", "rules", "scenarios", "drivers", "bugs"):
    case(f"{verb}-unknown-option", [verb, "--frobnicate"])
for verb in ("run", "explore", "replay", "campaign"):
    case(f"{verb}-missing-argument", [verb])
case("scenarios-extra-argument", ["scenarios", "extra"])
case("drivers-extra-argument", ["drivers", "extra"])
case("bugs-extra-argument", ["bugs", "extra"])
case("rules-unknown", ["rules", "XX-99"])
case("rules-empty-id", ["rules", ""])
case("rules-control-bytes", ["rules", "LA-\x1b[31m1"])
case("rules-two-ids", ["rules", "LA-1", "LA-2"])

# run and explore share the scenario options: each bad value on both
SHARED = [
    ("unknown-scenario", ["no-such-scenario"]),
    ("empty-scenario", [""]),
    ("param-not-int", ["-p", "frames=lots"]),
    ("param-unknown", ["-p", "colour=red"]),
    ("param-no-equals", ["-p", "novalue"]),
    ("param-empty-key", ["-p", "=3"]),
    ("param-float", ["-p", "frames=1.5"]),
    ("param-huge-digits", ["-p", "frames=" + "9" * 5000]),
    ("param-hex-huge", ["-p", "frames=0x" + "f" * 40]),
    ("param-vertices-over-ring", ["-p", "vertices=30"]),
    ("driver-module-missing", ["--driver", "no.such.module:Driver"]),
    ("driver-attr-missing", ["--driver", "umd:NoSuchDriver"]),
    ("driver-unknown-name", ["--driver", "not-a-variant"]),
    ("driver-colon-only", ["--driver", ":"]),
    ("driver-empty", ["--driver", ""]),
    ("driver-module-colon", ["--driver", "umd:"]),
    ("driver-colon-attr", ["--driver", ":make"]),
    ("driver-import-raises", ["--driver", "bi_raises_on_import:make"]),
    ("driver-syntax-error", ["--driver", "bi_syntax_error:make"]),
    ("driver-factory-raises", ["--driver", "bi_factory_raises:make"]),
    ("driver-factory-keyerror", ["--driver", "bi_factory_keyerror:make"]),
    ("driver-not-callable", ["--driver", "bi_not_a_driver:make"]),
    ("driver-factory-returns-int", ["--driver", "bi_not_a_driver:returns_int"]),
    ("driver-module-exits", ["--driver", "bi_exits:make"]),
    ("driver-opt-no-equals", ["--driver-opt", "colour"]),
    ("driver-opt-unknown", ["--driver-opt", "colour=red"]),
    ("driver-opt-not-int", ["--driver-opt", "heap_bytes=lots"]),
    ("driver-opt-negative-heap", ["--driver-opt", "heap_bytes=-1"]),
    ("ddi-version-word", ["--ddi-version", "eleven"]),
    ("ddi-version-negative", ["--ddi-version", "-1"]),
    ("ddi-version-huge", ["--ddi-version", "0x" + "f" * 30]),
    ("ddi-version-over-32-bits", ["--ddi-version", "0x100000000"]),
    ("ddi-version-empty", ["--ddi-version", ""]),
    ("bug-unknown", ["--bug", "no-such-bug"]),
    ("bug-empty", ["--bug", ""]),
    ("backend-unknown", ["--backend", "curio"]),
    ("depth-word", ["--depth", "deep"]),
    ("depth-zero", ["--depth", "0"]),
    ("depth-negative", ["--depth", "-3"]),
    ("depth-huge", ["--depth", "9" * 30]),
    ("pct-steps-zero", ["--pct-steps", "0"]),
    ("pct-steps-negative", ["--pct-steps", "-5"]),
    ("pct-steps-huge", ["--pct-steps", "9" * 30]),
    ("step-budget-zero", ["--step-budget", "0"]),
    ("step-budget-negative", ["--step-budget", "-1"]),
    ("step-budget-word", ["--step-budget", "lots"]),
    ("step-budget-huge", ["--step-budget", "9" * 30]),
    ("seed-negative", ["--seed", "-1"]),
    ("seed-word", ["--seed", "x"]),
    ("seed-huge", ["--seed", "9" * 40]),
    ("timeout-negative", ["--timeout", "-1"]),
    ("timeout-word", ["--timeout", "soon"]),
    ("timeout-nan", ["--timeout", "nan"]),
    ("timeout-inf", ["--timeout", "inf"]),
]
for name, extra in SHARED:
    for verb, head in (("run", ["run"]), ("explore", ["explore", "--schedules", "2"])):
        args = [*head, *extra] if name.endswith("scenario") else [
            *head, "dynamic-vb-ring", *extra]
        case(f"{verb}-{name}", args)

# every built-in scenario parameter below and above its range (checked before the run)
for sc_name in sorted(scenarios.REGISTRY):
    for p_name, p in scenarios.REGISTRY[sc_name].params.items():
        if p.range is None:
            continue
        lo, hi = p.range
        case(f"run-{sc_name}-{p_name}-below", ["run", sc_name, "-p", f"{p_name}={lo - 1}"])
        case(f"run-{sc_name}-{p_name}-above", ["run", sc_name, "-p", f"{p_name}={hi + 1}"])
for bad in ("frames=-1", "size=0", "stride=0", "pages=0", "cap=0", "instances=0"):
    key = bad.partition("=")[0]
    owner = next(n for n in sorted(scenarios.REGISTRY) if key in scenarios.REGISTRY[n].params)
    case(f"explore-{owner}-{bad}", ["explore", owner, "--schedules", "2", "-p", bad])

# run only
case("run-strategy-unknown", [*R, "--strategy", "chaos"])
case("run-strategy-replay", [*R, "--strategy", "replay"])
case("run-trace-no-dir", [*R, "--trace", "{d}/no/such/dir/t.jsonl"])
case("run-trace-empty", [*R, "--trace", ""])
case("run-trace-is-dir", [*R, "--trace", "{d}"])
case("run-trace-nul", [*R, "--trace", "a\x00b"])

# explore only
case("explore-schedules-zero", [*E, "--schedules", "0"])
case("explore-schedules-negative", [*E, "--schedules", "-4"])
case("explore-schedules-huge", [*E, "--schedules", "9" * 30])
case("explore-schedules-word", [*E, "--schedules", "many"])
case("explore-strategy-unknown", [*E, "--strategy", "chaos"])
case("explore-strategy-fifo", [*E, "--strategy", "fifo"])
case("explore-jobs-zero", [*E, "--jobs", "0"])
case("explore-jobs-negative", [*E, "--jobs", "-2"])
case("explore-jobs-word", [*E, "--jobs", "all"])
case("explore-preemption-bound-negative", [*E, "--preemption-bound", "-1"])
case("explore-preemption-bound-huge", [*E, "--preemption-bound", "9" * 30])
case("explore-save-dir-is-file", [*E, "--save-dir", "{d}/f.txt"], f__txt=b"x")
case("explore-save-dir-under-file", [*E, "--save-dir", "{d}/f.txt/sub"], f__txt=b"x")
case("explore-save-dir-empty", [*E, "--save-dir", ""])
case("explore-junit-under-file", [*E, "--junit", "{d}/f.txt/r.xml"], f__txt=b"x")
case("explore-junit-is-dir", [*E, "--junit", "{d}"])
case("explore-json-under-file", [*E, "--json", "{d}/f.txt/sub/r.json"], f__txt=b"x")
case("explore-json-is-dir", [*E, "--json", "{d}"])
case("explore-cluster-bad-address", [*E, "--cluster", "nonsense"])
case("explore-cluster-local-zero", [*E, "--cluster", "local:0"])
case("explore-cluster-local-word", [*E, "--cluster", "local:x"])

# replay: files that are not failure files
case("replay-missing-file", ["replay", "{d}/nope.json"])
case("replay-directory", ["replay", "{d}"])
case("replay-empty", ["replay", "{d}/f.json"], f__json=b"")
case("replay-not-json", ["replay", "{d}/f.json"], f__json=b"not json at all")
case("replay-binary", ["replay", "{d}/f.json"], f__json=bytes(range(256)))
case("replay-control-bytes", ["replay", "{d}/f.json"], f__json=b"\x1b[2J\x1b]0;pwned\x07")
case("replay-json-list", ["replay", "{d}/f.json"], f__json=b"[1, 2]")
case("replay-json-string", ["replay", "{d}/f.json"], f__json=b'"wddmemu-failure"')
case("replay-json-null", ["replay", "{d}/f.json"], f__json=b"null")
case("replay-wrong-format", ["replay", "{d}/f.json"], f__json=b'{"format": "other"}')
case("replay-no-version", ["replay", "{d}/f.json"], f__json=b'{"format": "wddmemu-failure"}')
case("replay-future-version", ["replay", "{d}/f.json"], f__json=_ff_doc({"version": 99}))
case("replay-version-string", ["replay", "{d}/f.json"], f__json=_ff_doc({"version": "2"}))
case("replay-no-spec", ["replay", "{d}/f.json"], f__json=_ff_doc({"spec": None}))
case("replay-spec-list", ["replay", "{d}/f.json"], f__json=_ff_doc({"spec": [1]}))
case("replay-no-failure", ["replay", "{d}/f.json"], f__json=_ff_doc({"failure": None}))
case("replay-failure-step-word", ["replay", "{d}/f.json"],
     f__json=_ff_doc({"failure": {"rule": "X", "step": "ten"}}))
case("replay-load-not-dict", ["replay", "{d}/f.json"], f__json=_ff_doc({"load": [1]}))
case("replay-load-modules-string", ["replay", "{d}/f.json"],
     f__json=_ff_doc({"load": {"modules": "os"}}))
case("replay-load-unallowed-module", ["replay", "{d}/f.json"],
     f__json=_ff_doc({"load": {"modules": ["this"]}}))
case("replay-load-unknown-distribution", ["replay", "{d}/f.json"],
     f__json=_ff_doc({"load": {"distributions": ["no-such-dist"]}}))
case("replay-unknown-spec-field", ["replay", "{d}/f.json"], f__json=_ff(colour="red"))
case("replay-unknown-scenario", ["replay", "{d}/f.json"], f__json=_ff(scenario="nope"))
case("replay-scenario-int", ["replay", "{d}/f.json"], f__json=_ff(scenario=3))
case("replay-driver-module", ["replay", "{d}/f.json"], f__json=_ff(driver="this:make"))
case("replay-driver-int", ["replay", "{d}/f.json"], f__json=_ff(driver=5))
case("replay-driver-unknown", ["replay", "{d}/f.json"], f__json=_ff(driver="nope"))
case("replay-no-decisions", ["replay", "{d}/f.json"], f__json=_ff(decisions=None))
case("replay-decisions-strings", ["replay", "{d}/f.json"], f__json=_ff(decisions=["a"]))
case("replay-decisions-int", ["replay", "{d}/f.json"], f__json=_ff(decisions=3))
case("replay-decisions-negative", ["replay", "{d}/f.json"], f__json=_ff(decisions=[-1, 0]))
case("replay-decisions-bool", ["replay", "{d}/f.json"], f__json=_ff(decisions=[True]))
case("replay-params-list", ["replay", "{d}/f.json"], f__json=_ff(params=[1]))
case("replay-param-out-of-range", ["replay", "{d}/f.json"], f__json=_ff(params={"frames": -1}))
case("replay-param-string", ["replay", "{d}/f.json"], f__json=_ff(params={"frames": "x"}))
case("replay-param-bool", ["replay", "{d}/f.json"], f__json=_ff(params={"frames": True}))
case("replay-param-float", ["replay", "{d}/f.json"], f__json=_ff(params={"frames": 2.5}))
case("replay-param-null", ["replay", "{d}/f.json"], f__json=_ff(params={"frames": None}))
case("replay-bugs-string", ["replay", "{d}/f.json"], f__json=_ff(bugs="x"))
case("replay-bug-unknown", ["replay", "{d}/f.json"], f__json=_ff(bugs=["nope"]))
case("replay-backend-unknown", ["replay", "{d}/f.json"], f__json=_ff(backend="curio"))
case("replay-seed-string", ["replay", "{d}/f.json"], f__json=_ff(seed="x"))
case("replay-step-budget-zero", ["replay", "{d}/f.json"], f__json=_ff(step_budget=0))
case("replay-step-budget-string", ["replay", "{d}/f.json"], f__json=_ff(step_budget="x"))
case("replay-queue-size-zero", ["replay", "{d}/f.json"], f__json=_ff(queue_size=0))
case("replay-queue-size-string", ["replay", "{d}/f.json"], f__json=_ff(queue_size="x"))
case("replay-ddi-version-string", ["replay", "{d}/f.json"], f__json=_ff(ddi_version="x"))
case("replay-ddi-version-negative", ["replay", "{d}/f.json"], f__json=_ff(ddi_version=-1))
case("replay-driver-options-list", ["replay", "{d}/f.json"], f__json=_ff(driver_options=[1]))
case("replay-driver-option-unknown", ["replay", "{d}/f.json"],
     f__json=_ff(driver_options={"colour": "red"}))
case("replay-strategy-unknown", ["replay", "{d}/f.json"], f__json=_ff(strategy="chaos"))
case("replay-huge-int", ["replay", "{d}/f.json"], f__json=_ff(seed=2**64 + 1))
case("replay-deep-nesting", ["replay", "{d}/f.json"], f__json=b"[" * 100_000)
case("replay-dev-null", ["replay", "/dev/null"])
case("replay-dev-zero", ["replay", "/dev/zero"])
case("replay-backend-option", ["replay", "{d}/f.json", "--backend", "curio"], f__json=_ff())
case("replay-trace-no-dir", ["replay", "{d}/f.json", "--trace", "{d}/no/such/dir/t.jsonl"],
     f__json=_ff())
case("replay-trace-is-dir", ["replay", "{d}/f.json", "--trace", "{d}"], f__json=_ff())

# campaign
case("campaign-missing-file", ["campaign", "{d}/nope.toml"])
case("campaign-directory", ["campaign", "{d}"])
case("campaign-not-toml", ["campaign", "{d}/c.toml"], c__toml=b"[[[")
case("campaign-binary", ["campaign", "{d}/c.toml"], c__toml=b"\xff\xfe\x00")
case("campaign-empty", ["campaign", "{d}/c.toml"], c__toml=b"")
case("campaign-no-scenarios", ["campaign", "{d}/c.toml"], c__toml=b"[campaign]\n")
case("campaign-unknown-key", ["campaign", "{d}/c.toml"], c__toml=CAMPAIGN + b"colour = 1\n")
case("campaign-extra-table", ["campaign", "{d}/c.toml"], c__toml=CAMPAIGN + b"[other]\n")
case("campaign-unknown-scenario", ["campaign", "{d}/c.toml"],
     c__toml=b'[campaign]\nscenarios = ["nope"]\n')
case("campaign-scenarios-string", ["campaign", "{d}/c.toml"],
     c__toml=b'[campaign]\nscenarios = "dynamic-vb-ring"\n')
case("campaign-unknown-driver", ["campaign", "{d}/c.toml"],
     c__toml=CAMPAIGN + b'drivers = ["nope"]\n')
case("campaign-unknown-strategy", ["campaign", "{d}/c.toml"],
     c__toml=CAMPAIGN + b'strategies = ["chaos"]\n')
case("campaign-schedules-zero", ["campaign", "{d}/c.toml"],
     c__toml=b'[campaign]\nscenarios = ["dynamic-vb-ring"]\nschedules = 0\n')
case("campaign-schedules-string", ["campaign", "{d}/c.toml"],
     c__toml=b'[campaign]\nscenarios = ["dynamic-vb-ring"]\nschedules = "x"\n')
case("campaign-ddi-negative", ["campaign", "{d}/c.toml"],
     c__toml=CAMPAIGN + b"ddi_versions = [-1]\n")
case("campaign-ddi-huge", ["campaign", "{d}/c.toml"],
     c__toml=CAMPAIGN + b"ddi_versions = [99999999999999999999]\n")
case("campaign-jobs-zero", ["campaign", "{d}/c.toml", "--jobs", "0"], c__toml=CAMPAIGN)
case("campaign-jobs-word", ["campaign", "{d}/c.toml", "--jobs", "x"], c__toml=CAMPAIGN)
case("campaign-junit-under-file", ["campaign", "{d}/c.toml", "--junit", "{d}/c.toml/r.xml"],
     c__toml=CAMPAIGN)
case("campaign-save-dir-is-file", ["campaign", "{d}/c.toml", "--save-dir", "{d}/c.toml"],
     c__toml=CAMPAIGN)

# trace summary / export / plot
for verb, out in (("summary", []), ("export", ["--chrome", "{d}/o.json"]),
                  ("plot", ["--png", "{d}/o.png"])):
    T = ["trace", verb]
    case(f"trace-{verb}-missing", [*T, "{d}/nope.jsonl", *out])
    case(f"trace-{verb}-directory", [*T, "{d}", *out])
    case(f"trace-{verb}-empty", [*T, "{d}/t.jsonl", *out], t__jsonl=b"")
    case(f"trace-{verb}-blank-lines", [*T, "{d}/t.jsonl", *out], t__jsonl=b"\n\n\n")
    case(f"trace-{verb}-not-json", [*T, "{d}/t.jsonl", *out], t__jsonl=b"hello\n")
    case(f"trace-{verb}-json-list", [*T, "{d}/t.jsonl", *out], t__jsonl=b"[1]\n")
    case(f"trace-{verb}-no-step", [*T, "{d}/t.jsonl", *out],
         t__jsonl=b'{"t":0,"event":"x"}\n')
    case(f"trace-{verb}-step-string", [*T, "{d}/t.jsonl", *out],
         t__jsonl=b'{"step":"0","t":0,"event":"x"}\n')
    case(f"trace-{verb}-thread-int", [*T, "{d}/t.jsonl", *out],
         t__jsonl=b'{"step":0,"t":0,"event":"x","thread":5}\n')
    case(f"trace-{verb}-bad-second-line", [*T, "{d}/t.jsonl", *out],
         t__jsonl=GOOD_TRACE + b"garbage\n" + GOOD_TRACE)
    case(f"trace-{verb}-control-bytes", [*T, "{d}/t.jsonl", *out],
         t__jsonl=b"\x1b]0;pwned\x07\x1b[2J\n")
    case(f"trace-{verb}-binary", [*T, "{d}/t.jsonl", *out], t__jsonl=bytes(range(256)))
    case(f"trace-{verb}-dev-zero", [*T, "/dev/zero", *out])
    case(f"trace-{verb}-unknown-option", [*T, "{d}/t.jsonl", "--frobnicate", *out],
         t__jsonl=GOOD_TRACE)
case("trace-no-subcommand-option", ["trace", "--frobnicate"])
case("trace-unknown-subcommand", ["trace", "frobnicate"])
case("trace-export-no-chrome", ["trace", "export", "{d}/t.jsonl"], t__jsonl=GOOD_TRACE)
case("trace-export-chrome-is-dir", ["trace", "export", "{d}/t.jsonl", "--chrome", "{d}"],
     t__jsonl=GOOD_TRACE)
case("trace-export-chrome-no-dir", ["trace", "export", "{d}/t.jsonl", "--chrome",
                                    "{d}/no/such/dir/o.json"], t__jsonl=GOOD_TRACE)
case("trace-export-time-unknown", ["trace", "export", "{d}/t.jsonl", "--chrome", "{d}/o.json",
                                   "--time", "wall"], t__jsonl=GOOD_TRACE)
case("trace-export-cpu-ns-zero", ["trace", "export", "{d}/t.jsonl", "--chrome", "{d}/o.json",
                                  "--cpu-ns", "0"], t__jsonl=GOOD_TRACE)
case("trace-export-cpu-ns-word", ["trace", "export", "{d}/t.jsonl", "--chrome", "{d}/o.json",
                                  "--cpu-ns", "x"], t__jsonl=GOOD_TRACE)
case("trace-plot-no-png", ["trace", "plot", "{d}/t.jsonl"], t__jsonl=GOOD_TRACE)
case("trace-plot-png-stdout", ["trace", "plot", "{d}/t.jsonl", "--png", "-"],
     t__jsonl=GOOD_TRACE)
case("trace-plot-png-is-dir", ["trace", "plot", "{d}/t.jsonl", "--png", "{d}"],
     t__jsonl=GOOD_TRACE)
case("trace-plot-width-small", ["trace", "plot", "{d}/t.jsonl", "--png", "{d}/o.png",
                                "--width", "1"], t__jsonl=GOOD_TRACE)
case("trace-plot-width-nan", ["trace", "plot", "{d}/t.jsonl", "--png", "{d}/o.png",
                              "--width", "nan"], t__jsonl=GOOD_TRACE)
case("trace-summary-json-flag-value", ["trace", "summary", "{d}/t.jsonl", "--json=yes"],
     t__jsonl=GOOD_TRACE)

# files named by a trace: never loaded (data only)
case("trace-ignores-load", ["--load", "bi_raises_on_import", "trace", "summary",
                            "{d}/nope.jsonl"])


def _fill(arg: str, d: Path) -> str:
    return arg.replace("{d}", str(d))


@pytest.fixture
def in_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, body in MODULES.items():
        (tmp_path / f"{name}.py").write_bytes(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # explore's default --save-dir stays in the test's directory
    for name in MODULES:
        sys.modules.pop(name, None)
    return tmp_path


def test_the_table_has_at_least_150_cases() -> None:
    assert len(CASES) >= 150
    assert len({n for n, _ in CASES}) == len(CASES)  # unique ids


def _slow(name: str) -> bool:
    """Cases the default suite leaves to the slow run (CI runs all): explore's copy of each
    shared option (the same parsing as run's), the above-range twin of each parameter, and the
    one that imports matplotlib. The default suite still runs most of the table."""
    return ((name.startswith("explore-") and name[8:] in SHARED_NAMES)
            or name.endswith("-above") or name == "trace-plot-bad-second-line")


SHARED_NAMES = {n for n, _ in SHARED}
PARAMS = [pytest.param(c, id=n, marks=[pytest.mark.slow] if _slow(n) else [])
          for n, c in CASES]


@pytest.mark.parametrize("case_", PARAMS)
def test_bad_input(case_: Case, in_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, code, files = case_
    for name, body in files.items():
        (in_dir / name).write_bytes(body)
    got = _cli.main([_fill(a, in_dir) for a in argv])
    err = capsys.readouterr().err
    assert got == code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wddmemu: error: "), err
    assert "internal error" not in err
    # control bytes are never echoed raw (a terminal would obey them)
    assert not any(ord(c) < 0x20 and c not in "\t" for c in lines[0]), repr(lines[0])


SUBPROCESS = ["run-param-huge-digits", "replay-dev-null", "trace-summary-dev-zero",
              "run-driver-import-raises", "explore-too-many-references-cap=0"]


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if i else [])
                                  for i, n in enumerate(SUBPROCESS)])
def test_bad_input_in_a_subprocess(name: str, in_dir: Path) -> None:
    argv, code, files = dict(CASES)[name]
    for fname, body in files.items():
        (in_dir / fname).write_bytes(body)
    env = {**os.environ, "PYTHONPATH": str(in_dir)}
    p = subprocess.run([sys.executable, "-m", "wddmemu._cli", *[_fill(a, in_dir) for a in argv]],
                       capture_output=True, text=True, timeout=60, env=env, cwd=in_dir)
    assert p.returncode == code, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
