"""The runtime's layout promises: seeded bugs are hook overrides picked from a registry (never
inline checks), they compose, and the package imports only the layers below it."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

import kmd
import runtime as rt
import umd
import vthreads as vt
from runtime import d3d9
from umd.ddi import D3DDDI_LOCKASYNCFLAGS
from vthreads.registry import RegistryError

from .test_device import DISCARD, TRI, pattern, run_app

RUNTIME = Path(rt.__file__).parent
SOURCES = sorted(RUNTIME.glob("*.py"))
#: the seeded bugs' own module: the one place bug names may appear
BUGS_MODULE = RUNTIME / "_bugs.py"
#: ``"x" in self.bugs``, ``in config.bugs``…: the inline checks the hooks replaced
INLINE_CHECK = re.compile(r"\bin\s+(?:self\.)?(?:config\.|_dev\.)?bugs\b")


def test_runtime_bugs_is_the_registry_with_rule_ids() -> None:
    names = rt.RUNTIME_BUG_REGISTRY.names()
    assert list(rt.RUNTIME_BUGS) == list(names) and len(names) == 18
    for e in rt.RUNTIME_BUG_REGISTRY.entries():
        assert e.rules, f"{e.name}: a seeded bug names the rule ids it trips"
        assert issubclass(e.obj, rt.RuntimeHooks)
        assert rt.RUNTIME_BUGS[e.name] == e.summary and e.summary
    with pytest.raises(KeyError):
        rt.RUNTIME_BUGS["no-such-bug"]
    with pytest.raises(ValueError, match="unknown runtime bug 'no-such-bug'"):
        rt.DeviceConfig(bugs=frozenset({"no-such-bug"}))


def test_production_code_names_no_seeded_bug() -> None:
    for path in SOURCES:
        if path == BUGS_MODULE:
            continue
        text = path.read_text(encoding="utf-8")
        named = [n for n in rt.RUNTIME_BUGS if n in text]
        assert not named, f"{path.name} mentions seeded bug(s) {named}: make it a hook override"
        assert not INLINE_CHECK.search(text), f"{path.name} tests DeviceConfig.bugs inline"


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def test_runtime_imports_only_vthreads_kmd_and_the_ddi_seam() -> None:
    # "mutmut": the trampoline bench/mutants.py's mutation tester adds to a mutated copy
    stdlib = {"__future__", "ast", "collections", "dataclasses", "itertools", "typing",
              "warnings", "mutmut", "inspect", "types"}
    for path in SOURCES:
        for name in _imports(path):
            top = name.split(".")[0]
            if top in stdlib:
                continue
            assert top in ("vthreads", "kmd", "umd"), f"{path.name} imports {name}"
            if top == "umd":
                assert name.startswith("umd.ddi"), f"{path.name} imports {name}: only umd.ddi"
            parts = name.split(".")
            assert not any(p.startswith("_") for p in parts[1:]), (
                f"{path.name} imports the private {name}"
            )


# ---- hooks compose ---------------------------------------------------------------------------


def test_no_bugs_is_the_identity_hooks_object() -> None:
    h = rt.hooks_for(())
    assert type(h) is rt.RuntimeHooks
    assert h.gated("LockAsync", True) and not h.gated("Lock", False)
    assert h.rename_cookie(7) == 7 and h.renames_per_discard() == 1


def test_two_bugs_on_one_hook_both_apply_in_any_order() -> None:
    laf = D3DDDI_LOCKASYNCFLAGS
    for names in (["lockasync-two-regions", "lockasync-reserved-bit"],
                  ["lockasync-reserved-bit", "lockasync-two-regions"]):
        h = rt.hooks_for(names)
        got = h.lock_async_flags(int(laf.RangeValid), True)
        assert got == int(laf.RangeValid | laf.AreaValid) | 0x80
        assert h.lock_async_flags(0, False) == 0x80
    h = rt.hooks_for({"gate-missing", "create-resource-ungated"})
    assert not h.gated("LockAsync", True) and not h.gated("CreateResource", True)
    assert h.gated("Lock", True) and not h.drains_before("CreateResource", True)
    with pytest.raises(RegistryError, match="unknown runtime bug"):
        rt.hooks_for({"nope"})


async def _discards(dev: Any, box: Any) -> None:
    vb = await dev.create_vertex_buffer(64)
    await dev.set_stream_source(0, vb, 0, 16)
    for f in range(2):
        v = await dev.lock(vb, 16, 16, DISCARD)
        v.write(0, pattern(f, 16))
        await dev.unlock(vb)
        await dev.draw_primitive(TRI, 0, 1)
        await dev.present()
    await dev.lock(vb, 0, 0, d3d9.D3DLOCK_READONLY)  # the synchronous path
    await dev.unlock(vb)


def test_two_seeded_bugs_in_one_run_each_trip_their_rule() -> None:
    bugs = frozenset({"rename-twice", "unlockasync-after-sync-lock"})
    r, _ = run_app(_discards, device=rt.DeviceConfig(bugs=bugs))
    rules = {v.rule for v in r.violations}
    assert {"RN-1", "UA-3"} <= rules, r.summary()
    r, _ = run_app(_discards)
    assert r.ok, r.summary()


def test_a_user_registered_bug_is_a_hook_override() -> None:
    @rt.RUNTIME_BUG_REGISTRY.register("test-three-renames", rules=("RN-1",),
                                      summary="three Renames per Discard")
    class ThreeRenames(rt.RuntimeHooks):
        def renames_per_discard(self) -> int:
            return 3

    try:
        assert "test-three-renames" in rt.RUNTIME_BUGS
        r, box = run_app(_discards, device=rt.DeviceConfig(
            bugs=frozenset({"test-three-renames"})))
        assert box.devices[0].statistics().renames == 6
        assert "RN-1" in {v.rule for v in r.violations}
    finally:
        rt.RUNTIME_BUG_REGISTRY.unregister("test-three-renames")
    assert "test-three-renames" not in rt.RUNTIME_BUGS


def test_the_unlocked_queue_bug_races_and_the_locked_queue_does_not() -> None:
    async def app(bugs: frozenset[str]) -> None:
        k = kmd.Kernel()
        adapter = await rt.open_adapter(k, umd.ReferenceDriver())
        dev = await adapter.create_device(rt.DeviceConfig(bugs=bugs))
        await _discards(dev, None)
        await dev.close()

    raced = vt.Engine("random", seed=1).run(
        lambda: app(frozenset({"worker-queue-unlocked"})), name="app")
    assert any(v.rule == "RACE" for v in raced.violations) or raced.failure, raced.summary()
    clean = vt.Engine("random", seed=1).run(lambda: app(frozenset()), name="app")
    assert clean.failure is None and not clean.violations, clean.summary()
