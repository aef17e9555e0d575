"""Mutation testing of the oracles: every verdict a user gets rests on these modules.

    .venv/bin/python bench/mutants.py                 # every target below (minutes)
    .venv/bin/python bench/mutants.py --only vthreads/_hb.py
    .venv/bin/python bench/mutants.py --list

Each target is a module that decides a verdict (the engine core, happens-before, strategies, the
checker, the DDI-version gate, the kernel's lock and flag validation) with the fast tests that
guard it. For each target the script copies the working tree to a temporary directory, writes a
``[tool.mutmut]`` section restricted to that one module and that test selection, runs `mutmut`
(a well-kept mutation tester: one small semantic edit per mutant, each run against the selected
tests), and reads its results. A mutant the tests do not notice *survives*. Survivors that are
equivalent to the original (no test could ever tell them apart) are listed with the reason in
``bench/mutants_equivalent.toml``; every other survivor is a test to write.

Prints one row per target (mutants, killed, survived, equivalent, timeouts, score = killed over
the non-equivalent ones) and then each non-equivalent survivor with its diff. Exits 1 when a
non-equivalent mutant survives, 2 on bad arguments. Not part of CI: it takes minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT_FILE = ROOT / "bench" / "mutants_equivalent.toml"
#: the checker's tests: its own directory, and the one third-party-driver test that reads the
#: data oracle's DATA message whole (which instance the GPU read, who made it, who submitted the
#: draw: text only a full scenario run produces)
CHECKER_TESTS = ["tests/checker", "tests/thirdparty/test_thirdparty.py::"
                 "test_messages_name_the_ddi_the_thread_the_flags_and_the_handles"]
#: module → the fast tests that guard it (what mutmut runs against each of its mutants)
TARGETS: dict[str, list[str]] = {
    "vthreads/_hb.py": ["tests/engine"],
    "vthreads/_engine.py": ["tests/engine"],
    # with the trace writer's fast-path tests: write_name's engine side (_emit_one) lives here
    "vthreads/_events.py": ["tests/engine", "tests/trace/test_fast_lines.py"],
    "vthreads/_trampoline.py": ["tests/engine"],
    "vthreads/_reports.py": ["tests/engine"],
    "vthreads/_sync.py": ["tests/engine"],
    "vthreads/_strategies.py": ["tests/engine"],
    "wddmemu/_checker.py": CHECKER_TESTS,
    "wddmemu/_checker_ddi.py": CHECKER_TESTS,
    "wddmemu/_checker_cb.py": CHECKER_TESTS,
    "wddmemu/_checker_data.py": CHECKER_TESTS,
    "wddmemu/_checker_state.py": CHECKER_TESTS,
    "vthreads/_lowlevel.py": ["tests/engine"],
    "vthreads/_timers.py": ["tests/engine"],
    "runtime/_ddi.py": ["tests/runtime", "tests/checker", "tests/badinput/test_driver_outputs.py"],
    "kmd/flags.py": ["tests/kmd"],
    "kmd/_lock.py": ["tests/kmd"],
}
#: mutmut's worker processes: it defaults to one per CPU, which on the shared 2-core machine
#: starves the other helpers' benchmarks (whose ratios then mean nothing); 2 at most
MAX_CHILDREN = 2
#: tests a target's mutants leave out although its test directory holds them: every test in
#: tests/engine runs through the engine core and the trampoline, so a surviving mutant of
#: those two runs the whole directory, and DPOR's brute-force comparisons are two thirds of its
#: time (about 45 s a survivor on the shared machine); the engine's mutant tests carry a small
#: DPOR case of their own (tests/engine/test_engine_mutants.py)
LEAVE_OUT: dict[str, list[str]] = {
    "vthreads/_engine.py": ["tests/engine/test_dpor.py"],
    "vthreads/_events.py": ["tests/engine/test_dpor.py"],
    "vthreads/_trampoline.py": ["tests/engine/test_dpor.py"],
}
PACKAGES = ["vthreads", "kmd", "umd", "runtime", "scenarios", "wddmemu"]
#: tests of the source's shape (sizes, imports, frames), not of its behaviour: mutmut's copy inlines
#: every mutant next to the original (``runtime/_ddi.py``'s DdiDoor grows to 3,000 lines) and
#: adds its own import, so these fail on the clean copy and stop mutmut before any mutant runs
SHAPE_TESTS = [
    "tests/test_sizes.py::test_no_class_over_400_lines_and_no_function_over_60",
    "tests/runtime/test_layout.py::test_runtime_imports_only_vthreads_kmd_and_the_ddi_seam",
    "tests/kmd/test_architecture.py::test_kmd_imports_only_vthreads_and_itself",
    # a warning's stacklevel counts frames, and mutmut's trampoline adds one between the class
    # statement and __init_subclass__: the warning points into mutmut on the clean copy too
    "tests/engine/test_strategies_mutants.py::"
    "test_the_legacy_warning_points_at_the_class_definition",
]


@dataclass
class Outcome:
    target: str
    statuses: dict[str, str] = field(default_factory=dict)  # mutant name → mutmut's status
    diffs: dict[str, str] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0  # wall time of the whole mutmut run (a shared machine: indicative)

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)


def _copy_tree(dest: Path) -> None:
    """The working tree's tracked and untracked-but-not-ignored files (what a commit would
    hold), without the venv or caches."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\n")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file():
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)


