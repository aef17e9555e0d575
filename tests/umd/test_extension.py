"""The public extension API of the umd layer (docs/umd.md §7): the entry decorator on a device
that is not a ReferenceDevice, the policy and its selection, the render hooks, the race-checked
view, ``locked()``, the legacy hooks and the variant registry."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import pytest

import umd
import vthreads as vt
from tests.support.app import ring, run_app
from tests.support.driver import E_INVALIDARG, LAF, S_OK, Rig, run
from umd.ddi import (
    D3DDDIARG_LOCK,
    D3DDDIARG_RENAME,
    D3DDDIARG_UNLOCK,
    D3DDDIRANGE,
)

E_FAIL = 0x80004005


class ScratchDevice:
    """A device written from scratch: no ReferenceDevice anywhere, only ``umd.ddi_entry``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    @umd.ddi_entry(D3DDDIARG_LOCK)
    async def pfn_lock(self, args: D3DDDIARG_LOCK) -> int:
        self.calls.append((args.resource, args.subresource_index))
        args.pitch = 16
        return S_OK

    @umd.ddi_entry(None)
    async def pfn_flush(self, args: Any = None) -> int:
        await vt.checkpoint()
        return S_OK

    @umd.ddi_entry(D3DDDIARG_UNLOCK)
    async def pfn_unlock(self, args: D3DDDIARG_UNLOCK) -> int:
        raise RuntimeError("a driver bug: the run fails, no code hides it")


BAD_LOCKS = [
    D3DDDIARG_LOCK(None, 0, 0),  # type: ignore[arg-type]
    D3DDDIARG_LOCK(1, 0.0, 0),  # type: ignore[arg-type]
    D3DDDIARG_LOCK(1, 0, float("nan")),  # type: ignore[arg-type]
    D3DDDIARG_LOCK(1, 0, 1 << 40),
    D3DDDIARG_LOCK(1 << 70, 0, 0),
    D3DDDIARG_LOCK([1], 0, 0),  # type: ignore[arg-type]
    D3DDDIARG_LOCK(True, 0, 0),  # type: ignore[arg-type]
    D3DDDIARG_LOCK(1, 0, 0x10, range=(0, 4)),  # type: ignore[arg-type]
    D3DDDIARG_LOCK(1, 0, 0x10, range=D3DDDIRANGE(0, None)),  # type: ignore[arg-type]
]


def test_ddi_entry_works_for_a_device_that_is_not_a_reference_device() -> None:
    dev = ScratchDevice()
    ref_entry = umd.ReferenceDevice.pfn_lock

    async def main() -> list[int]:
        out = [
            await ScratchDevice.pfn_lock(dev, D3DDDIARG_LOCK(7, 1, 0)),
            await dev.pfn_lock(D3DDDIARG_LOCK(8, 0, 0)),  # bound, the same entry
            await ScratchDevice.pfn_flush(dev, None),
            # not one of this class's devices / not the argument type
            await ScratchDevice.pfn_lock(object(), D3DDDIARG_LOCK(7, 0, 0)),
            await ScratchDevice.pfn_lock(dev, D3DDDIARG_UNLOCK(7, 0)),
            await ScratchDevice.pfn_lock(dev, None),
            # the reference device's entry refuses a scratch handle too
            await ref_entry(dev, D3DDDIARG_LOCK(7, 0, 0)),
        ]
        out += [await ScratchDevice.pfn_lock(dev, bad) for bad in BAD_LOCKS]
        return out

    hrs = vt.Engine().run(main).value
    assert hrs[:3] == [S_OK, S_OK, S_OK]
    assert hrs[3:] == [E_INVALIDARG] * (4 + len(BAD_LOCKS))
    assert dev.calls == [(7, 1), (8, 0)]  # nothing invalid reached the body
    assert ScratchDevice.pfn_lock.__name__ == "pfn_lock"

    async def crash() -> int:
        return await ScratchDevice.pfn_unlock(dev, D3DDDIARG_UNLOCK(1, 0))

    res = vt.Engine().run(crash)
    assert res.failure is not None and "driver bug" in str(res.failure)


