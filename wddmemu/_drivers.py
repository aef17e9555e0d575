"""The driver registry: every driver a run can name, and how a name (or an object) becomes a fresh
driver for one run.

:data:`DRIVERS` holds factories ``f(driver_version=None, **options)``: ``reference`` and every
seeded variant of ``umd`` (through ``umd.make_driver``), plus whatever user modules register
with :func:`register_driver` / :func:`driver` or through the ``wddmemu.drivers`` entry point.
``--driver-opt key=value`` options reach the factory as keyword arguments.

:func:`resolve_driver` accepts a registered name, ``MODULE:ATTR``, a factory, a driver class or
a driver instance (an instance serves one run only: :func:`refuse_driver_object`). Names coming
from a failure file are resolved with ``by=`` set: then a ``MODULE:ATTR`` imports only a module
the user allowed (``wddmemu._loading``), so a file never causes an import or a call by itself.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

import umd
from vthreads.registry import Registry, RegistryError, is_name, same_definition

from . import _loading
from ._errors import SpecError, user_error, user_frame
from ._files import kind_of, printable
from ._loading import import_allowed
from ._schema import is_module_name, kind_name

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
    seeded bug's), ``summary`` one line for ``wddmemu drivers``. Returns ``factory``.

    The registration is checked here, not at the first run, each refusal a one-line
    ``ValueError`` naming the driver: a name that is not one word, a factory that is not
    callable (``None``, a number, a driver object: those serve no run by name) or is an
    ``async def`` (it is called without await), ``rules`` that
    is not a tuple of rule ids or a ``summary`` that is not one line, and a name taken already
    (docs/scenarios.md: as for a scenario, unless it is the same definition run again or
    ``replace`` is true)."""
    _check_registration(name, factory, rules, summary)
    if name in DRIVERS and not replace:
        old = DRIVERS.entry(name)
        if old.obj is not factory and not same_definition(old.obj, factory):
            raise ValueError(f"driver {name} is registered twice (first by "
                             f"{old.module or 'an earlier call'}): pick another name")
        replace = True  # the same definition again (a reload): it replaces the first
    return DRIVERS.register(name, factory, rules=rules, summary=summary, replace=replace)


def _check_registration(name: str, factory: Any, rules: Any, summary: Any) -> None:
    """:func:`register_driver`'s checks of its arguments (``ValueError``, one line)."""
    if not is_name(name):
        DRIVERS.register(name, factory)  # raises the registry's own message for a bad name
    what = f"driver {name}"
    if not callable(factory):
        obj = "a driver object" if is_driver_object(factory) else kind_of(factory)
        raise ValueError(f"{what}: register a factory f(driver_version=None, **options) that "
                         f"returns a driver, or a driver class, not {obj}")
    if inspect.iscoroutinefunction(factory) or inspect.isasyncgenfunction(factory):
        # called synchronously at every run: an async def would hand the runtime a coroutine
        raise ValueError(f"{what}: a factory is a plain callable (def, not async def) that "
                         "returns a driver")
    if not (isinstance(rules, tuple | list) and all(isinstance(r, str) for r in rules)):
        raise ValueError(f'{what}: rules= takes a tuple of rule ids like ("RACE",), not '
                         f"{kind_of(rules)}")
    if not isinstance(summary, str):
        raise ValueError(f"{what}: summary= takes one line of text, not {kind_of(summary)}")
    if "\n" in summary or "\r" in summary:
        raise ValueError(f"{what}: summary= takes one line of text (wddmemu drivers prints it "
                         "as one), not text with a line break")


def driver(name: str, *, rules: tuple[str, ...] = (), summary: str = "",
           replace: bool = False) -> Callable[[F], F]:
    """Decorator form of :func:`register_driver`: ``@wddmemu.driver("mydrv")``."""

    def deco(factory: F) -> F:
        return register_driver(name, factory, rules=rules, summary=summary, replace=replace)

    return deco


