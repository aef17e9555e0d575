"""The DDI door: every call the runtime makes into the user-mode driver goes through here.

* ``OpenAdapter`` (:func:`call_open_adapter`) and ``CreateDevice`` (:func:`call_create_device`)
  are made once, before any other thread exists, so they take no lock.
* Every device DDI (:data:`DDI_TABLE`) goes through :meth:`DdiDoor.call`: it looks the function
  up in the driver's ``D3DDDI_DEVICEFUNCS``, takes the **device entry lock** when the
  DDI-version gate says so, counts the call by thread, and logs ``ddi.enter``/``ddi.exit``.

**The DDI-version gate.** The entry lock is held around every DDI call, so below 0xB no two
threads are ever inside the driver for one device (LA-3, MP-1). At DDI version >= 0xB
(``D3D_UMD_REENTRANT_VERSION``, DV-2) LockAsync and UnlockAsync enter without it, concurrently
with the worker's DDIs (LA-3, UA-5, MP-2): that is what makes a driver's own locking matter.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from types import CoroutineType, FrameType
from typing import Any

import kmd
from kmd import hex32, hresult_name
from umd.ddi import (
    D3D_UMD_REENTRANT_VERSION,
    D3DDDI_ADAPTERFUNCS,
    D3DDDI_DEVICEFUNCS,
    D3DDDIARG_CREATEDEVICE,
    D3DDDIARG_LOCK,
    D3DDDIARG_LOCKASYNC,
    D3DDDIARG_OPENADAPTER,
)
from vthreads import EngineUsageError, Mutex, current_engine
from vthreads.lowlevel import safe_repr

from ._callbacks import plain_int, summarize
from ._hooks import RuntimeHooks

#: DDI name (as in the docs and the trace) → D3DDDI_DEVICEFUNCS attribute
DDI_TABLE = {
    "CreateResource": "pfn_create_resource",
    "DestroyResource": "pfn_destroy_resource",
    "Lock": "pfn_lock",
    "Unlock": "pfn_unlock",
    "LockAsync": "pfn_lock_async",
    "UnlockAsync": "pfn_unlock_async",
    "Rename": "pfn_rename",
    "SetStreamSource": "pfn_set_stream_source",
    "DrawPrimitive": "pfn_draw_primitive",
    "Flush": "pfn_flush",
    "Present": "pfn_present",
    "DestroyDevice": "pfn_destroy_device",
}
#: the DDIs that enter the driver reentrantly at DDI version >= 0xB (LA-3, UA-5, MP-2)
REENTRANT_DDIS = frozenset({"LockAsync", "UnlockAsync"})
#: a ddi.exit's extra fields for every DDI but LockAsync (splatted, never changed)
_NO_FIELDS: dict[str, Any] = {}
#: the slots of D3DDDI_DEVICEFUNCS a driver may leave None (the async triple, LA-1)
_OPTIONAL_DDIS = frozenset({"LockAsync", "UnlockAsync", "Rename"})


def is_uint(v: object) -> bool:
    """A D3D UINT: an int (not a bool) in [0, 2**32)."""
    return type(v) is int and 0 <= v <= 0xFFFFFFFF


def kind_of(v: object) -> str:
    """What a value is, without printing it (it may be any object, or an int too long for
    ``str``): "None", "a list", "an object", "a negative int", "a 65-bit int"."""
    if v is None:
        return "None"
    if type(v) is not int:
        name = type(v).__name__
        return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
    return "a negative int" if v < 0 else f"a {v.bit_length()}-bit int"


def open_adapter_problem(oa: D3DDDIARG_OPENADAPTER) -> str:
    """Why the runtime cannot use what a successful ``OpenAdapter`` handed back ("" when it
    can): the table must be a ``D3DDDI_ADAPTERFUNCS`` whose ``pfnCreateDevice`` is a function,
    ``DriverVersion`` a UINT (DV-1)."""
    funcs = oa.adapter_funcs
    if not isinstance(funcs, D3DDDI_ADAPTERFUNCS):
        return f"pAdapterFuncs {kind_of(funcs)}, not a D3DDDI_ADAPTERFUNCS"
    if not callable(funcs.pfn_create_device):
        return f"pfnCreateDevice {kind_of(funcs.pfn_create_device)}, not a function"
    if not is_uint(oa.driver_version):
        return f"DriverVersion {kind_of(oa.driver_version)}, not a UINT"
    return ""


def device_funcs_problem(funcs: object) -> str:
    """Why the runtime cannot call through the table a successful ``CreateDevice`` handed back
    ("" when it can): a ``D3DDDI_DEVICEFUNCS`` whose every slot is a function, or None for one
    of the optional async triple (LA-1)."""
    if not isinstance(funcs, D3DDDI_DEVICEFUNCS):
        return f"pDeviceFuncs {kind_of(funcs)}, not a D3DDDI_DEVICEFUNCS"
    for ddi, attr in DDI_TABLE.items():
        fn = getattr(funcs, attr)
        if fn is None and ddi not in _OPTIONAL_DDIS:
            return f"no {ddi} (pDeviceFuncs.{attr} is None; only the async triple may be)"
        if fn is not None and not callable(fn):
            return f"pDeviceFuncs.{attr} {kind_of(fn)}, not a function"
    return ""


def _emit_exit(ddi: str, device: str, hr: int, **fields: Any) -> None:
    eng = current_engine()
    if eng.wants("ddi.exit"):
        eng.emit("ddi.exit", ddi=ddi, device=device, hr=hex32(hr), hr_name=hresult_name(hr),
                 **fields)


def _lock_async_out(args: D3DDDIARG_LOCKASYNC) -> dict[str, Any]:
    """LockAsync's outputs for ``ddi.exit`` (LA-12): hCookie, then :func:`_lock_out`'s."""
    out: dict[str, Any] = {}
    _int_out(out, "cookie", args.cookie)
    return _lock_out(args, out)


def _int_out(out: dict[str, Any], key: str, v: object) -> None:
    """``out[key]``: output ``v`` as a plain int (:func:`~runtime._callbacks.plain_int`: an int
    subclass is read without calling its methods), or None; for a ``v`` that is no int, also
    ``out[key + "_kind"]``, what it is (:func:`kind_of`: "a str", "a float", "None"), so that
    a finding can say what the driver handed back, not an hCookie of 0 or a Pitch of None.
    An int output (the reference's, every well-behaved driver's) adds no field."""
    n = out[key] = plain_int(v)
    if n is None:
        out[key + "_kind"] = kind_of(v)


def _lock_out(args: D3DDDIARG_LOCKASYNC | D3DDDIARG_LOCK, out: dict[str, Any]
              ) -> dict[str, Any]:
    """Lock's outputs for ``ddi.exit`` (LK-6), added to ``out``: Pitch, SlicePitch, whether
    pSurfData is set and, when it says so, which allocation instance it points into (a
    driver's own pointer wrapper need not say). Whatever the driver put there, only plain ints
    (:func:`~runtime._callbacks.plain_int`: an int subclass is read without calling its
    methods) and None reach the event."""
    try:
        surf = getattr(args.surf_data, "allocation", None)
    except Exception:  # the driver's object: its property may raise
        surf = None
    out["surf_allocation"] = plain_int(surf)  # an int subclass as a plain int (issue 14)
    _int_out(out, "pitch", args.pitch)
    _int_out(out, "slice_pitch", args.slice_pitch)
    out["surf_data"] = args.surf_data is not None
    return out


def _outputs(args: Any) -> dict[str, Any]:
    """What ``ddi.exit`` says of a DDI's outputs: LockAsync's and Lock's, nothing of others."""
    if isinstance(args, D3DDDIARG_LOCKASYNC):
        return _lock_async_out(args)
    if isinstance(args, D3DDDIARG_LOCK):
        return _lock_out(args, {})
    return _NO_FIELDS


async def call_open_adapter(driver: Any, oa: D3DDDIARG_OPENADAPTER, name: str) -> int:
    """The driver's ``OpenAdapter``: it reports ``DriverVersion`` (DV-1)."""
    eng = current_engine()
    if eng.wants("ddi.enter"):
        eng.emit("ddi.enter", ddi="OpenAdapter", device=name, gated=False)
    hr = checked_hresult("OpenAdapter", await _answer("OpenAdapter", driver.open_adapter, oa))
    version = oa.driver_version
    _emit_exit("OpenAdapter", name, hr, driver_version=version if is_uint(version) else None)
    return hr


async def call_create_device(adapter_funcs: Any, driver_adapter: Any,
                             cd: D3DDDIARG_CREATEDEVICE, name: str, driver_version: int) -> int:
    """The driver's ``CreateDevice``: the runtime's callbacks in, the driver's
    ``D3DDDI_DEVICEFUNCS`` out (``cd.device_funcs``)."""
    eng = current_engine()
    if eng.wants("ddi.enter"):
        eng.emit("ddi.enter", ddi="CreateDevice", device=name, gated=False)
    hr = checked_hresult("CreateDevice", await _answer(
        "CreateDevice", adapter_funcs.pfn_create_device, driver_adapter, cd))
    funcs = cd.device_funcs
    ok = isinstance(funcs, D3DDDI_DEVICEFUNCS)
    _emit_exit("CreateDevice", name, hr,
               implements=[n for n, a in DDI_TABLE.items() if ok and getattr(funcs, a)],
               driver_version=driver_version)
    return hr


class DdiDoor:
    """One device's way into the driver: the function table, the entry lock, the gate."""

    def __init__(self, device_name: str, driver_version: int, hooks: RuntimeHooks) -> None:
        self.device_name = device_name
        self.driver_version = driver_version
        self.hooks = hooks
        self.funcs: D3DDDI_DEVICEFUNCS | None = None
        self.driver_device: Any = None
        self.entry = Mutex(f"{device_name}.entry")
        #: DDI name → thread name → calls (``DeviceStatistics.ddi_calls``)
        self.calls: dict[str, dict[str, int]] = {}
        #: the driver has reported D3DDDIERR_DEVICEREMOVED (TDR-10, TDR-11): draws may be lost
        self.lost = False
        #: DDI → calls made without the entry lock; threads inside the driver now; entries
        #: made while another thread was inside (``DeviceStatistics``: the 0xA/0xB difference)
        self.ungated: dict[str, int] = {}
        self.inside = 0
        self.overlaps = 0

    def open(self, funcs: D3DDDI_DEVICEFUNCS, driver_device: Any) -> None:
        """Use the table ``CreateDevice`` returned for every later call."""
        self.funcs = funcs
        self.driver_device = driver_device

    def implements(self, ddi: str) -> bool:
        return self.funcs is not None and getattr(self.funcs, DDI_TABLE[ddi]) is not None

    def gated(self, ddi: str) -> bool:
        """Whether ``ddi`` takes the device entry lock: every DDI does, except LockAsync and
        UnlockAsync at DDI version >= 0xB (LA-3, UA-5, MP-1, MP-2)."""
        reentrant = ddi in REENTRANT_DDIS and self.driver_version >= D3D_UMD_REENTRANT_VERSION
        return self.hooks.gated(ddi, not reentrant)

    async def call(self, ddi: str, args: Any) -> int:
        """Call one driver DDI through the table, under the gate, logging enter/exit. Returns
        the driver's HRESULT; a non-int answer is a driver bug and raises ``TypeError``."""
        assert self.funcs is not None
        fn = getattr(self.funcs, DDI_TABLE[ddi])
        if fn is None:
            raise EngineUsageError(f"the runtime called {ddi}, which the driver does not implement")
        eng = current_engine()
        me = eng.current_thread().name
        per = self.calls.get(ddi)
        if per is None:
            per = self.calls[ddi] = {}
        per[me] = per.get(me, 0) + 1
        gated = self.gated(ddi)
        if gated:
            await self.entry.acquire()
        else:
            self.ungated[ddi] = self.ungated.get(ddi, 0) + 1
        # instrumentation only (one emulated thread runs at a time): who else is inside now
        self.overlaps += self.inside > 0
        self.inside += 1
        try:
            if eng.wants("ddi.enter"):
                eng.emit("ddi.enter", ddi=ddi, device=self.device_name, gated=gated,
                         **summarize(args))
            # _answer's work inline (a coroutine less on the hot path): the driver's own
            # exceptions are noted with the DDI, the runtime's TypeErrors name it already
            try:
                pending = fn(self.driver_device, args)
            except BaseException as e:
                note_ddi(e, ddi)
                raise
            if type(pending) is not CoroutineType:  # async def's answer: the one tested first
                pending = ddi_awaitable(ddi, pending)
            try:
                hr = await pending
            except BaseException as e:
                note_ddi(e, ddi)
                raise
            hr = checked_hresult(ddi, hr)
            if hr == kmd.D3DDDIERR_DEVICEREMOVED:
                self.lost = True
            out = _outputs(args)
            if eng.wants("ddi.exit"):  # _emit_exit's event, with the engine already in hand
                eng.emit("ddi.exit", ddi=ddi, device=self.device_name, hr=hex32(hr),
                         hr_name=hresult_name(hr), **out)
            return hr
        finally:
            self.inside -= 1
            if gated:
                self.entry.release()


#: how an exception says the DDI it came out of (its note, PEP 678)
DDI_NOTE = "in driver DDI "


def note_ddi(e: BaseException, ddi: str) -> None:
    """Say on ``e``, as it leaves the driver's ``ddi`` (or the runtime's check of the call),
    which DDI it came out of: the ``exception`` finding then names the DDI (sweep E D10). Only
    the innermost DDI is noted. Any ``BaseException``: a driver's ``SystemExit``,
    ``KeyboardInterrupt`` or ``CancelledError`` is a finding too, and named its DDI no more
    (sweep G D6); on the engine's own stops (a run's abort, a ``Hang``) the note is never read.
    The driver's exception is untrusted: a ``__notes__`` that is not a list, or that raises,
    leaves the exception as it was (the finding then names no DDI)."""
    try:
        notes = getattr(e, "__notes__", ())
        if not any(type(n) is str and n.startswith(DDI_NOTE) for n in notes):
            e.add_note(DDI_NOTE + ddi)
    except Exception:  # the driver's hostile __notes__: the note is left out, the error stands
        return


async def _answer(ddi: str, fn: Callable[..., object], *args: Any) -> object:
    """What the driver's ``ddi`` (``fn(*args)``) answers, awaited; what it raises goes on up
    noted with the DDI (:func:`note_ddi`)."""
    try:
        pending = fn(*args)
    except BaseException as e:
        note_ddi(e, ddi)
        raise
    pending = ddi_awaitable(ddi, pending)
    try:
        return await pending
    except BaseException as e:
        note_ddi(e, ddi)
        raise


def ddi_awaitable(ddi: str, pending: object) -> Awaitable[Any]:
    """What calling driver DDI ``ddi`` gave, when it can be awaited: a coroutine (an ``async
    def``) or any other awaitable. A DDI written as a plain ``def`` hands back its answer
    instead; that is a driver bug, and it fails the run with ``TypeError("driver DDI X is not
    async: …")``, naming the DDI, where ``await`` would have said only "object int can't be
    used in 'await' expression" from inside the runtime (the runtime awaits every DDI:
    docs/umd.md)."""
    if inspect.isawaitable(pending):
        return pending  # type: ignore[return-value]
    raise TypeError(f"driver DDI {ddi} is not async: calling it returned "
                    f"{safe_repr(pending, 80)}, not an awaitable (write it as async def)")


def _is_hresult(hr: object) -> bool:
    """An int (not a bool) that fits 32 bits, signed or unsigned: what a DDI may return."""
    n = plain_int(hr)
    return n is not None and -(1 << 31) <= n < (1 << 32)


def checked_hresult(ddi: str, hr: object) -> int:
    """What driver DDI ``ddi`` returned, as a plain int: an int (not a bool) that fits 32 bits,
    signed or unsigned, is an HRESULT (an ``IntEnum`` member too, read with ``int.__index__``,
    never through the driver's methods). Anything else — None, a float, True, a str, an int
    beyond 32 bits — is a driver bug that fails the run with ``TypeError("driver DDI X
    returned …, not a 32-bit HRESULT")``: the same check for every DDI, the adapter-level
    ``OpenAdapter`` and ``CreateDevice`` included (issue 14)."""
    if not _is_hresult(hr):  # the driver is code under test: anything may come back
        if inspect.iscoroutine(hr):  # a missing await: close it (no "never awaited" warning)
            hr.close()
            raise TypeError(f"driver DDI {ddi} returned a coroutine ({safe_repr(hr, 80)}: a "
                            "missing await?), not a 32-bit HRESULT")
        raise TypeError(f"driver DDI {ddi} returned {_describe(hr)}, not a 32-bit HRESULT")
    return plain_int(hr)  # type: ignore[return-value]


def _describe(value: object) -> str:
    # the driver's object: its repr may raise, loop or show its address, an int over 4,300
    # digits cannot be repr'd and a huge one floods the message (issue 14). Ints are read with
    # int.__index__ (plain_int), another class of the driver's is named by its type, never
    # asked; built-in values are safe_repr'd (never raising, addresses stripped, cut)
    n = plain_int(value)
    if n is not None:
        return f"an int of {n.bit_length()} bits" if n.bit_length() > 64 else repr(n)
    kind = type(value)
    if kind not in (bool, float, str, bytes, type(None), list, tuple, dict):
        return f"<{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', '?')} object>"
    return safe_repr(value, 80)


#: the code objects of the runtime's DDI calls: the DDI a frame of each is in (None: its
#: ``ddi`` local says), for :func:`innermost_ddi`
_DDI_CODES: dict[Any, str | None] = {
    DdiDoor.call.__code__: None,
    call_open_adapter.__code__: "OpenAdapter",
    call_create_device.__code__: "CreateDevice",
}


def innermost_ddi(frame: FrameType | None) -> str | None:
    """The DDI the code running in ``frame`` is inside — the innermost runtime call of a driver
    DDI on its stack (``f_back`` links, which a running coroutine's frames keep) — or None.
    A watchdog that stopped a CPU loop names the DDI with it, from the interrupted frame
    alone, where following every ``ddi.enter``/``ddi.exit`` cost 3 % of a schedule."""
    while frame is not None:
        code = frame.f_code
        if code in _DDI_CODES:
            name = _DDI_CODES[code]
            return name if name is not None else str(frame.f_locals.get("ddi"))
        frame = frame.f_back
    return None
