"""The pytest plugin (entry point pytest11), exercised in an inner pytest run (pytester)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

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


def test_a_misspelled_failures_directory_is_an_error(pytester) -> None:
    result = pytester.runpytest("--wddmemu-failures", "no-such-dir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--wddmemu-failures: *no-such-dir is not a directory*"])


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


@pytest.mark.slow  # a long one (docs/testing.md); CI runs it with --slow
def test_driver_may_be_a_name_a_path_a_factory_or_a_class_not_an_instance(pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import umd
        import wddmemu
        from umd.variants import NoDriverLockDevice, no_driver_lock

        class Driver(umd.ReferenceDriver):
            pass

        FORMS = {
            "name": "no-driver-lock",
            "path": "umd.variants:no_driver_lock",
            "factory": no_driver_lock,
            "class": type("Unlocked", (umd.ReferenceDriver,),
                          {"device_class": NoDriverLockDevice}),
        }

        @pytest.mark.parametrize("form", FORMS)
        def test_each_form_finds_the_race(wddmemu, form):
            res = wddmemu.explore("reentrant-lockasync", driver=FORMS[form], schedules=100,
                                  ddi_version=0xB)
            assert res.failures and res.failures[0].finding.rule == "RACE"

        def test_a_clean_class(wddmemu):
            assert wddmemu.check("lock-flags", driver=Driver, schedules=3).ok

        def test_an_unnamed_factory_fails_without_saving(wddmemu):
            wddmemu.check("reentrant-lockasync", driver=lambda: no_driver_lock(0xB),
                          schedules=100)

        def test_an_instance_is_refused(wddmemu):
            wddmemu.check("reentrant-lockasync", driver=no_driver_lock(driver_version=0xB),
                          schedules=100)

        def test_unknown_scenario(wddmemu):
            wddmemu.check("no-such-scenario")

        def test_unknown_driver(wddmemu):
            wddmemu.check("lock-flags", driver="no-such-driver")
        """
    )
    result = pytester.runpytest("-rf")
    result.assert_outcomes(passed=5, failed=4)
    out = result.stdout.str()
    failed = sorted(line.split("::")[1].split()[0] for line in out.splitlines()
                    if line.startswith("FAILED "))
    assert failed == ["test_an_instance_is_refused", "test_an_unnamed_factory_fails_without_saving",
                      "test_unknown_driver", "test_unknown_scenario"]
    # named as messages name it, no memory address (sweep G D5)
    assert re.search(r"not saved: the driver \S*test_an_unnamed_factory_fails_without_saving"
                     r"\.<locals>\.<lambda> has no name to save", out), out
    assert " at 0x" not in out
    assert "the driver ReferenceDriver() is an object, not a factory or class" in out
    assert "wddmemu.register_driver(name, factory)" in out
    assert "wddmemu: unknown scenario 'no-such-scenario'" in out
    assert "wddmemu: unknown driver 'no-such-driver'" in out
    assert "wddmemu/_" not in out  # one-line failures: no traceback through the internals


def test_failures_can_be_saved_into_the_project(pytester) -> None:
    pytester.makepyfile(
        """
        def test_finds(wddmemu):
            wddmemu.check("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB,
                          schedules=50)
        """
    )
    keep = Path(pytester.path) / "kept-failures"
    result = pytester.runpytest("--wddmemu-save-dir", str(keep))
    result.assert_outcomes(failed=1)
    saved = sorted(keep.glob("*.json"))
    assert saved and "RACE" in saved[0].name
    # and that directory replays as a regression test
    again = pytester.runpytest("--wddmemu-failures", str(keep), "-k", "not test_finds")
    again.assert_outcomes(failed=1)


def test_check_fails_with_the_explanation_and_the_users_traceback(pytester) -> None:
    """``check`` fails with what ``explore`` prints (the user's frame of an exception, the
    trace excerpt, the replay command), and ``acheck`` with the traceback: a driver author
    sees where their code raised without rerunning anything."""
    pytester.makepyfile(
        """
        import pytest
        import umd

        class Raises(umd.ReferenceDevice):
            async def pfn_rename(self, args):
                raise ValueError("rename exploded")  # THE-USER-LINE

        def make():
            return umd.ReferenceDriver(device_class=Raises)

        def test_sync(wddmemu):
            wddmemu.check("dynamic-vb-ring", driver=make, schedules=3, strategy="random")

        @pytest.mark.trio
        async def test_async(wddmemu):
            await wddmemu.acheck("dynamic-vb-ring", driver=make, schedules=3)
        """
    )
    result = pytester.runpytest("-rf")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert out.count("THE-USER-LINE") >= 2  # the source line under the user frame, each test
    assert out.count("ValueError: rename exploded") >= 2
    assert "exception at step" in out and "(schedule 0, counted from 0; 1 run)" in out
    # the file lists the test module (the driver's MODULE:ATTR): its replay must allow it
    assert ("replay: wddmemu --allow-load test_check_fails_with_the_explanation_and_the_users_"
            "traceback replay ") in out and "replay: wddmemu run dynamic-vb-ring" in out


def test_the_fixture_takes_queue_size_and_step_budget(pytester) -> None:
    pytester.makepyfile(
        """
        def test_budget(wddmemu):
            res = wddmemu.explore("dynamic-vb-ring", schedules=1, step_budget=40, queue_size=2)
            assert res.failures[0].finding.rule == "step-budget"
            assert res.failures[0].spec.queue_size == 2

        def test_bad_queue(wddmemu):
            wddmemu.check("dynamic-vb-ring", queue_size=0)
        """
    )
    result = pytester.runpytest("-rf")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*wddmemu: queue-size takes an integer 1..65,536, not 0*"])


def test_the_default_save_directory_is_collected_though_hidden(pytester) -> None:
    # explore saves to .wddmemu/failures; pytest skips ".*" directories when it recurses, and
    # the documented `pytest --wddmemu-failures .wddmemu/failures` collected nothing (exit 5)
    d = Path(pytester.path) / ".wddmemu" / "failures"
    d.mkdir(parents=True)
    base = RunSpec("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB)
    found = explore(base, ExploreOptions(schedules=100, strategy="pct", max_replays=30))
    save_failure(found.failures[0], d)
    (Path(pytester.path) / ".hidden").mkdir()
    (Path(pytester.path) / ".hidden" / "test_not_ours.py").write_text("def test_x(): pass\n")
    result = pytester.runpytest("--wddmemu-failures", ".wddmemu/failures")
    result.assert_outcomes(failed=1)  # the failure file; other ".*" directories stay skipped
    result.stdout.fnmatch_lines(["*reproduced: RACE at step*"])