# ---- the built-in drivers ----------------------------------------------------------------------


#: the ints a driver option takes: 64-bit, as every int the project stores (seeds, trace
#: fields, failure files: orjson's range); an option beyond it is refused in one line
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: what a failure file (JSON) can hold: any of these is held to what --driver-opt could give
_JSON_KINDS = (str, bool, int, float, list, tuple, dict, type(None))


def _coerce(name: str, value: Any, default: Any) -> Any:
    """An option's value as the type of the parameter's default, held to what ``--driver-opt``
    could have given (docs/explore.md, "Drivers and their options"): text is converted (int —
    ``0x`` hex too —, bool, float, a comma-separated tuple of str; text otherwise), a value
    already of that type is taken (a bool for a bool, an int for an int, a number for a float,
    a list of strings for a tuple), ints are 64-bit; any other JSON value is a
    :class:`SpecError`. A Python object no JSON file can hold (the API's own) passes as is."""
    if isinstance(value, str):
        return _from_text(name, value, default)
    if not isinstance(value, _JSON_KINDS):
        return value
    if isinstance(default, bool):
        ok = type(value) is bool
    elif isinstance(default, int):
        ok = type(value) is int
    elif isinstance(default, float):
        ok = type(value) in (int, float)
    elif isinstance(default, tuple):
        ok = isinstance(value, list | tuple) and all(isinstance(x, str) for x in value)
    else:
        ok = False
    if not ok:
        raise SpecError(f"driver option {name} takes {_takes(default)}, not "
                        f"{kind_name(list(value) if isinstance(value, tuple) else value)}")
    if type(value) is int:
        _int64(name, value, str(value) if value.bit_length() < 200 else "a huge integer")
    if type(value) is float:
        _finite(name, value, repr(value))
    if isinstance(default, tuple):
        return tuple(value)
    return float(value) if isinstance(default, float) and type(value) is int else value


def _takes(default: Any) -> str:
    """What an option with ``default`` takes, for messages."""
    if isinstance(default, bool):
        return "true/false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, tuple):
        return "a comma-separated list of names"
    return "text"


def _int64(name: str, value: int, shown: str) -> int:
    """``value`` if it is a 64-bit int; else a :class:`SpecError` showing it as ``shown``."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise SpecError(f"driver option {name} takes a 64-bit integer (-2**63..2**63-1), not "
                        f"{shown}")
    return value


def _finite(name: str, value: float, shown: str) -> float:
    """``value`` if it is finite: nan and inf would be written as null in a failure file (JSON
    has no such numbers), which then could not replay the run (h6)."""
    if not math.isfinite(value):
        raise SpecError(f"driver option {name} takes a finite number, not {shown}")
    return value


def _from_text(name: str, text: str, default: Any) -> Any:
    """``--driver-opt name=text`` as the type of the parameter's default (text otherwise)."""
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SpecError(f"driver option {name} takes true/false, not {printable(text)!r}")
    if isinstance(default, int):
        try:
            number = int(text, 0)
        except ValueError:
            raise SpecError(f"driver option {name} takes an integer, not "
                            f"{printable(text)!r}") from None
        return _int64(name, number, printable(text))
    if isinstance(default, float):
        try:
            number = float(text)
        except ValueError:
            raise SpecError(f"driver option {name} takes a number, not "
                            f"{printable(text)!r}") from None
        return _finite(name, number, printable(text))
    if isinstance(default, tuple):
        return tuple(x.strip() for x in text.split(",") if x.strip())
    return text


#: DriverConfig fields no ``--driver-opt`` text can give, and what to do instead: a factory
#: answered ``driver_version=11`` with Python's TypeError, and a seeded variant took any
#: ``policy=TEXT`` and ignored it (sweep H D1, D10)
NOT_OPTIONS = {
    "driver_version": "give the DDI version with --ddi-version (0xB), not as a driver option",
    "policy": "a policy is code: pass a umd.DriverPolicy to ReferenceDriver in a factory of "
              "your own (docs/umd.md), not a driver option",
}


