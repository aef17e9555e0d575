"""Plugging in one's own driver, as ``docs/umd.md`` §7 shows: a subclassed device, and a driver
object that hands the runtime its own function table."""

from __future__ import annotations

import dataclasses
from typing import Any

import umd
from tests.support.app import ring, run_app
from umd import DriverPolicy, ReferenceDevice, ddi_entry
from umd.ddi import D3DDDIARG_LOCKASYNC, D3DDDIARG_OPENADAPTER


class MyDevice(ReferenceDevice):
    lock_asyncs = 0

    @ddi_entry(D3DDDIARG_LOCKASYNC)
    async def pfn_lock_async(self, args: D3DDDIARG_LOCKASYNC) -> int:
        type(self).lock_asyncs += 1
        return await ReferenceDevice.pfn_lock_async(self, args)


class NeverRenderWhileLocked(DriverPolicy):
    def accepts_nooverwrite(self, device: Any, sub: Any) -> bool:
        return False  # this driver never renders from a locked buffer


class MyDriver(umd.ReferenceDriver):
    device_class = MyDevice


def test_subclassed_device_overrides_a_ddi_and_a_policy_hook() -> None:
    MyDevice.lock_asyncs = 0
    a = run_app(ring, driver=MyDriver(umd.DriverConfig(driver_version=0xB),
                                      policy=NeverRenderWhileLocked()))
    assert a.rules == []
    stats = a.devices[0].statistics()
    assert MyDevice.lock_asyncs == stats.ddi_calls["LockAsync"]["app"] > 0
    assert stats.lock_async_results.get("E_NOTIMPL", 0) > 0  # NoOverwrite refused: fell back
    assert "Lock" in stats.ddi_calls


class TableDriver:
    """A driver from scratch on the outside: its own adapter table and device table (here
    wrapping the reference device's entries to count calls, and leaving Rename out)."""

    def __init__(self) -> None:
        self.inner = umd.ReferenceDriver()
        self.counts: dict[str, int] = {}

    async def open_adapter(self, args: D3DDDIARG_OPENADAPTER) -> int:
        hr = await self.inner.open_adapter(args)
        create = args.adapter_funcs.pfn_create_device

        async def create_device(adapter: Any, cd: Any) -> int:
            hr = await create(adapter, cd)
            table = cd.device_funcs
            wrapped = {}
            for f in dataclasses.fields(table):
                fn = getattr(table, f.name)
                wrapped[f.name] = None if fn is None else self._count(f.name, fn)
            wrapped["pfn_rename"] = None  # no triple: the runtime runs without its MP layer
            cd.device_funcs = type(table)(**wrapped)
            return hr

        args.adapter_funcs = dataclasses.replace(args.adapter_funcs,
                                                 pfn_create_device=create_device)
        return hr

    def _count(self, name: str, fn: Any) -> Any:
        async def entry(h: Any, a: Any = None) -> int:
            self.counts[name] = self.counts.get(name, 0) + 1
            return await fn(h, a)

        return entry


def test_a_driver_object_with_its_own_table() -> None:
    drv = TableDriver()
    a = run_app(ring, driver=drv)
    assert a.rules == [] and not a.devices[0].mp  # LA-1 / MP-4
    assert "pfn_lock_async" not in drv.counts and drv.counts["pfn_lock"] > 0
    assert drv.counts["pfn_draw_primitive"] == a.devices[0].statistics().draws
