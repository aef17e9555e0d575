"""Injected faults: the GPU hangs or the device goes away at a chosen point of a run.

FoundationDB's "buggify" and Jepsen's nemesis, at the kernel's real seams: a :class:`Fault` is
armed on a :class:`~kmd.Kernel` (``kernel.arm_fault``) before the run and fires through the same
paths a real hang or removal takes — the GPU engine, the TDR watchdog and the adapter reset
(kmd/_tdr.py), device removal (``kmd.inject.removal``). Nothing above the kernel is told: the
runtime and the driver learn of it from the codes the callbacks and thunks return, as on
Windows. The text forms (``wddmemu --inject``, docs/kmd.md §7)::

    tdr@step=N        from scheduling step N the GPU hangs on the DMA buffer it runs (or the next
                      one); the watchdog times it out (TDR-1) and resets the adapter (TDR-3…10)
    removal@call=N    on entry of the N-th thunk call of the run the adapter is removed, like a
                      PnP stop: every device removed, DMA aborted, video memory purged
    removal@device    the first device created is removed as D3DKMTCreateDevice returns it
    removal@device=N  … the N-th device created
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAULT_FORMS", "Fault", "parse_fault"]

#: the accepted text forms, for error messages and help
FAULT_FORMS = "tdr@step=N, removal@call=N, removal@device or removal@device=N"

#: kind@point → whether N may be left out (it is then 1)
_POINTS = {("tdr", "step"): False, ("removal", "call"): False, ("removal", "device"): True}
#: the largest N accepted: beyond any run's step budget or call count, and it keeps the int small
MAX_AT = 10**9


@dataclass(frozen=True)
class Fault:
    """One fault to inject: ``kind`` ``tdr`` or ``removal``, fired ``at`` a ``step``, a thunk
    ``call`` or a ``device`` creation, the ``n``-th one (n ≥ 1)."""

    kind: str
    at: str
    n: int = 1

    def __str__(self) -> str:
        if self.at == "device" and self.n == 1:
            return "removal@device"
        return f"{self.kind}@{self.at}={self.n}"


def parse_fault(text: str) -> Fault:
    """The :class:`Fault` ``text`` names (one of :data:`FAULT_FORMS`); ``ValueError`` with a
    one-line reason otherwise."""
    head, eq, n = text.strip().partition("=") if isinstance(text, str) else ("", "", "")
    kind, _, at = head.partition("@")
    optional = _POINTS.get((kind, at))
    if optional is None or (not eq and not optional) or (eq and not n.isdigit()) or (
            eq and not n.isascii()):
        raise ValueError(f"cannot inject {text!r}: use {FAULT_FORMS}")
    value = (int(n) if len(n) <= 10 else MAX_AT + 1) if eq else 1  # no 4,300-digit ints
    if not 1 <= value <= MAX_AT:
        raise ValueError(f"cannot inject {text!r}: N takes 1..{MAX_AT}")
    return Fault(kind, at, value)