def refuse_reserved(label: str, options: Mapping[str, Any], *, builtin: bool = True) -> None:
    """Refuse (SpecError, one line) an option of :data:`NOT_OPTIONS` given to driver
    ``label``: all of them for a built-in driver, ``driver_version`` alone for a factory of
    the user's (whose own options may have any other name)."""
    for k in options:
        if k in NOT_OPTIONS and (builtin or k == "driver_version"):
            raise SpecError(f"driver {label}: {k}: {NOT_OPTIONS[k]}")


def driver_config(options: Mapping[str, Any], driver_version: int | None = None
                  ) -> umd.DriverConfig:
    """A ``umd.DriverConfig`` from ``--driver-opt`` options (its field names; texts are
    converted to the fields' types) and ``driver_version``; the fields of
    :data:`NOT_OPTIONS` are refused."""
    defaults = _CONFIG_DEFAULTS
    refuse_reserved("reference", options)
    unknown = [k for k in options if k not in defaults]
    if unknown:
        known = ", ".join(k for k in defaults if k not in NOT_OPTIONS)
        raise SpecError(f"the reference driver has no option {unknown[0]!r} (options: {known})")
    kw = {k: _coerce(k, v, defaults[k]) for k, v in options.items()}
    if driver_version is not None:
        kw["driver_version"] = driver_version
    try:
        return umd.DriverConfig(**kw)
    except ValueError as e:
        raise SpecError(f"bad driver option: {e}") from None


def _builtin(variant: str | None, module: str = "umd") -> Callable[..., Any]:
    def make(driver_version: int | None = None, **options: Any) -> Any:
        cfg = driver_config(options, driver_version) if options else None
        return umd.make_driver(variant, driver_version=driver_version, config=cfg)

    make.__name__ = make.__qualname__ = (variant or "reference").replace("-", "_")
    make.__module__ = module
    make.option_defaults = _CONFIG_DEFAULTS  # type: ignore[attr-defined]
    return make


#: ``umd.DriverConfig``'s fields and defaults: the built-in drivers' options
_CONFIG_DEFAULTS: dict[str, Any] = {f.name: getattr(umd.DriverConfig(), f.name)
                                    for f in fields(umd.DriverConfig)}


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
#: the built-in variants (umd's own, registered when umd was imported)
VARIANT_NAMES: tuple[str, ...] = tuple(n for n, *_ in catalogue(umd.VARIANTS))


def sync_variants() -> None:
    """Register on :data:`DRIVERS` every variant registered on ``umd.VARIANT_REGISTRY`` since
    (docs/umd.md: "the harness then finds it by name"): a user module's, loaded after this
    module copied umd's own — the CLI and the pytest plugin import it first, so such a
    variant was an unknown driver. Called after each load and on a name not found."""
    for e in umd.VARIANT_REGISTRY.entries():
        if e.name not in DRIVERS:
            DRIVERS.register(e.name, _builtin(e.name, getattr(e.obj, "__module__", "umd")),
                             rules=e.rules, summary=e.summary)


