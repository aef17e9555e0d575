"""Kernel policy hooks and the registry of seeded kernel bugs.

A seeded kernel bug is a subclass of :class:`KernelHooks` that overrides one hook, registered in
:data:`KERNEL_BUG_REGISTRY` next to the code whose promise it breaks (``kmd/_lock.py`` for
``donotwait-waits``), with the rule ids it should trip. ``KernelConfig(bugs=...)`` names them;
``Kernel`` builds its ``hooks`` object from the named classes with :func:`kernel_hooks`. Keeping
the decision behind a hook (instead of ``if "bug" in bugs`` in the lock path) means production
code reads as the contract says, and a bug is one small, named, documented override.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from vthreads.registry import Registry

from .flags import D3DDDICB_LOCKFLAGS

__all__ = ["KERNEL_BUG_REGISTRY", "KernelBugSummaries", "KernelHooks", "kernel_hooks"]

_DONOTWAIT = int(D3DDDICB_LOCKFLAGS.DonotWait)


class KernelHooks:
    """The kernel's overridable decisions. The defaults follow kernel-contract.md; a seeded bug
    subclasses this and overrides exactly one method."""

    def busy_lock_fails_at_once(self, flags: int) -> bool:
        """KL-21: a lock of a busy instance fails at once with STATUS_GRAPHICS_ALLOCATION_BUSY
        when (and only when) ``flags`` has DonotWait; otherwise the lock waits for the GPU."""
        return bool(flags & _DONOTWAIT)


#: every seeded kernel bug: a :class:`KernelHooks` subclass, with the rule ids it trips
KERNEL_BUG_REGISTRY: Registry[type[KernelHooks]] = Registry("kernel bug")


class KernelBugSummaries(Mapping[str, str]):
    """A live read-only view ``name -> one-line summary`` of :data:`KERNEL_BUG_REGISTRY` (this is
    ``kmd.KERNEL_BUGS``), in registration order."""

    def __getitem__(self, name: str) -> str:
        if name not in KERNEL_BUG_REGISTRY:
            raise KeyError(name)
        return KERNEL_BUG_REGISTRY.entry(name).summary

    def __iter__(self) -> Iterator[str]:
        return iter(KERNEL_BUG_REGISTRY.names())

    def __len__(self) -> int:
        return len(KERNEL_BUG_REGISTRY)

    def __repr__(self) -> str:
        return f"KernelBugSummaries({dict(self)!r})"


def kernel_hooks(bugs: Iterable[str] = ()) -> KernelHooks:
    """A hooks object with the overrides of every named bug (registry order decides who wins
    when two override the same hook). An unknown name raises ``RegistryError``."""
    wanted = set(bugs)
    for name in sorted(wanted):
        KERNEL_BUG_REGISTRY.entry(name)  # unknown name -> RegistryError, one line
    classes = [KERNEL_BUG_REGISTRY[n] for n in KERNEL_BUG_REGISTRY.names() if n in wanted]
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, KernelHooks)):
            raise TypeError(f"kernel bug {cls!r} must subclass kmd.KernelHooks")
    if not classes:
        return KernelHooks()
    if len(classes) == 1:
        return classes[0]()
    combined = type("KernelHooks+" + "+".join(c.__name__ for c in classes), tuple(classes), {})
    return combined()