def test_ddi_entry_device_type_and_argument_checks() -> None:
    with pytest.raises(TypeError, match="argument structure type"):
        umd.ddi_entry("D3DDDIARG_LOCK")(ScratchDevice.pfn_lock)  # type: ignore[arg-type]

    @umd.ddi_entry(D3DDDIARG_LOCK, device_type=ScratchDevice)
    async def free_lock(dev: Any, args: D3DDDIARG_LOCK) -> int:
        return S_OK

    async def main() -> tuple[int, int]:
        return (await free_lock(ScratchDevice(), D3DDDIARG_LOCK(1, 0, 0)),
                await free_lock(object(), D3DDDIARG_LOCK(1, 0, 0)))

    assert vt.Engine().run(main).value == (S_OK, E_INVALIDARG)
    assert umd.invalid_ddi_field(D3DDDIARG_LOCK(1, 0, 0)) is None
    assert umd.invalid_ddi_field(D3DDDIARG_LOCK(1, -1.0, 0)) == "subresource_index"  # type: ignore[arg-type]
    assert umd.invalid_ddi_field(object()) is None


class NoNoOverwrite(umd.DriverPolicy):
    def accepts_nooverwrite(self, device: Any, sub: umd.Subresource) -> bool:
        return False


def test_the_driver_selects_its_policy_from_the_argument_or_the_config() -> None:
    p, q = NoNoOverwrite(), NoNoOverwrite()
    assert type(umd.ReferenceDriver().policy) is umd.DriverPolicy
    assert umd.ReferenceDriver(policy=p).policy is p
    assert umd.ReferenceDriver(umd.DriverConfig(policy=p)).policy is p
    assert umd.ReferenceDriver(umd.DriverConfig(policy=p), policy=q).policy is q
    with pytest.raises(TypeError, match=r"umd\.DriverPolicy instance"):
        umd.ReferenceDriver(policy=NoNoOverwrite)  # type: ignore[arg-type]

    async def prog(r: Rig) -> tuple[int, Any]:
        vb = await r.vb(256)
        hr, _ = await r.lock_async(vb, LAF.NoOverwrite)
        return hr, r.dev.policy

    hr, policy = run(prog, driver=umd.ReferenceDriver(policy=p)).value
    assert hr == umd.reference._config.E_NOTIMPL and policy is p  # LA-16, Q-8