def load_entry_points() -> None:
    """Load every ``wddmemu.scenarios`` and ``wddmemu.drivers`` entry point, once per process.
    A ``wddmemu.drivers`` entry that is not a module is registered as a driver factory under the
    entry point's name (unless its module registered that object already); a module registers
    its own.

    A broken entry point (its module does not import, or a registration in it is refused) is
    skipped: whatever it had registered before failing is removed again, it is recorded
    (:func:`wddmemu._loading.broken_plugins`) and one :class:`wddmemu.PluginWarning` names it
    and its error. Everything else loads and works; a name only it would have provided is
    unknown, and the message that says so names the broken plugin."""
    if _loading.entry_points_loaded():
        return
    import warnings
    from importlib.metadata import entry_points

    import scenarios

    for group in ENTRY_POINT_GROUPS:
        # sorted by name: the registries' order must not depend on the file system's
        for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
            before = _registered()
            names_before = (set(DRIVERS.names()), set(scenarios.REGISTRY.names()))
            dist = None if ep.dist is None else (ep.dist.metadata["Name"] or ep.dist.name)
            try:
                obj = ep.load()
                is_factory = group == "wddmemu.drivers" and not isinstance(obj, type(sys))
                if is_factory and (ep.name not in DRIVERS or DRIVERS[ep.name] is not obj):
                    register_driver(ep.name, obj)
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # the plugin's own failure: skip it, say so
                for reg, had in ((DRIVERS, names_before[0]), (scenarios.REGISTRY, names_before[1])):
                    for name in set(reg.names()) - had:
                        reg.unregister(name)
                err = str(user_error("x", e)).partition(": ")[2]
                plugin = _loading.BrokenPlugin(ep.name, ep.value, group, dist, err)
                _loading.note_broken(plugin)
                warnings.warn(f"plugin {plugin.describe()} is broken and was skipped: {err}",
                              _loading.PluginWarning, stacklevel=2)
                continue
            if dist is not None and ep.dist is not None:
                _loading.note_distribution(dist, ep.dist.version, ep.module)
                _loading.note_provided(("distribution", dist), _registered() - before)
            _loading.allow_module(ep.module)


def _registered() -> set[tuple[str, str]]:
    """Every registered scenario and driver, as ``(kind, name)``."""
    import scenarios

    return ({("scenario", n) for n in scenarios.REGISTRY.names()}
            | {("driver", n) for n in DRIVERS.names()})


def load_module(name: str) -> None:
    """:func:`wddmemu._loading.load_module` (import ``name`` on the user's word and allow
    files to name it), noting the scenarios and drivers it registers: a failure file records
    the module only when its run used one of them (:func:`needed_by`)."""
    before = _registered()
    _loading.load_module(name)
    sync_variants()  # before the count: the module provides the variants it registered
    # a path (``--load dir/mod.py``, ``--load dir/pkg``) is loaded, and recorded, as the
    # module it names (``mod``, ``pkg``)
    module = _loading.path_module(name) if isinstance(name, str) and _loading.is_load_path(
        name) else name
    _loading.note_provided(("module", module), _registered() - before)


def needed_by(scenario: str, driver: str) -> dict[str, list[str]]:
    """The ``load`` section of a failure file of a run of ``scenario`` with ``driver`` (a
    registered name or ``MODULE:ATTR``): the loaded modules and installed distributions that
    provide those two, nothing else — a built-in-only run needs none."""
    import scenarios

    wanted = []
    if scenario in scenarios.REGISTRY:
        fn = scenarios.REGISTRY[scenario].fn
        wanted.append(_loading.provider_of("scenario", scenario,
                                           getattr(fn, "__module__", "") or ""))
    if ":" not in driver and driver in DRIVERS:
        wanted.append(_loading.provider_of("driver", driver, DRIVERS.entry(driver).module))
    return _loading.needed(wanted)


# ---- resolving ---------------------------------------------------------------------------------


def _is_async(fn: Any) -> bool:
    """Whether calling ``fn`` makes a coroutine or an async generator instead of a value."""
    call = fn
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        call = next((vars(k)["__call__"] for k in type(fn).__mro__ if "__call__" in vars(k)), fn)
    return any(check(f) for f in (fn, call)
               for check in (inspect.iscoroutinefunction, inspect.isasyncgenfunction))


