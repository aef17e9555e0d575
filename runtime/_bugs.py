"""Seeded runtime bugs: each breaks exactly one documented promise, for the checker's regression
tests (``wddmemu``'s corpus runs every one and expects the rule ids it was registered with).

A bug is a :class:`~runtime.RuntimeHooks` subclass overriding the hook of the promise it
breaks, calling ``super()`` for every case it leaves alone, so that several bugs compose into
one hooks object (:func:`hooks_for`). Select them by name with ``DeviceConfig(bugs=...)`` or
``wddmemu run --bug NAME``. Register your own the same way::

    @RUNTIME_BUG_REGISTRY.register("my-bug", rules=("RN-1",), summary="…")
    class MyBug(RuntimeHooks):
        def renames_per_discard(self) -> int:
            return 3
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from umd.ddi import D3DDDI_LOCKASYNCFLAGS
from vthreads.registry import Registry

from ._cmdqueue import Command, CommandQueue
from ._ddi import REENTRANT_DDIS
from ._hooks import RuntimeHooks

#: every seeded runtime bug: name → the hooks subclass, with the rule ids it trips
RUNTIME_BUG_REGISTRY: Registry[type[RuntimeHooks]] = Registry("runtime bug")
_bug = RUNTIME_BUG_REGISTRY.register


@_bug("gate-missing", rules=("LA-3", "MP-1"),
      summary="below 0xB LockAsync/UnlockAsync skip the device entry lock (MP-1, LA-3)")
class GateMissing(RuntimeHooks):
    def gated(self, ddi: str, gated: bool) -> bool:
        return False if ddi in REENTRANT_DDIS else super().gated(ddi, gated)


@_bug("rename-jumps-queue", rules=("MP-5", "LA-13", "DATA"),
      summary="Rename is pushed to the front of the queue, ahead of earlier commands "
      "(RN-4, LA-13)")
class RenameJumpsQueue(RuntimeHooks):
    def enqueue_front_for_rename(self) -> bool:
        return True


@_bug("rename-wrong-cookie", rules=("RN-2",),
      summary="Rename carries a cookie no LockAsync returned (RN-2)")
class RenameWrongCookie(RuntimeHooks):
    def rename_cookie(self, cookie: int) -> int:
        return super().rename_cookie(cookie) ^ 0x5A5A0000  # a handle no LockAsync returned


@_bug("rename-twice", rules=("RN-1",),
      summary="Rename is enqueued twice for one Discard (RN-1)")
class RenameTwice(RuntimeHooks):
    def renames_per_discard(self) -> int:
        return 2 * super().renames_per_discard()


class UnlockedGetQueue(CommandQueue):
    """The worker peeks at and pops the ring without the queue's mutex."""

    async def take(self) -> tuple[Command, int] | None:
        return await self.pop_ring("(unlocked)")


@_bug("worker-queue-unlocked", rules=("RACE",),
      summary="the worker reads the command queue without its lock (RACE)")
class WorkerQueueUnlocked(RuntimeHooks):
    def command_queue(self, name: str, maxsize: int) -> CommandQueue:
        return UnlockedGetQueue(name, maxsize)


@_bug("lockasync-without-triple", rules=("LA-1",),
      summary="LockAsync is used when the driver lacks Rename (LA-1)")
class LockAsyncWithoutTriple(RuntimeHooks):
    def mp_layer(self, funcs: Any, on: bool) -> bool:
        return super().mp_layer(funcs, on) or funcs.pfn_lock_async is not None


@_bug("sysmem-lockasync-below-b", rules=("LA-4",),
      summary="system-memory surfaces take LockAsync below 0xB (LA-4)")
class SysmemLockAsyncBelowB(RuntimeHooks):
    def sysmem_lock_async(self, allowed: bool) -> bool:
        return True


@_bug("noexistingrefs-always", rules=("LA-9", "DATA"),
      summary="NoExistingReferences is set even with queued references (LA-9)")
class NoExistingRefsAlways(RuntimeHooks):
    def no_existing_references(self, none_queued: bool) -> bool:
        return True


@_bug("unlockasync-after-sync-lock", rules=("UA-3",),
      summary="a lock taken through Lock is released with UnlockAsync (UA-3)")
class UnlockAsyncAfterSyncLock(RuntimeHooks):
    def unlock_path(self, lock_path: str, mp: bool) -> str:
        if lock_path == "sync" and mp:
            return "async"
        return super().unlock_path(lock_path, mp)


@_bug("lockasync-conflicting-flags", rules=("LA-5",),
      summary="DISCARD|NOOVERWRITE reaches LockAsync as both flags (LA-5)")
class LockAsyncConflictingFlags(RuntimeHooks):
    def refuse_discard_with_nooverwrite(self) -> bool:
        return False


