"""vthreads.registry: the one mechanism behind scenarios, drivers, variants and seeded bugs."""

from __future__ import annotations

import pytest

from vthreads.registry import Registry, RegistryError


def test_register_as_decorator_keeps_order_rules_and_summary() -> None:
    reg: Registry[type] = Registry("thing")

    @reg.register("b", rules=("LA-13",))
    class B:
        """Second letter.

        More text."""

    reg.register("a", int, summary="ints")
    assert reg.names() == ("b", "a")
    assert reg["b"] is B and reg["a"] is int
    e = reg.entry("b")
    assert (e.rules, e.summary, e.module) == (("LA-13",), "Second letter.", __name__)
    assert "a" in reg and "c" not in reg and len(reg) == 2


def test_unknown_and_duplicate_names_are_one_line_errors() -> None:
    reg: Registry[object] = Registry("driver")
    reg.register("x", object())
    with pytest.raises(RegistryError) as ei:
        reg["y"]
    assert str(ei.value) == "unknown driver 'y': choose from x"
    with pytest.raises(RegistryError, match="registered already"):
        reg.register("x", object())
    reg.register("x", 5, replace=True)
    assert reg["x"] == 5
    reg.unregister("x")
    assert reg.names() == ()
    with pytest.raises(ValueError):
        reg.register("", 1)


def test_a_docstring_summary_is_its_first_paragraph_on_one_line() -> None:
    """A summary wrapped over two lines is listed whole, not cut at the line's end."""
    reg = Registry("thing")

    def wrapped() -> None:
        """Does the first thing and then,
        after a line break, the second.

        Details nobody lists."""

    reg.register("w", wrapped)
    reg.register("none", lambda: None)
    reg.register("given", wrapped, summary="mine")
    assert [e.summary for e in reg.entries()] == [
        "Does the first thing and then, after a line break, the second.", "", "mine"]