def _config(target: str, tests: list[str]) -> str:
    deselect = SHAPE_TESTS + LEAVE_OUT.get(target, [])
    def arr(xs: list[str]) -> str:
        return "[" + ", ".join(f'"{x}"' for x in xs) + "]"

    return (
        "\n[tool.mutmut]\n"
        f"source_paths = {arr(PACKAGES)}\n"
        f"only_mutate = {arr([target])}\n"
        'also_copy = ["bench", "docs", "README.md", ".ci"]\n'
        f"pytest_add_cli_args_test_selection = {arr(tests)}\n"
        # a fixed Hypothesis seed: mutmut's copy has no example database, so a randomised
        # property test would draw new examples on every run, and one that fails in the clean
        # run (tests/runtime's random app programs did) stops mutmut before any mutant runs
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q", "--hypothesis-seed=0", '
        + ", ".join(f'"--deselect", "{t}"' for t in deselect) + "]\n"
    )


def run_target(target: str, tests: list[str], mutmut: str, keep: Path | None,
               children: int = MAX_CHILDREN) -> Outcome:
    """Mutate ``target`` alone in a fresh copy of the tree, running at most ``children`` test
    processes at once; return every mutant's status."""
    out = Outcome(target)
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="wddmemu-mutants-"))
    try:
        _copy_tree(work)
        with (work / "pyproject.toml").open("a", encoding="utf-8") as f:
            f.write(_config(target, tests))
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        run = subprocess.run([mutmut, "run", "--max-children", str(children)], cwd=work,
                             env=env, capture_output=True, text=True)
        res = subprocess.run([mutmut, "results", "--all", "true"], cwd=work, env=env,
                             capture_output=True, text=True)
        if res.returncode != 0:
            res = subprocess.run([mutmut, "results"], cwd=work, env=env, capture_output=True,
                                 text=True)
        for line in res.stdout.splitlines():
            name, sep, status = line.strip().rpartition(": ")
            if sep and name:
                out.statuses[name] = status.strip()
        if not out.statuses or all(st == "not checked" for st in out.statuses.values()):
            # mutmut could not run the clean tests in its copy: say why instead of a 0 % score
            out.error = (run.stdout[-2000:] + run.stderr[-2000:]).strip() or "no mutants"
        for name, status in out.statuses.items():
            if status == "survived":
                show = subprocess.run([mutmut, "show", name], cwd=work, env=env,
                                      capture_output=True, text=True)
                out.diffs[name] = show.stdout.strip()
    finally:
        out.seconds = time.monotonic() - start
        if keep is not None:
            dest = keep / target.replace("/", "_")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(work, dest, symlinks=True)
        shutil.rmtree(work, ignore_errors=True)
    return out


