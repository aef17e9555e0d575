"""Explanations a person reads without the trace (issue 11): what ``explore`` prints under a
failure, from real runs — both sides of a race, teardown events labelled as such, each
message once, flags, codes and handles by name."""

from __future__ import annotations

import re

from wddmemu import ExploreOptions, RunSpec, explore
from wddmemu._reports import explain_lines


def _first(spec: RunSpec, schedules: int = 20, strategy: str = "pct"):
    res = explore(spec, ExploreOptions(schedules=schedules, strategy=strategy, minimise=False))
    assert res.failures, "the seeded bug was not found"
    return res.failures[0]


def test_a_race_shows_both_threads_up_to_their_accesses() -> None:
    fd = _first(RunSpec("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB))
    assert fd.finding.rule == "RACE"
    lines = explain_lines(fd)
    m = re.search(r": (\S+) at \S+ \(step (\d+)\) and (\S+) at \S+ \(step (\d+)\)",
                  fd.finding.message)
    assert m
    heads = [ln for ln in lines if ", last events up to step" in ln]
    assert sorted(heads) == sorted([f"{m[1]}, last events up to step {m[2]}:",
                                    f"{m[3]}, last events up to step {m[4]}:"])
    assert m[1] != m[3]


def test_each_message_is_printed_once() -> None:
    fd = _first(RunSpec("dynamic-vb-ring", driver="track-in-lockasync"), schedules=5)
    text = "\n".join(explain_lines(fd))
    assert text.count(fd.finding.message) == 1  # not in the excerpt, not in the list again
    assert "rule=LA-13 (the finding above)" in text
    assert "LA-13 on dev0.worker: the finding above" in text and "DATA" in text
    assert "before the break" not in text


def test_a_final_check_finding_labels_the_teardown_and_a_body_finding_does_not() -> None:
    fd = _first(RunSpec("discard-every-frame", driver="tests.thirdparty.drivers:drops_draws"),
                schedules=1, strategy="random")
    assert fd.finding.rule == "DATA"
    lines = explain_lines(fd)
    assert any("comes from the final checks, after the teardown" in ln for ln in lines)
    assert any(ln.startswith("  step") and "(teardown)" in ln for ln in lines)
    # met in the body while the app had already begun closing: the worker was still running
    # the body's commands, so none of its events is teardown
    fd = _first(RunSpec("dynamic-vb-ring", driver="track-in-lockasync"), schedules=5)
    lines = explain_lines(fd)
    worker = lines[lines.index("dev0.worker, last events up to step "
                               f"{fd.finding.step}:") + 1:][:6]
    assert worker and not any("(teardown)" in ln for ln in worker)


def test_the_excerpt_names_handles_and_decodes_flags_and_codes() -> None:
    fd = _first(RunSpec("reentrant-lockasync", driver="no-driver-lock", ddi_version=0xB))
    text = "\n".join(explain_lines(fd))
    assert re.search(r"ddi=UnlockAsync resource=vb\d@dev\d", text)
    assert re.search(r"allocations=\[vb\d@dev\d inst \d+ \(0x[0-9a-f]+\)\]", text)
    assert "flags=DonotWait|IgnoreSync|LockEntire" in text  # pfnLockCb's word, by name
    assert "hr_name=S_OK" in text and " hr=0x" not in text
    assert not re.search(r"allocation=\d", text)  # no raw handle left
