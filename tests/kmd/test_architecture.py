"""The kmd layer's shape: one module per responsibility behind the ``Kernel`` facade, the thunks
generated from one table, seeded kernel bugs as hook overrides chosen through a registry, and
kmd importing nothing above vthreads."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import kmd
from kmd import D3DKMT_OPENADAPTER, Kernel, KernelConfig
from kmd.thunks import THUNKS
from tests.support.kernel import run

KMD = Path(kmd.__file__).resolve().parent


def test_every_thunk_is_generated_from_the_table() -> None:
    assert [t.name for t in THUNKS] == list(kmd.THUNK_CODES)
    public = {n for n in kmd.__all__ if n.startswith("D3DKMT") and "_" not in n}
    assert {t.name for t in THUNKS} == public
    for t in THUNKS:
        fn = getattr(kmd, t.name)
        assert inspect.iscoroutinefunction(fn) and fn.__name__ == t.name
        assert fn.__doc__ == t.doc and fn.__annotations__["args"] is t.struct
        assert kmd.THUNK_CODES[t.name] == t.codes
        assert callable(getattr(Kernel, t.method)), t.method
        # a wrong struct is always possible, so every thunk may answer INVALID_PARAMETER
        assert kmd.STATUS_INVALID_PARAMETER in t.codes


@pytest.mark.parametrize("name", [t.name for t in THUNKS])
def test_no_thunk_raises_on_none(name: str) -> None:
    """Bad input gives a documented code, never an exception (issue 14: D3DKMTOpenAdapter(None)
    used to answer a code outside its own THUNK_CODES row, which raised)."""
    codes: list[kmd.NTSTATUS] = []

    async def main() -> None:
        codes.append(await getattr(kmd, name)(Kernel(), None))

    run(main)
    assert codes == [kmd.STATUS_INVALID_PARAMETER]
    assert codes[0] in kmd.THUNK_CODES[name]


def test_kernel_bugs_come_from_the_registry() -> None:
    reg = kmd.KERNEL_BUG_REGISTRY
    assert reg.kind == "kernel bug"
    assert list(kmd.KERNEL_BUGS) == list(reg.names()) == ["donotwait-waits"]
    entry = reg.entry("donotwait-waits")
    assert entry.rules == ("KL-21",)
    assert kmd.KERNEL_BUGS["donotwait-waits"] == entry.summary and "KL-21" in entry.summary
    assert issubclass(entry.obj, kmd.KernelHooks)
    assert entry.module == "kmd._lock"  # beside the code it breaks
    assert type(Kernel().hooks) is kmd.KernelHooks
    assert type(Kernel(KernelConfig(bugs=frozenset({"donotwait-waits"}))).hooks) is entry.obj
    with pytest.raises(ValueError, match="unknown kernel bug 'nope'"):
        KernelConfig(bugs=frozenset({"nope"}))


def test_a_user_registered_kernel_bug_is_selectable() -> None:
    """A user extends with public names only: subclass KernelHooks, register, name it."""

    @kmd.KERNEL_BUG_REGISTRY.register("test-never-busy", rules=("KL-21",), summary="test")
    class NeverFailsAtOnce(kmd.KernelHooks):
        def busy_lock_fails_at_once(self, flags: int) -> bool:
            return False

    try:
        assert "test-never-busy" in kmd.KERNEL_BUGS
        cfg = KernelConfig(bugs=frozenset({"test-never-busy", "donotwait-waits"}))
        hooks = Kernel(cfg).hooks
        assert isinstance(hooks, NeverFailsAtOnce)
        assert isinstance(hooks, kmd.KERNEL_BUG_REGISTRY["donotwait-waits"])
    finally:
        kmd.KERNEL_BUG_REGISTRY.unregister("test-never-busy")
    assert "test-never-busy" not in kmd.KERNEL_BUGS


def test_the_seeded_bug_is_not_an_inline_check() -> None:
    for path in KMD.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert '" in self.config.bugs' not in text and '" not in self.config.bugs' not in text, (
            path.name
        )


def test_kmd_imports_only_vthreads_and_itself() -> None:
    allowed = {"vthreads", "kmd"}
    for path in KMD.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in {"runtime", "umd", "scenarios", "wddmemu"}, (path.name, name)
                assert top != "structlog", (path.name, "kmd must not configure logging")
                assert top in allowed or top in _STDLIB_OR_DEPS, (path.name, name)


_STDLIB_OR_DEPS = {
    "__future__", "collections", "dataclasses", "enum", "typing", "types", "inspect",
    "hashlib", "itertools", "functools", "math", "struct",
    "mutmut",  # the trampoline bench/mutants.py's mutation tester adds to a mutated copy
}


def test_open_adapter_after_a_wrong_struct_still_works() -> None:
    async def main() -> None:
        k = Kernel()
        assert await kmd.D3DKMTOpenAdapter(k, None) == kmd.STATUS_INVALID_PARAMETER
        oa = D3DKMT_OPENADAPTER()
        assert await kmd.D3DKMTOpenAdapter(k, oa) == kmd.STATUS_SUCCESS and oa.adapter

    run(main)
