"""The scenario registry: named, parameterised application workloads.

A scenario is ``async def fn(ctx: ScenarioContext, **params)`` registered with
:func:`scenario`. It runs on the application thread, talks to the emulated runtime's
application-facing API (``runtime.Device``), and may spawn more application threads.
:data:`REGISTRY` is a ``vthreads.registry.Registry``: user modules add entries with the same
decorator (loaded with ``wddmemu --load MODULE`` or the ``wddmemu.scenarios`` entry point; see
``docs/scenarios.md``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vthreads.registry import Registry, RegistryError

#: an int parameter without a range is still 64-bit, as every int a failure file stores
INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True)
class Param:
    """One scenario parameter: its type (int, bool or str), default and a one-line help.
    ``range=(lo, hi)`` bounds an int parameter (both ends included): a value outside is refused
    with a one-line message before the run, and explorers can rely on it."""

    type: type
    default: Any
    help: str = ""
    range: tuple[int, int] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.range is not None:
            lo, hi = self.range
            if self.type is not int or lo > hi:
                raise ValueError("range=(lo, hi) takes an int parameter and lo <= hi")
            self.check("default", self.default)

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it is of :attr:`type` and within :attr:`range` (an int without a range:
        within 64 bits); ``ValueError`` with a one-line reason (a value from a file may be
        anything: ``True`` is no frame count)."""
        if type(value) is not self.type:
            raise ValueError(f"parameter {name} takes {self._what()}, not "
                             f"{type(value).__name__}")
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            shown = value if value.bit_length() < 200 else "a huge integer"
            raise ValueError(f"parameter {name} takes {self.range[0]}..{self.range[1]}, "
                             f"not {shown}")
        if self.type is int and not INT64[0] <= value <= INT64[1]:
            shown = value if value.bit_length() < 200 else "a huge integer"
            raise ValueError(f"parameter {name} takes a 64-bit integer (-2**63..2**63-1), "
                             f"not {shown}")
        return value

    def _what(self) -> str:
        if self.range is not None:
            return f"an integer {self.range[0]}..{self.range[1]}"
        return {bool: "true/false", int: "an integer"}.get(self.type, "text")

    def parse(self, name: str, text: str) -> Any:
        """Parse ``text`` (from ``-p name=text``); raises ``ValueError`` with a one-line reason."""
        if self.type is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"parameter {name} takes true/false, not {text!r}")
        if self.type is int:
            try:
                return int(text, 0)
            except ValueError:
                raise ValueError(f"parameter {name} takes an integer, not {text!r}") from None
        return text


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    fn: Callable[..., Awaitable[Any]]
    params: dict[str, Param] = field(default_factory=dict)
    #: kernel configuration overrides, computed from the parameters (``KernelConfig`` fields)
    kernel: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: the driver's DDI version when the command line does not say (None: the driver's own)
    ddi_version: int | None = None
    #: a check across parameters (each one's range is its :class:`Param`'s): the resolved
    #: parameters → ``None`` if they go together, else a one-line reason
    check: Callable[[dict[str, Any]], str | None] | None = None

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown names raise ``ValueError``."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise ValueError(
                f"scenario {self.name} has no parameter {unknown[0]!r} (parameters: {known})"
            )
        out = {k: p.default for k, p in self.params.items()}
        for k, v in given.items():
            p = self.params[k]
            out[k] = p.check(k, p.parse(k, v) if isinstance(v, str) and p.type is not str
                             else v)
        why = self.check(out) if self.check else None
        if why:
            raise ValueError(f"scenario {self.name}: {why}")
        return out


#: every registered scenario, in registration order (``wddmemu scenarios`` lists them)
REGISTRY: Registry[Scenario] = Registry("scenario")


def scenario(
    name: str,
    description: str,
    *,
    kernel: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ddi_version: int | None = None,
    check: Callable[[dict[str, Any]], str | None] | None = None,
    **params: Param,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Register ``fn`` as scenario ``name`` with its one-line ``description`` and its
    parameters (keyword arguments: :class:`Param`). ``kernel`` maps the resolved parameters to
    ``kmd.KernelConfig`` overrides; ``ddi_version`` is the driver's DDI version when the command
    line does not say; ``check`` judges the parameters together (a one-line reason or ``None``),
    before the run like the ranges. Registering a name twice raises ``ValueError``."""

    def deco(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if name in REGISTRY:
            raise ValueError(f"scenario {name} is registered twice")
        REGISTRY.register(name, Scenario(name, description, fn, dict(params), kernel,
                                         ddi_version, check), summary=description)
        return fn

    return deco


def get(name: str) -> Scenario:
    """The scenario called ``name``; ``KeyError`` with the known names otherwise."""
    try:
        return REGISTRY[name]
    except RegistryError:
        raise KeyError(
            f"unknown scenario {name!r}: run 'wddmemu scenarios' to list them"
        ) from None