@_bug("lockasync-two-regions", rules=("LA-6",),
      summary="LockAsync of a range sets RangeValid and AreaValid (LA-6)")
class LockAsyncTwoRegions(RuntimeHooks):
    def lock_async_flags(self, flags: int, partial: bool) -> int:
        flags = super().lock_async_flags(flags, partial)
        return flags | D3DDDI_LOCKASYNCFLAGS.AreaValid if partial else flags


@_bug("lockasync-reserved-bit", rules=("LA-7",),
      summary="LockAsync flags carry a reserved bit, 0x80 (LA-7)")
class LockAsyncReservedBit(RuntimeHooks):
    def lock_async_flags(self, flags: int, partial: bool) -> int:
        return super().lock_async_flags(flags, partial) | 0x80


@_bug("create-resource-ungated", rules=("MP-1",),
      summary="CreateResource runs on the app thread without draining the queue or taking the "
      "entry lock, overlapping the worker (MP-1)")
class CreateResourceUngated(RuntimeHooks):
    def gated(self, ddi: str, gated: bool) -> bool:
        return False if ddi == "CreateResource" else super().gated(ddi, gated)

    def drains_before(self, ddi: str, drains: bool) -> bool:
        return False if ddi == "CreateResource" else super().drains_before(ddi, drains)


@_bug("rename-on-app-thread", rules=("RN-3",),
      summary="Rename is called on the app thread right after LockAsync instead of being "
      "queued for the worker (RN-3, RN-4)")
class RenameOnAppThread(RuntimeHooks):
    def rename_on_app_thread(self) -> bool:
        return True


@_bug("draw-while-locked", rules=("LK-8",),
      summary="a draw from a buffer held by a synchronous Lock reaches the driver (LK-8)")
class DrawWhileLocked(RuntimeHooks):
    def refuse_draw_while_locked(self) -> bool:
        return False


# ---- the hard corpus (issue 12): seen only on schedules random sampling rarely makes


@_bug("refs-released-on-take", rules=("LA-9", "DATA"),
      summary="the worker stops counting a command's references when it takes the command, "
      "before the driver has recorded them: LockAsync may say NoExistingReferences (LA-9)")
class RefsReleasedOnTake(RuntimeHooks):
    def release_refs_before_call(self) -> bool:
        return True


@_bug("refs-count-lost", rules=("LA-9", "DATA"),
      summary="the worker's queued-reference count-down is a read and a write with a scheduling "
      "point between: an app count-up in between is lost, and LockAsync later says "
      "NoExistingReferences with a draw still queued (LA-9)")
class RefsCountLost(RuntimeHooks):
    def refs_release_split(self) -> bool:
        return True


@_bug("refs-from-queue-length", rules=("LA-9", "DATA"),
      summary="LockAsync judges the resource unreferenced when the command queue is empty: a "
      "draw the worker has taken and the driver has not yet recorded is missed (LA-9)")
class RefsFromQueueLength(RuntimeHooks):
    def queued_references(self, counted: int, queue_length: int) -> int:
        return queue_length


class _Summaries(Mapping[str, str]):
    """``RUNTIME_BUGS``: name → summary, a live view of :data:`RUNTIME_BUG_REGISTRY` (a bug a
    user registers later shows up too), in registration order."""

    def __getitem__(self, name: str) -> str:
        if name not in RUNTIME_BUG_REGISTRY:
            raise KeyError(name)
        return RUNTIME_BUG_REGISTRY.entry(name).summary

    def __iter__(self) -> Iterator[str]:
        return iter(RUNTIME_BUG_REGISTRY.names())

    def __len__(self) -> int:
        return len(RUNTIME_BUG_REGISTRY)

    def __repr__(self) -> str:
        return repr(dict(self))


#: named seeded bugs of the runtime (name → one-line summary), each breaking one promise
RUNTIME_BUGS: Mapping[str, str] = _Summaries()


def hooks_for(bugs: Iterable[str]) -> RuntimeHooks:
    """One hooks object with every named bug on (none: the identity :class:`RuntimeHooks`).

    The bugs' classes are combined in registration order, whatever order ``bugs`` has, so a
    set of names always builds the same object. Unknown names raise ``RegistryError``."""
    chosen = set(bugs)
    for name in sorted(chosen):
        RUNTIME_BUG_REGISTRY.entry(name)  # an unknown name fails here, with the known ones
    classes = tuple(RUNTIME_BUG_REGISTRY[n] for n in RUNTIME_BUG_REGISTRY.names() if n in chosen)
    if not classes:
        return RuntimeHooks()
    if len(classes) == 1:
        return classes[0]()
    combined = type("RuntimeHooks[" + "+".join(c.__name__ for c in classes) + "]", classes, {})
    return combined()