class RenderLog(umd.DriverPolicy):
    """Records every submission; reports a failure for the second one."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, int]] = []

    async def before_render(self, device: Any, cmdbuf: umd.CommandBuffer) -> None:
        assert device.mutex.owner is vt.current_thread()  # under the device lock
        self.log.append(("before", len(cmdbuf.commands), 0))

    async def after_render(self, device: Any, cmdbuf: umd.CommandBuffer, hr: int) -> int:
        self.log.append(("after", len(cmdbuf.commands), hr))
        return E_FAIL if len(self.log) == 4 else hr


def test_render_hooks_wrap_every_pfnrendercb_and_after_render_decides_the_code() -> None:
    policy = RenderLog()

    async def prog(r: Rig) -> list[int]:
        vb = await r.vb(256)
        await r.stream(vb)
        out = [await r.flush()]  # nothing pending: no pfnRenderCb, no hooks
        for i in range(3):
            assert await r.draw(i) == S_OK
        out.append(await r.flush())
        assert await r.draw(9) == S_OK
        out.append(await r.present())
        return out

    res = run(prog, driver=umd.ReferenceDriver(policy=policy))
    assert res.value == [S_OK, S_OK, E_FAIL]
    assert policy.log == [("before", 3, 0), ("after", 3, S_OK), ("before", 1, 0),
                          ("after", 1, S_OK)]
    assert res.rig.count("render") == 2


def _reader(r: Rig, vb: int, locked: bool, out: list[Any]) -> Any:
    async def read() -> None:
        if locked:
            async with r.dev.locked("test.reader"):
                out.append(await r.dev.view.tracked(vb))
        else:
            out.append(await r.dev.view.tracked(vb))

    return read


@pytest.mark.parametrize("locked", [False, True])
def test_the_view_is_race_checked(locked: bool) -> None:
    """``view.tracked`` is a SharedCell read: unlocked against the worker-side Rename it is a
    RACE on every schedule; under ``locked()`` it is ordered and clean."""
    seen: list[Any] = []

    async def prog(r: Rig) -> tuple[int, int]:
        vb = await r.vb(256)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK
        t = vt.spawn("reader", _reader(r, vb, locked, seen))
        assert await r.rename(vb, la.cookie) == S_OK
        await t.join()
        return r.dev.allocation(vb), r.dev.tracked(vb)

    res = run(prog, check=False)
    base, now = res.value
    assert seen and seen[0] in (base, now)
    assert ("RACE" in res.rules()) is not locked


def test_view_reads_match_the_peeks() -> None:
    async def prog(r: Rig) -> None:
        vb = await r.vb(256)
        await r.stream(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK
        v = r.dev.view
        async with r.dev.locked():
            assert await v.tracked(vb) == r.dev.tracked(vb) == r.dev.allocation(vb)
            assert await v.newest(vb) == r.dev.newest(vb) == la.surf_data.allocation
            assert (await v.tracking(vb)) == umd.Tracking(r.dev.tracked(vb), r.dev.newest(vb))
            assert [c.cookie for c in await v.cookies(vb)] == r.dev.pending_cookies(vb)
            locks = await v.locks()
            assert locks[(vb, 0)] == umd.LockRecord("async", "discard", r.dev.newest(vb),
                                                    la.cookie)
            res = await v.resource(vb)
            assert res is not None and (await v.resources()) == (res,)
            assert await v.subresource(vb) == res.subresources[0]
            assert await v.subresource(vb, 3) is None and await v.tracked(vb, 3) is None
            assert (await v.streams())[0] == umd.StreamBinding(vb, 0, 16)
            assert await v.heap_used() == r.dev.heap_used()
            assert not await v.references(vb) and await v.pending_commands() == ()
        assert await r.unlock_async(vb) == S_OK
        assert await r.draw(1) == S_OK
        assert await v.references(vb) and len(await v.pending_commands()) == 1

    run(prog)


class AtomicRenameDevice(umd.ReferenceDevice):
    """Wraps the reference Rename under its own hold of the device lock: reentrant, and atomic
    with the reference code (nothing runs between the check and the Rename)."""

    seen: ClassVar[list[tuple[int | None, int | None, bool]]] = []

    @umd.ddi_entry(D3DDDIARG_RENAME)
    async def pfn_rename(self, args: D3DDDIARG_RENAME) -> int:
        async with self.locked("atomic.rename"):
            before = await self.view.tracked(args.resource)
            await vt.checkpoint()  # other threads may run; none may enter the driver
            hr = await umd.ReferenceDevice.pfn_rename(self, args)
            after = await self.view.tracked(args.resource)
            still = self.mutex.owner is vt.current_thread()
        type(self).seen.append((before, after, still))
        return hr


def test_locked_is_reentrant_and_makes_an_override_atomic_with_the_reference() -> None:
    AtomicRenameDevice.seen = []
    order: list[str] = []

    async def prog(r: Rig) -> None:
        order.clear()
        vb = await r.vb(256)
        await r.stream(vb)
        hr, la = await r.lock_async(vb, LAF.Discard)
        assert hr == S_OK and await r.unlock_async(vb) == S_OK

        async def drawer() -> None:
            assert await r.draw(5) == S_OK
            order.append("draw")

        async with r.dev.locked("test"):
            t = vt.spawn("drawer", drawer)
            for _ in range(5):
                await vt.checkpoint()
            assert order == []  # the drawer waits for the lock
            assert await r.rename(vb, la.cookie) == S_OK  # re-enters the lock
            order.append("rename")
        await t.join()
        assert order == ["rename", "draw"]
        # the draw came after the Rename: it reads the new instance (RN-4)
        assert r.dev.pending_commands()[0].alloc_index == 0
        assert r.dev.pending_allocations() == [r.dev.tracked(vb)]

    for seed in range(4):
        run(prog, driver=umd.ReferenceDriver(device_class=AtomicRenameDevice),
            strategy="random", seed=seed)
    run(prog, driver=umd.ReferenceDriver(device_class=AtomicRenameDevice))
    assert AtomicRenameDevice.seen and all(
        b != a and still for b, a, still in AtomicRenameDevice.seen)


def test_legacy_device_hooks_and_the_old_decorator_name_still_work() -> None:
    with pytest.warns(DeprecationWarning, match="DriverPolicy.rename_target"):
        class OldStyle(umd.ReferenceDevice):
            def _rename_target(self, cookie: umd.Cookie, tr: umd.Tracking) -> int:
                return tr.newest
    with pytest.warns(DeprecationWarning, match="umd.ddi_entry"):
        from umd.reference import ddi
    assert ddi is umd.ddi_entry

    async def prog(r: Rig) -> tuple[int, int]:
        vb = await r.vb(256)
        cookies = []
        for _ in range(2):
            hr, la = await r.lock_async(vb, LAF.Discard)
            assert hr == S_OK and await r.unlock_async(vb) == S_OK
            cookies.append(la.cookie)
        assert await r.rename(vb, cookies[0]) == S_OK
        return r.dev.tracked(vb), r.dev.newest(vb)

    ref = run(prog).value
    old = run(prog, driver=umd.ReferenceDriver(device_class=OldStyle)).value
    bug = run(prog, variant="rename-ignores-cookie").value
    assert ref[0] != ref[1] and old[0] == old[1] and old == bug


def test_the_variant_registry_drives_variants_and_make_driver() -> None:
    reg = umd.VARIANT_REGISTRY
    assert list(umd.VARIANTS) == list(reg.names())
    for name in reg.names():
        e, info = reg.entry(name), umd.VARIANTS[name]
        assert info.expected_rules == e.rules and e.rules
        assert info.policy_class is e.obj or info.device_class is e.obj or info.factory is e.obj
    assert umd.VARIANTS["track-in-lockasync"].policy_class is umd.variants.TrackInLockAsync
    assert umd.VARIANTS["no-driver-lock"].device_class is umd.variants.NoDriverLockDevice

    @reg.register("test-never-nooverwrite", rules=("Q-8",))
    class NeverNoOverwrite(umd.DriverPolicy):
        """Refuses every NoOverwrite LockAsync (a correct, if slow, driver)."""

        def accepts_nooverwrite(self, device: Any, sub: umd.Subresource) -> bool:
            return False

    try:
        assert "test-never-nooverwrite" in umd.VARIANTS
        drv = umd.make_driver("test-never-nooverwrite", driver_version=0xB)
        assert isinstance(drv.policy, NeverNoOverwrite) and drv.config.driver_version == 0xB
        a = run_app(ring, driver=drv)
        assert a.rules == []
        assert a.devices[0].statistics().lock_async_results.get("E_NOTIMPL", 0) > 0
    finally:
        reg.unregister("test-never-nooverwrite")
    assert "test-never-nooverwrite" not in umd.VARIANTS
    with pytest.raises(ValueError, match="unknown driver variant 'test-never-nooverwrite'"):
        umd.make_driver("test-never-nooverwrite")


def test_umd_imports_only_vthreads_and_kmd() -> None:
    import importlib
    import pathlib
    import re

    root = pathlib.Path(umd.__file__).parent
    # the layering rule, as `grep -rn "import runtime\|from runtime\|scenarios\|wddmemu" umd/`
    upward = re.compile(r"import runtime|from runtime|scenarios|wddmemu")
    bad = [f"{p.name}:{n}: {line.strip()}"
           for p in sorted(root.rglob("*.py"))
           for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
           if upward.search(line)]
    assert bad == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning on the normal path
        importlib.reload(importlib.import_module("umd.reference"))
