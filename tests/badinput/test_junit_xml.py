"""The JUnit report is well-formed XML whatever a finding's text holds (sweep H D3): a driver's
``ValueError("bad byte \\x01 …")`` went raw into ``message=`` and no XML parser would read the
report. Each character XML 1.0 forbids is shown as its escape (``\\x01``), all else unchanged."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wddmemu import _cli
from wddmemu._explore import ExploreResult, Finding, Found
from wddmemu._reports import CellReport, junit_xml, xml_safe
from wddmemu._runner import RunSpec

#: every character, lone surrogates too, with the forbidden ones drawn often
_FORBIDDEN = "\x00\x01\x08\x0b\x0c\x0e\x1b\x1f\ud800\udfff\ufffe\uffff"
_CHARS = st.one_of(st.characters(exclude_categories=()), st.sampled_from(_FORBIDDEN),
                   st.sampled_from("\t\n\r&<>\"'\\"))
_ANY = st.text(_CHARS)


def _xml_char(c: str) -> bool:
    """XML 1.0's ``Char`` production, written out apart from the code under test."""
    n = ord(c)
    return c in "\t\n\r" or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000


def _cell(message: str, thread: str, path: str, option: str) -> CellReport:
    spec = RunSpec("lock-flags", driver_options={"opt": option})
    fd = Found(0, spec.with_decisions((0,)), Finding("RACE", 3, message, thread), spec)
    return CellReport(spec, "pos", 1, ExploreResult(1, (fd,), 0), (Path(path),))


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")  # what any XML parser reads a CR as


@settings(max_examples=300, deadline=None)
@given(message=_ANY, thread=st.text(_CHARS, min_size=1), path=_ANY, option=_ANY)
def test_any_text_makes_a_well_formed_report(message: str, thread: str, path: str,
                                             option: str) -> None:
    root = ET.fromstring(junit_xml([_cell(message, thread, path, option)]))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == f"RACE at step 3: {xml_safe(message)}"
    assert _newlines(f"on {xml_safe(thread)}") in _newlines(failure.text or "")
    assert _newlines(f"saved: {xml_safe(str(Path(path)))}") in _newlines(failure.text or "")
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["driver_options"] == f"opt={xml_safe(option)}"


@given(_ANY)
def test_only_what_xml_forbids_is_escaped(text: str) -> None:
    safe = xml_safe(text)
    assert all(map(_xml_char, safe))
    if all(map(_xml_char, text)):
        assert safe == text  # every other character byte-identical


def test_the_escape_is_the_one_the_terminal_shows() -> None:
    assert xml_safe("a\x01b\x1b[31m\t\n\r\ud800\uffff\x7f") == \
        "a\\x01b\\x1b[31m\t\n\r\\ud800\\uffff\x7f"


def test_explore_junit_of_a_driver_raising_controls_parses(tmp_path: Path, monkeypatch) -> None:
    """The sweep's reproducer: explore --junit, a driver whose exception message holds \\x01
    and \\x1b; the report parses and shows both escaped."""
    (tmp_path / "ctrl_msg_drv.py").write_text(
        "import umd\n"
        "class P(umd.DriverPolicy):\n"
        "    def rename_target(self, device, cookie, tracking):\n"
        "        raise ValueError('bad byte \\x01 and \\x1b[31m from the driver')\n"
        "def make(driver_version=None):\n"
        "    return umd.ReferenceDriver(policy=P())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    junit = tmp_path / "ctrl.xml"
    code = _cli.main(["explore", "dynamic-vb-ring", "--driver", "ctrl_msg_drv:make",
                      "--schedules", "2", "--save-dir", str(tmp_path / "f"),
                      "--junit", str(junit)])
    assert code == 1
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and failure.get("type") == "exception"
    for text in (failure.get("message") or "", failure.text or ""):
        assert "bad byte \\x01 and \\x1b[31m from the driver" in text