def _call_factory(fn: Callable[..., Any], label: str, ddi_version: int | None,
                  options: Mapping[str, Any], default_version: int | None = None) -> Any:
    if not isinstance(fn, type) and _is_async(fn):
        raise SpecError(f"driver factory {label} is async: a factory is a plain callable "
                        "(def, not async def) that returns a driver")
    # one signature for both questions (it is most of what resolving a run costs): which
    # options the factory takes, and whether it takes driver_version — a factory whose
    # signature cannot be read (a C callable) is taken to, and to take no option
    try:
        params = inspect.signature(fn).parameters
    except Exception:  # also a __signature__ of the user's that raises
        params, var_kw, takes_version = {}, False, True
    else:
        var_kw = any(q.kind is q.VAR_KEYWORD for q in params.values())
        takes_version = var_kw or "driver_version" in params
    kw: dict[str, Any] = {}
    #: a factory taking ``**options`` may say what they are (the built-ins: DriverConfig's)
    declared: dict[str, Any] = getattr(fn, "option_defaults", None) or {}
    refuse_reserved(label, options, builtin=declared is _CONFIG_DEFAULTS)
    for k, v in options.items():
        p = params.get(k)
        if p is None and not var_kw:
            known = ", ".join(n for n in params if n != "driver_version") or "none"
            raise SpecError(f"driver {label} has no option {k!r} (options: {known})")
        kw[k] = _coerce(k, v, p.default if p is not None else declared.get(k))
    if ddi_version is not None and not takes_version:
        raise SpecError(f"driver {label} takes no driver_version (drop --ddi-version)")
    version = ddi_version if ddi_version is not None else default_version
    if version is not None and takes_version:
        kw["driver_version"] = version
    try:
        drv = fn(**kw)
    except SpecError:
        raise
    except (TypeError, ValueError) as e:
        if user_frame(e):  # the user's factory judged its options: its line, like any raise
            raise user_error(f"driver factory {label} failed", e) from None
        # a value our own factories refused (a DriverConfig field): the message says it all
        raise SpecError(f"driver factory {label} failed: {e}") from None
    except KeyboardInterrupt:  # a real Ctrl-C (or the user's own raise of one): exit 130
        raise
    except BaseException as e:  # the user's factory raised: exit 2 with its line (sys.exit,
        # GeneratorExit or a BaseException of its own too: sweep E D3)
        raise user_error(f"driver factory {label} failed", e) from None
    if inspect.isawaitable(drv) or inspect.isasyncgen(drv):
        close = getattr(drv, "close", None) or getattr(drv, "aclose", None)
        if inspect.iscoroutine(drv):
            drv.close()  # never awaited on purpose: no RuntimeWarning
        elif close is not None and not inspect.isasyncgen(drv):
            close()
        raise SpecError(f"driver factory {label} returned an awaitable: a factory is a plain "
                        "callable (def, not async def) that returns a driver")
    try:
        is_driver = hasattr(drv, "open_adapter")
    except Exception as e:  # its __getattr__ or property raised (sweep E D1)
        raise user_error(f"driver factory {label} returned an object whose open_adapter "
                         "lookup raised", e) from None
    if not is_driver:
        raise SpecError(f"{label} did not produce a driver (no open_adapter)")
    return drv


def is_driver_object(obj: Any) -> bool:
    """Whether ``obj`` is a driver itself (it has ``open_adapter`` and is not a class), not a
    factory or class that makes one: such an object serves one run only. An object whose
    attribute lookup raises is none (the user's ``__getattr__`` is not run twice to say so)."""
    try:
        return hasattr(obj, "open_adapter") and not isinstance(obj, type)
    except Exception:  # user code raising: not a driver object
        return False


def _from_object(obj: Any, label: str, ddi_version: int | None,
                 options: Mapping[str, Any], default_version: int | None = None) -> Any:
    if isinstance(obj, type) and issubclass(obj, umd.ReferenceDriver):
        version = ddi_version if ddi_version is not None else default_version
        return obj(driver_config(options, version))
    if is_driver_object(obj):
        # a scenario's declared version is a default for drivers that take one: an object
        # reports its own through OpenAdapter. Only an explicit request is refused.
        if ddi_version is not None:
            raise SpecError(f"{label} is a driver object; it cannot take --ddi-version (it "
                            "reports its own version): drop it, or pass a factory")
        if options:
            raise SpecError(f"{label} is a driver object; it takes no --driver-opt")
        return obj
    if callable(obj):
        return _call_factory(obj, label, ddi_version, options, default_version)
    raise SpecError(f"{label} is neither a driver nor a driver factory")