def _listed(table: str) -> dict[str, str]:
    """``[equivalent]`` (no test can tell them apart) or ``[killed_elsewhere]`` (a test kills
    them that mutmut's copy cannot run, named with the reason) of bench/mutants_equivalent.toml."""
    if not EQUIVALENT_FILE.is_file():
        return {}
    data = tomllib.loads(EQUIVALENT_FILE.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.get(table, {}).items()}


def report(outcomes: list[Outcome], equivalent: dict[str, str],
           elsewhere: dict[str, str] | None = None) -> int:
    """Print the table and the survivors; return the number of survivors neither equivalent nor
    killed elsewhere (those count as killed: their test fails on them in the real tree)."""
    elsewhere = elsewhere or {}
    print(f"{'target':28} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv':>5} "
          f"{'timeout':>7} {'score':>6} {'time':>6}")
    bad: list[tuple[str, str]] = []
    total_killed = total_live = 0
    for o in outcomes:
        if o.error:
            print(f"{o.target:28} error: {o.error.splitlines()[-1] if o.error else ''}")
            continue
        survivors = [n for n, s in o.statuses.items() if s == "survived"]
        eq = [n for n in survivors if n in equivalent]
        moved = sum(1 for n in survivors if n in elsewhere)
        killed = o.count("killed") + moved
        timeouts = o.count("timeout")
        live = len(o.statuses) - len(eq) - o.count("skipped")
        total_killed += killed + timeouts
        total_live += live
        score = (killed + timeouts) / live if live else 1.0
        alive = len(survivors) - moved
        print(f"{o.target:28} {len(o.statuses):7} {killed:6} {alive:8} {len(eq):5} "
              f"{timeouts:7} {score:6.1%} {o.seconds / 60:5.1f}m")
        bad += [(n, o.diffs.get(n, "")) for n in survivors
                if n not in equivalent and n not in elsewhere]
    if total_live:
        print(f"{'all':28} {'':7} {'':6} {'':8} {'':5} {'':7} {total_killed / total_live:6.1%}")
    for name, diff in bad:
        print(f"\nsurvived: {name}\n{diff}")
    if equivalent:
        print("\nequivalent (bench/mutants_equivalent.toml):")
        for name, why in equivalent.items():
            print(f"  {name}: {why}")
    if elsewhere:
        print("\nkilled by a test mutmut's copy cannot run (bench/mutants_equivalent.toml):")
        for name, why in elsewhere.items():
            print(f"  {name}: {why}")
    return len(bad)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", default=[], metavar="MODULE",
                   help="mutate only this target (repeatable); see --list")
    p.add_argument("--list", action="store_true", help="print the targets and their tests")
    p.add_argument("--keep", type=Path, default=None,
                   help="copy each work tree here afterwards (to inspect with mutmut browse)")
    p.add_argument("--max-children", type=int, default=MAX_CHILDREN, metavar="N",
                   help=f"mutmut's parallel test processes (default {MAX_CHILDREN}: the machine "
                        "is shared)")
    args = p.parse_args(argv)
    if args.max_children < 1:
        print("mutants: --max-children must be at least 1", file=sys.stderr)
        return 2
    if args.list:
        for t, tests in TARGETS.items():
            out = "".join(f" -{x}" for x in LEAVE_OUT.get(t, []))
            print(f"{t}: {' '.join(tests)}{out}")
        return 0
    unknown = [t for t in args.only if t not in TARGETS]
    if unknown:
        print(f"mutants: unknown target {unknown[0]!r}: see --list", file=sys.stderr)
        return 2
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which(
        "mutmut")
    if mutmut is None:
        print("mutants: mutmut is not installed: pip install mutmut", file=sys.stderr)
        return 2
    missing = [t for t in (args.only or TARGETS) if not (ROOT / t).is_file()]
    if missing:
        print(f"mutants: {missing[0]} does not exist: update TARGETS", file=sys.stderr)
        return 2
    outcomes = [run_target(t, TARGETS[t], mutmut, args.keep, args.max_children)
                for t in (args.only or TARGETS)]
    return 1 if report(outcomes, _listed("equivalent"), _listed("killed_elsewhere")) else 0


if __name__ == "__main__":
    sys.exit(main())
