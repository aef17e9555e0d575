"""What a running scenario gets: the kernel, the opened adapter, devices, app threads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import kmd
import vthreads as vt
from runtime import Adapter, Device, DeviceConfig


class ScenarioContext:
    """Handed to every scenario function as ``ctx``.

    ``ctx.device()`` creates a device on the opened adapter (closed for you at the end);
    ``ctx.spawn()`` starts another application thread; ``ctx.thunk()`` calls a ``D3DKMT*`` thunk
    directly, as an OpenGL ICD would; ``ctx.expect()`` records a failed expectation of the
    scenario itself as an ``EXPECT`` violation."""

    def __init__(self, kernel: kmd.Kernel, adapter: Adapter, device_config: DeviceConfig,
                 params: dict[str, Any]) -> None:
        self.kernel = kernel
        self.adapter = adapter
        self.device_config = device_config
        self.params = params
        self.devices: list[Device] = []

    async def device(self) -> Device:
        dev = await self.adapter.create_device(self.device_config)
        self.devices.append(dev)
        return dev

    def spawn(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> vt.VThread:
        return vt.spawn(name, fn, *args)

    async def thunk(self, name: str, args: Any) -> int:
        fn = getattr(kmd, name)
        return await fn(self.kernel, args)

    @property
    def faulted(self) -> bool:
        """Whether an injected fault (``wddmemu --inject``, ``explore --faults``) has fired:
        a scenario treats a device loss as the fault's doing only then (docs/scenarios.md)."""
        return bool(self.kernel.faults_fired)

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            vt.violation("EXPECT", f"scenario expectation failed: {message}")

    async def close(self) -> None:
        for d in self.devices:
            await d.close()