def describe_driver(obj: Any) -> str:
    """How a driver given as an object shows in messages: ``module.qualname`` for a factory or
    class, ``Class()`` for a driver object."""
    name = getattr(obj, "__qualname__", None)
    if not isinstance(name, str):
        return f"{type(obj).__qualname__}()"
    return f"{getattr(obj, '__module__', '?')}.{name}"


def _lookup(driver: Any, by: str | None) -> tuple[Any, str]:
    """The object ``driver`` names (a registered factory, ``MODULE:ATTR``'s attribute, or
    ``driver`` itself) and how it shows in messages."""
    if not isinstance(driver, str):
        return driver, describe_driver(driver)
    if ":" not in driver:
        if driver not in DRIVERS:
            sync_variants()  # registered on umd.VARIANT_REGISTRY from Python, after the copy
        try:
            return DRIVERS[driver], driver
        except RegistryError:
            raise SpecError(f"unknown driver {driver!r}"
                            + (_loading.broken_hint("driver", driver) or
                               ": run 'wddmemu drivers' for the registered ones, or use "
                               "MODULE:ATTR")) from None
    mod_name, _, attr = driver.partition(":")
    if not is_module_name(mod_name):  # not given to allow_module, which refuses it
        raise SpecError(f"driver {printable(driver)!r}: {printable(mod_name)!r} is not a module "
                        "name: give MODULE:ATTR, like mypkg.drivers:make")
    if by is None:
        _loading.allow_module(mod_name)  # the user typed it: it may be imported, now and later
    mod = import_allowed(mod_name, by=by or "--driver", what="driver module")
    try:
        return getattr(mod, attr), driver
    except AttributeError:
        raise SpecError(f"driver module {mod_name!r} has no attribute {attr!r}") from None


def resolve_driver(driver: Any, ddi_version: int | None,
                   options: Mapping[str, Any] | None = None, *, by: str | None = None,
                   default_version: int | None = None) -> Any:
    """A fresh driver for one run from ``driver``: a registered name (:data:`DRIVERS`),
    ``MODULE:ATTR`` naming a factory, class or driver object, or such an object itself.
    ``options`` go to the factory as keyword arguments. ``ddi_version`` is an explicit request
    (``--ddi-version``): a driver that cannot take one refuses it. ``default_version`` is the
    scenario's declared version: given to a factory that takes ``driver_version`` and to a
    ``ReferenceDriver`` class, ignored by a factory without that parameter and by a driver
    object, which report their own version through OpenAdapter. ``by`` (a file path) marks a
    name read from a file: its ``MODULE:ATTR`` imports only an allowed module. Raises
    :class:`SpecError`."""
    if options is not None and not isinstance(options, Mapping):
        raise SpecError(f"driver options are key=value pairs (a dict), not "
                        f"{type(options).__name__}")
    opts = dict(options or {})
    obj, label = _lookup(driver, by)
    return _from_object(obj, label, ddi_version, opts, default_version)


def refuse_driver_object(driver: Any, *, by: str | None = None) -> None:
    """Raise :class:`SpecError` if ``driver`` is (or names) a driver object rather than a
    factory or class: where many runs are made (explore, check, campaigns), each schedule
    needs a driver of its own, since an object keeps its state (device names, handles,
    counters) from one run to the next and schedule N would then not be schedule N alone."""
    obj, label = _lookup(driver, by)
    if is_driver_object(obj):
        raise SpecError(f"the driver {label} is an object, not a factory or class: exploring "
                        "runs many schedules and each needs a fresh driver, so pass its "
                        "factory or class (a function that returns a driver: "
                        "--driver MODULE:FACTORY, or driver=make in Python); an object runs "
                        "one schedule (wddmemu run, wddmemu.run)")


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
