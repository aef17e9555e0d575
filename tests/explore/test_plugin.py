"""The pytest plugin (entry point pytest11), exercised in an inner pytest run (pytester)."""

from __future__ import annotations

from pathlib import Path

import orjson

from wddmemu._explore import ExploreOptions, explore, save_failure
from wddmemu._runner import RunSpec


def test_a_directory_of_failure_files_becomes_regression_tests(pytester) -> None:
    d = Path(pytester.mkdir("failures"))
    base = RunSpec("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB)
    found = explore(base, ExploreOptions(schedules=100, strategy="pct", max_replays=30))
    bug = save_failure(found.failures[0], d)
    # the same schedule after the "fix": the reference driver
    doc = orjson.loads(bug.read_bytes())
    doc["spec"]["driver"] = "reference"
    (d / "fixed.json").write_bytes(orjson.dumps(doc))
    result = pytester.runpytest("--wddmemu-failures", str(d))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*reproduced: RACE at step*", "*replay: wddmemu replay*"])


def test_the_wddmemu_fixture(pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import vthreads as vt

        def test_reference_is_clean(wddmemu):
            res = wddmemu.check("reentrant-lockasync", ddi_version=0xB, schedules=20)
            assert res.runs == 20 and res.ok

        def test_seeded_bug_fails_with_the_replay_command(wddmemu):
            wddmemu.check("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB,
                          schedules=100)

        def test_own_program(wddmemu):
            async def prog():
                c = vt.SharedCell("x", 0)

                async def inc():
                    await c.write(await c.read("read") + 1, "write")

                a, b = vt.spawn("a", inc), vt.spawn("b", inc)
                await a.join()
                await b.join()

            wddmemu.check_program(prog, schedules=5)

        @pytest.mark.trio
        async def test_inside_trio(wddmemu):
            assert await wddmemu.acheck("lock-flags", schedules=3) == 3
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*test_reference_is_clean PASSED*",
        "*test_seeded_bug_fails_with_the_replay_command FAILED*",
        "*test_own_program FAILED*",
        "*test_inside_trio PASSED*",
        "*RACE at step*",
        "*replay: wddmemu replay*",
        "*race on x*",
    ])


def test_command_line_options_override_schedules_and_seed(pytester) -> None:
    pytester.makepyfile(
        """
        def test_count(wddmemu):
            res = wddmemu.check("lock-flags", schedules=50, strategy="random")
            assert res.runs == 7
        """
    )
    result = pytester.runpytest("--wddmemu-schedules", "7", "--wddmemu-seed", "100")
    result.assert_outcomes(passed=1)
