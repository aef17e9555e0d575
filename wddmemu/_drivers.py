"""The driver registry: every driver a run can name, and how a name (or an object) becomes a
fresh driver for one run.

:data:`DRIVERS` holds factories ``f(driver_version=None, **options)``: ``reference`` and every
seeded variant of ``umd`` (through ``umd.make_driver``), plus whatever user modules register
with :func:`register_driver` / :func:`driver` or through the ``wddmemu.drivers`` entry point.
``--driver-opt key=value`` options reach the factory as keyword arguments.

:func:`resolve_driver` accepts a registered name, ``MODULE:ATTR``, a factory, a driver class or a
driver instance. Names coming from a failure file are resolved with ``by=`` set: then a
``MODULE:ATTR`` imports only a module the user allowed (``wddmemu._loading``), so a file never
causes an import or a call by itself.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

import umd
from vthreads.registry import Registry, RegistryError

from . import _loading
from ._errors import SpecError, user_error
from ._loading import import_allowed

#: the entry-point groups loaded automatically (``[project.entry-points."wddmemu.drivers"]``)
ENTRY_POINT_GROUPS = ("wddmemu.scenarios", "wddmemu.drivers")

F = TypeVar("F", bound=Callable[..., Any])

#: every named driver: factories ``f(driver_version=None, **options)`` returning a driver
DRIVERS: Registry[Callable[..., Any]] = Registry("driver")

RULE_ID = re.compile(r"\b(?:[A-Z]{2,4}\d?-\d+|DATA|RACE|deadlock|exception)\b")


def register_driver(name: str, factory: F, *, rules: tuple[str, ...] = (), summary: str = "",
                    replace: bool = False) -> F:
    """Register ``factory`` (``f(driver_version=None, **options)`` returning an object with
    ``async open_adapter(D3DDDIARG_OPENADAPTER)``, or a driver class) as driver ``name``, so
    ``--driver name`` and failure files can name it. ``rules`` are the rule ids it is about (a
    seeded bug's), ``summary`` one line for ``wddmemu drivers``. Returns ``factory``."""
    return DRIVERS.register(name, factory, rules=rules, summary=summary, replace=replace)


def driver(name: str, *, rules: tuple[str, ...] = (), summary: str = "",
           replace: bool = False) -> Callable[[F], F]:
    """Decorator form of :func:`register_driver`: ``@wddmemu.driver("mydrv")``."""

    def deco(factory: F) -> F:
        return register_driver(name, factory, rules=rules, summary=summary, replace=replace)

    return deco


# ---- the built-in drivers ----------------------------------------------------------------------


def _coerce(name: str, text: Any, default: Any) -> Any:
    """An option's text as the type of the parameter's default (int, bool, float, tuple of
    str); other parameters get the text itself."""
    if not isinstance(text, str):
        return text
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SpecError(f"driver option {name} takes true/false, not {text!r}")
    if isinstance(default, int):
        try:
            return int(text, 0)
        except ValueError:
            raise SpecError(f"driver option {name} takes an integer, not {text!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise SpecError(f"driver option {name} takes a number, not {text!r}") from None
    if isinstance(default, tuple):
        return tuple(x.strip() for x in text.split(",") if x.strip())
    return text


def driver_config(options: Mapping[str, Any], driver_version: int | None = None
                  ) -> umd.DriverConfig:
    """A ``umd.DriverConfig`` from ``--driver-opt`` options (its field names; texts are
    converted to the fields' types) and ``driver_version``."""
    defaults = {f.name: getattr(umd.DriverConfig(), f.name) for f in fields(umd.DriverConfig)}
    unknown = [k for k in options if k not in defaults or k == "driver_version"]
    if unknown:
        known = ", ".join(k for k in defaults if k != "driver_version")
        raise SpecError(f"the reference driver has no option {unknown[0]!r} (options: {known})")
    kw = {k: _coerce(k, v, defaults[k]) for k, v in options.items()}
    if driver_version is not None:
        kw["driver_version"] = driver_version
    try:
        return umd.DriverConfig(**kw)
    except ValueError as e:
        raise SpecError(f"bad driver option: {e}") from None


def _builtin(variant: str | None) -> Callable[..., Any]:
    def make(driver_version: int | None = None, **options: Any) -> Any:
        cfg = driver_config(options, driver_version) if options else None
        return umd.make_driver(variant, driver_version=driver_version, config=cfg)

    make.__name__ = make.__qualname__ = (variant or "reference").replace("-", "_")
    make.__module__ = "umd"
    return make


def catalogue(reg: Any) -> list[tuple[str, Any, tuple[str, ...], str]]:
    """``(name, object, rules, summary)`` for every entry of a registry of named things, in its
    order; also reads the plain ``name -> description`` dicts (rule ids taken from the
    description) and ``name -> VariantInfo`` dicts of layers that do not use a
    :class:`Registry` yet."""
    if isinstance(reg, Registry):
        return [(e.name, e.obj, e.rules, e.summary) for e in reg.entries()]
    out = []
    for name, v in reg.items():
        if isinstance(v, str):
            out.append((name, v, tuple(dict.fromkeys(RULE_ID.findall(v))), v))
        else:
            rules = tuple(getattr(v, "expected_rules", getattr(v, "rules", ())))
            summary = getattr(v, "description", getattr(v, "summary", ""))
            out.append((name, v, rules, " ".join(str(summary).split())))
    return out


DRIVERS.register("reference", _builtin(None),
                 summary="the reference driver (umd.ReferenceDriver): every rule kept")
for _name, _info, _rules, _summary in catalogue(umd.VARIANTS):
    DRIVERS.register(_name, _builtin(_name), rules=_rules, summary=_summary)
VARIANT_NAMES: tuple[str, ...] = tuple(n for n, *_ in catalogue(umd.VARIANTS))


def load_entry_points() -> None:
    """Load every ``wddmemu.scenarios`` and ``wddmemu.drivers`` entry point, once per process.
    A ``wddmemu.drivers`` entry that is not a module is registered as a driver factory under the
    entry point's name (unless its module registered that object already); a module registers
    its own. Loading errors are one :class:`SpecError` line."""
    if _loading.entry_points_loaded():
        return
    from importlib.metadata import entry_points

    for group in ENTRY_POINT_GROUPS:
        # sorted by name: the registries' order must not depend on the file system's
        for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
            try:
                obj = ep.load()
            except Exception as e:
                from vthreads.lowlevel import safe_str, type_name  # the entry point's: untrusted

                raise SpecError(f"cannot load entry point {ep.name} = {ep.value} ({group}): "
                                f"{type_name(e)}: {safe_str(e)}") from None
            is_factory = group == "wddmemu.drivers" and not isinstance(obj, type(sys))
            if is_factory and (ep.name not in DRIVERS or DRIVERS[ep.name] is not obj):
                DRIVERS.register(ep.name, obj)
            if ep.dist is not None:
                _loading.note_distribution(ep.dist.metadata["Name"] or ep.dist.name,
                                           ep.dist.version)
            _loading.allow_module(ep.module)


# ---- resolving ---------------------------------------------------------------------------------


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def _call_factory(fn: Callable[..., Any], label: str, ddi_version: int | None,
                  options: Mapping[str, Any]) -> Any:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    kw: dict[str, Any] = {}
    for k, v in options.items():
        p = params.get(k)
        if p is None and not any(q.kind is q.VAR_KEYWORD for q in params.values()):
            known = ", ".join(n for n in params if n != "driver_version") or "none"
            raise SpecError(f"driver {label} has no option {k!r} (options: {known})")
        kw[k] = _coerce(k, v, p.default if p is not None else None)
    if ddi_version is not None:
        if not _accepts(fn, "driver_version"):
            raise SpecError(f"driver {label} takes no driver_version (drop --ddi-version)")
        kw["driver_version"] = ddi_version
    try:
        drv = fn(**kw)
    except SpecError:
        raise
    except (TypeError, ValueError) as e:
        raise SpecError(f"driver factory {label} failed: {e}") from None
    except (Exception, SystemExit) as e:  # the user's factory raised: exit 2 with its line
        raise user_error(f"driver factory {label} failed", e) from None
    if not hasattr(drv, "open_adapter"):
        raise SpecError(f"{label} did not produce a driver (no open_adapter)")
    return drv


def _from_object(obj: Any, label: str, ddi_version: int | None,
                 options: Mapping[str, Any]) -> Any:
    if isinstance(obj, type) and issubclass(obj, umd.ReferenceDriver):
        return obj(driver_config(options, ddi_version))
    if hasattr(obj, "open_adapter") and not isinstance(obj, type):
        if ddi_version is not None:
            raise SpecError(f"{label} is a driver object; it cannot take --ddi-version")
        if options:
            raise SpecError(f"{label} is a driver object; it takes no --driver-opt")
        return obj
    if callable(obj):
        return _call_factory(obj, label, ddi_version, options)
    raise SpecError(f"{label} is neither a driver nor a driver factory")


def describe_driver(obj: Any) -> str:
    """How a driver given as an object shows in messages."""
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{getattr(obj, '__module__', '?')}.{name}"


def resolve_driver(driver: Any, ddi_version: int | None,
                   options: Mapping[str, Any] | None = None, *, by: str | None = None) -> Any:
    """A fresh driver for one run from ``driver``: a registered name (:data:`DRIVERS`),
    ``MODULE:ATTR`` naming a factory, class or driver object, or such an object itself.
    ``options`` go to the factory as keyword arguments. ``by`` (a file path) marks a name read
    from a file: its ``MODULE:ATTR`` imports only an allowed module. Raises :class:`SpecError`."""
    opts = dict(options or {})
    if not isinstance(driver, str):
        return _from_object(driver, describe_driver(driver), ddi_version, opts)
    if ":" not in driver:
        try:
            factory = DRIVERS[driver]
        except RegistryError:
            raise SpecError(f"unknown driver {driver!r}: run 'wddmemu drivers' for the "
                            "registered ones, or use MODULE:ATTR") from None
        return _from_object(factory, driver, ddi_version, opts)
    mod_name, _, attr = driver.partition(":")
    if by is None:
        _loading.allow_module(mod_name)  # the user typed it: it may be imported, now and later
    mod = import_allowed(mod_name, by=by or "--driver", what="driver module")
    try:
        obj = getattr(mod, attr)
    except AttributeError:
        raise SpecError(f"driver module {mod_name!r} has no attribute {attr!r}") from None
    return _from_object(obj, driver, ddi_version, opts)


def driver_name(obj: Any) -> str | None:
    """The name a driver given as an object can be saved under: its registered name, or
    ``MODULE:QUALNAME`` when that names it again from another process; None otherwise."""
    if isinstance(obj, str):
        return obj
    for e in DRIVERS.entries():
        if e.obj is obj:
            return e.name
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not mod or not qual or mod == "__main__" or "<" in qual or "." in qual:
        return None
    if getattr(sys.modules.get(mod), qual, None) is obj:
        return f"{mod}:{qual}"
    return None
