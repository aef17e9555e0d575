"""The runtime's decision hooks: one small method per promise a seeded bug may break.

The production code computes every decision the contract prescribes and then hands it to a
:class:`RuntimeHooks` method, which returns it unchanged. A seeded runtime bug is a subclass that
overrides exactly the hook(s) of the promise it breaks (``runtime/_bugs.py``) and is selected by
name through :data:`runtime.RUNTIME_BUG_REGISTRY`; the production modules never mention a bug.

Why filters ("here is the right answer, return the one to use") rather than flags: the rule
stays in the module named for its layer (the DDI-version gate in ``_ddi.py``, the lock policy in
``_lock.py``…), a hook is one line, and several bugs compose — each override calls ``super()``,
so a device built with two bugs that touch one hook (``gated``, ``lock_async_flags``) gets both.
"""

from __future__ import annotations

from typing import Any

from ._cmdqueue import CommandQueue


class RuntimeHooks:
    """The identity policy: every hook returns the decision the production code passed in.

    Subclass it (and call ``super()``) to seed a runtime bug; register the subclass in
    :data:`runtime.RUNTIME_BUG_REGISTRY` with the rule ids it should trip."""

    # -- the DDI door (runtime/_ddi.py)

    def gated(self, ddi: str, gated: bool) -> bool:
        """Whether ``ddi`` takes the device entry lock (LA-3, UA-5, MP-1, MP-2)."""
        return gated

    def drains_before(self, ddi: str, drains: bool) -> bool:
        """Whether an information-returning ``ddi`` drains the queue first (MP-5, MP-6)."""
        return drains

    # -- the MP layer (runtime/_mp.py)

    def mp_layer(self, funcs: Any, on: bool) -> bool:
        """Whether the device runs the MP layer for the driver's table ``funcs`` (LA-1, MP-4)."""
        return on

    def release_refs_before_call(self) -> bool:
        """Whether the worker stops counting a command's resource references as queued when it
        takes the command rather than once the driver has returned from it (LA-9: the
        reference counts them until then, see ``MPLayer._worker_main``)."""
        return False

    def refs_release_split(self) -> bool:
        """Whether the worker's "one queued reference fewer" is a read, a scheduling point and
        a write instead of one step (the reference: one step; the app counts up in between)."""
        return False

    def command_queue(self, name: str, maxsize: int) -> CommandQueue:
        """The MP layer's command queue (MP-5: the worker takes commands under its mutex)."""
        return CommandQueue(name, maxsize)

    # -- the lock path (runtime/_lock.py)

    def refuse_discard_with_nooverwrite(self) -> bool:
        """Whether ``lock`` refuses DISCARD|NOOVERWRITE with INVALIDCALL (LA-5, LK-2)."""
        return True

    def sysmem_lock_async(self, allowed: bool) -> bool:
        """Whether a system-memory surface takes LockAsync (``allowed`` at DDI >= 0xB, LA-4)."""
        return allowed

    def lock_async_flags(self, flags: int, partial: bool) -> int:
        """The LockAsync flag word the runtime built (LA-5, LA-6, LA-7)."""
        return flags

    def no_existing_references(self, none_queued: bool) -> bool:
        """Whether LockAsync sets NoExistingReferences (``none_queued``: the runtime's queue
        holds no reference to the resource, LA-9)."""
        return none_queued

    def queued_references(self, counted: int, queue_length: int) -> int:
        """How many references to a resource the runtime still holds, for LA-9: ``counted``,
        its per-resource count (until the worker has returned from the call), not the length
        of the queue (a command the worker has taken is off the queue but not yet in the
        driver's buffer)."""
        return counted

    def rename_cookie(self, cookie: int) -> int:
        """The cookie Rename carries: the one LockAsync returned (LA-12, RN-2)."""
        return cookie

    def renames_per_discard(self) -> int:
        """How many Renames one successful Discard LockAsync enqueues (RN-1)."""
        return 1

    def rename_on_app_thread(self) -> bool:
        """Whether Rename is made at once on the app thread instead of queued (RN-3, RN-4)."""
        return False

    def enqueue_front_for_rename(self) -> bool:
        """Whether Rename is pushed to the front of the queue (RN-4, LA-13: never)."""
        return False

    def unlock_path(self, lock_path: str, mp: bool) -> str:
        """The path an unlock takes for a lock taken on ``lock_path`` (UA-3: the same one)."""
        return lock_path

    # -- the app-facing API (runtime/_device.py)

    def refuse_draw_while_locked(self) -> bool:
        """Whether a draw from a buffer held by a synchronous Lock is refused (LK-8)."""
        return True

