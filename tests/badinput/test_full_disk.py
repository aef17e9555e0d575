"""Sweep H D4: a standard output on a full disk (``wddmemu rules >/dev/full``) was exit 3,
"internal error: OSError: [Errno 28]", and a finding's exit 1 became 3 with it. It is the
machine's condition: one line, exit 2, and no second error from Python's flush at exit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ARGS = [["rules"], ["scenarios"], ["run", "dynamic-vb-ring", "--driver", "track-in-lockasync"]]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("args", ARGS, ids=lambda a: a[0])
def test_a_full_disk_on_stdout_is_one_line_exit_2(args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "wddmemu", *args], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.splitlines() == [
        "wddmemu: error: the output could not be written (No space left on device): free "
        "some space, or send it elsewhere"], p.stderr
