"""Sweep H D2: a str that is no UTF-8 (a lone surrogate: an argv byte that was no UTF-8, as
``-p s=$'\\xff'`` gives a scenario's str parameter) made orjson raise inside the trace writer,
so the traced run failed with a TypeError the untraced one never had. Tracing never changes an
outcome: the line carries the str escaped, and the run ends as it does untraced."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

import vthreads as vt

ODD = "a\udcffb"  # what os.fsdecode makes of b"a\xffb"


async def _program() -> str:
    mutex = vt.Mutex(f"lock {ODD}")
    ready = vt.Event(f"ready {ODD}")

    async def other() -> None:
        async with mutex:
            vt.log("odd.field", value=ODD, **{ODD: 1})
        for _ in range(5):  # decisions between the two threads: sched lines naming both
            async with mutex:
                pass
        ready.set()

    t = vt.spawn(f"worker {ODD}", other)
    for _ in range(5):
        async with mutex:
            pass
    await ready.wait()
    await t.join()
    return ODD


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_str_that_is_no_utf8_is_escaped_and_changes_no_outcome(backend: str) -> None:
    off = vt.Engine("random", seed=1, backend=backend).run(_program)
    buf = io.BytesIO()
    on = vt.Engine("random", seed=1, backend=backend, trace=buf).run(_program)
    assert off.failure is None and on.failure is None, on.failure
    assert on.value == off.value == ODD
    lines: list[dict[str, Any]] = [orjson.loads(x) for x in buf.getvalue().splitlines()]
    escaped = "a\\udcffb"
    (odd,) = [x for x in lines if x["event"] == "odd.field"]
    assert odd["value"] == escaped and odd[escaped] == 1
    assert any(x.get("thread") == f"worker {escaped}" for x in lines)
    assert any(x.get("mutex") == f"lock {escaped}" for x in lines)
    scheds = [x for x in lines if x["event"] == "sched"]
    assert scheds and any(f"worker {escaped}" in (x["thread"], x["next"]) for x in scheds)


def test_a_param_that_is_no_utf8_is_refused_before_any_run(capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    """The CLI refuses such a ``-p`` (or ``--driver-opt``) value before the first schedule:
    explore ran them all, then could not save the failure file (JSON takes no such str)."""
    from wddmemu import _cli

    for option in ("-p", "--driver-opt"):
        assert _cli.main(["explore", "dynamic-vb-ring", option, f"frames={ODD}"]) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [
            f"wddmemu: error: {option} takes text, and 'frames=a\\udcffb' has a byte that is "
            "not UTF-8: give it as UTF-8 text"], err
