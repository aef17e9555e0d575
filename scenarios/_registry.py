"""The scenario registry: named, parameterised application workloads.

A scenario is ``async def fn(ctx: ScenarioContext, **params)`` registered with
:func:`scenario`. It runs on the application thread, talks to the emulated runtime's
application-facing API (``runtime.Device``), and may spawn more application threads.
:data:`REGISTRY` is a ``vthreads.registry.Registry``: user modules add entries with the same
decorator (loaded with ``wddmemu --load MODULE`` or the ``wddmemu.scenarios`` entry point; see
``docs/scenarios.md``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vthreads.lowlevel import safe_repr
from vthreads.registry import Registry, RegistryError, is_name, same_definition

#: an int parameter without a range is still 64-bit, as every int a failure file stores
INT64 = (-(1 << 63), (1 << 63) - 1)


def _kind(value: Any) -> str:
    """A value a parameter refuses, in a file's words rather than Python's (``NoneType``,
    ``bool``: sweep H D7): ``null``, ``true``, the number, ``text``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):  # orjson reads an int past 64 bits as a float
        return repr(value) if abs(value) < 2**63 else "a number too large"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Param:
    """One scenario parameter: its type (int, bool or str), default and a one-line help.
    ``range=(lo, hi)`` bounds an int parameter (both ends included): a value outside is refused
    with a one-line message before the run, and explorers can rely on it."""

    type: type
    default: Any
    help: str = ""
    range: tuple[int, int] | None = field(default=None, kw_only=True)

    # the range (an int parameter's, lo <= hi) and the default against it are checked by
    # check_definition, which knows the parameter's name and the scenario's: a check here, at
    # construction, named neither ("range=(lo, hi) takes an int parameter", h8)

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it is of :attr:`type` and within :attr:`range` (an int without a range:
        within 64 bits); ``ValueError`` with a one-line reason (a value from a file may be
        anything: ``True`` is no frame count)."""
        if type(value) is not self.type:
            raise ValueError(f"parameter {name} takes {self._what()}, not {_kind(value)}")
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
        why = _judge(f"scenario {self.name}", self.check, out)
        if why:
            raise ValueError(f"scenario {self.name}: {why}")
        return out

    def kernel_overrides(self, params: dict[str, Any]) -> dict[str, Any]:
        """``kernel=``'s ``KernelConfig`` overrides for the resolved ``params`` (``{}`` without
        one). Whatever it raises, or a result that is not a dict, is a ``ValueError`` naming
        the scenario, the parameters and where it raised: the user's function, judged for
        every ``-p`` value and not only the defaults (h8)."""
        if self.kernel is None:
            return {}
        over = _call(f"scenario {self.name}", "kernel", self.kernel, params)
        if not isinstance(over, dict):
            raise ValueError(f"scenario {self.name}: kernel= returns a dict of KernelConfig "
                             f"fields, not {type(over).__name__}")
        return over


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
    before the run like the ranges.

    The definition is checked here, not at the first run (:func:`check_definition`): a name
    taken already, a function that is not ``async def``, a :class:`Param` the function does not
    take (or a parameter it needs that no :class:`Param` declares), a parameter that is not a
    :class:`Param` or whose default is not of its type, a ``kernel``/``check`` that is not
    callable, a ``ddi_version`` that is not a 32-bit int, defaults that fail ``check`` or give
    ``kernel`` overrides that are no ``KernelConfig`` field. Each raises ``ValueError`` with one
    line naming the scenario; loading the module that holds it (``--load``, an entry point)
    then reports that line with the user's file and line (exit 2)."""

    def deco(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        # the same function of the same module again is that module run again (a reload, a
        # Dask upload_file of a module imported already): it replaces the first registration
        again = name in REGISTRY and same_definition(REGISTRY[name].fn, fn)
        if name in REGISTRY and not again:
            first = REGISTRY[name].fn
            raise ValueError(f"scenario {name} is registered twice (first by "
                             f"{getattr(first, '__module__', '?')}): pick another name")
        sc = Scenario(name, description, fn, dict(params), kernel, ddi_version, check)
        check_definition(sc)
        REGISTRY.register(name, sc, summary=description, replace=again)
        return fn

    return deco


def _callable_name(fn: Any) -> str:
    return f"{getattr(fn, '__name__', None) or type(fn).__name__}()"


def _check_params(what: str, params: dict[str, Any]) -> None:
    """Each declared parameter is a :class:`Param` of int, bool or str whose default is of its
    type and, with a ``range=``, inside it (the message names the scenario and parameter)."""
    for k, prm in params.items():
        if not isinstance(prm, Param):
            raise ValueError(f"{what}: parameter {k} is {prm!r}, not a Param(type, default, "
                             "help)")
        if prm.type not in (int, bool, str):
            raise ValueError(f"{what}: parameter {k} has type {prm.type!r}: use int, bool or str")
        _check_range(what, k, prm)
        if type(prm.default) is prm.type and prm.range is not None:
            try:
                prm.check(k, prm.default)
            except ValueError as e:
                raise ValueError(f"{what}: the default of {e}") from None
        if type(prm.default) is not prm.type:
            raise ValueError(f"{what}: parameter {k}'s default {prm.default!r} is not "
                             f"{prm.type.__name__}")


def _check_range(what: str, k: str, prm: Param) -> None:
    """A ``range=`` is two ints ``lo <= hi`` on an int parameter (the message names both the
    scenario and the parameter)."""
    rng = prm.range
    if rng is None:
        return
    if prm.type is not int:
        raise ValueError(f"{what}: parameter {k} is {prm.type.__name__}, but range=(lo, hi) "
                         "bounds an int parameter only")
    if not (isinstance(rng, tuple) and len(rng) == 2 and all(type(x) is int for x in rng)):
        raise ValueError(f"{what}: parameter {k} has range={safe_repr(rng)}: range= takes two "
                         "ints (lo, hi)")
    if rng[0] > rng[1]:
        raise ValueError(f"{what}: parameter {k} has range=({rng[0]}, {rng[1]}): range=(lo, hi) "
                         "needs lo <= hi")


def _judge(what: str, check: Callable[[dict[str, Any]], Any] | None,
           params: dict[str, Any]) -> str | None:
    """What a scenario's ``check=`` says of ``params``: ``None`` (or "") when they go
    together, else its reason; anything but those (``42``, ``True``) is a ``ValueError``
    saying what ``check=`` returns, not a reason printed as ``scenario s: 42`` (h8)."""
    if check is None:
        return None
    why = _call(what, "check", check, params)
    if why is None or isinstance(why, str):
        return why or None
    raise ValueError(f"{what}: check= returns None (or \"\") when the parameters go together, "
                     f"or a str saying why not, not the {type(why).__name__} {safe_repr(why)}")


def check_definition(sc: Scenario) -> None:
    """Raise ``ValueError`` (one line, naming the scenario) for what would make every run of
    ``sc`` fail whatever the driver does: see :func:`scenario`."""
    what = f"scenario {sc.name}"
    if not is_name(sc.name):
        raise ValueError("a scenario name is one word of printable characters (no spaces or "
                         f"line breaks: it goes on command lines), not {sc.name!r}")
    if not isinstance(sc.description, str):
        raise ValueError(f"{what}: the description is one line of text, not "
                         f"{type(sc.description).__name__}")
    _check_params(what, sc.params)
    for field_name in ("kernel", "check"):
        f = getattr(sc, field_name)
        if f is not None and not callable(f):
            raise ValueError(f"{what}: {field_name}= takes a function of the parameters, not "
                             f"{type(f).__name__}")
    v = sc.ddi_version
    if v is not None and (type(v) is not int or not 0 <= v <= 0xFFFFFFFF):
        raise ValueError(f"{what}: ddi_version takes a 32-bit DriverVersion like 0xB, not {v!r}")
    fn = sc.fn
    fname = _callable_name(fn)
    if not callable(fn):
        raise ValueError(f"{what}: {fn!r} is not a function")
    call = vars(type(fn)).get("__call__")  # an object with an async __call__ counts
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
    if not is_async:
        raise ValueError(f"{what}: {fname} is not async: a scenario is "
                         "'async def fn(ctx, **params)'")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to judge (a C callable): the run will tell
        sig = None
    if sig is not None:
        _check_signature(what, fname[:-2], sig, sc.params)
    defaults = {k: prm.default for k, prm in sc.params.items()}
    why = _judge(what, sc.check, defaults)
    if why:
        raise ValueError(f"{what}: its defaults fail its own check: {why}")
    if sc.kernel is not None:
        over = _call(what, "kernel", sc.kernel, defaults)
        import kmd  # the layer below: its KernelConfig fields

        known = set(getattr(kmd.KernelConfig, "__dataclass_fields__", ()))
        if not isinstance(over, dict):
            raise ValueError(f"{what}: kernel= returns a dict of KernelConfig fields, not "
                             f"{type(over).__name__}")
        bad = sorted(k for k in over if k not in known) if known else []
        if bad:
            raise ValueError(f"{what}: kernel= returns {bad[0]!r}, which is no KernelConfig "
                             "field")


def _check_signature(what: str, fname: str, sig: inspect.Signature,
                     params: dict[str, Param]) -> None:
    """The runner calls ``fn(ctx, **params)``: every declared parameter must be taken, every
    parameter the function needs (besides ``ctx``) declared."""
    P = inspect.Parameter
    ps = list(sig.parameters.values())
    # shown without annotations: s(ctx, n), as the user wrote the names
    sig = sig.replace(parameters=[q.replace(annotation=P.empty) for q in ps],
                      return_annotation=inspect.Signature.empty)
    positional = [q for q in ps if q.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    ctx = positional[0] if positional else None
    if ctx is None and not any(q.kind is P.VAR_POSITIONAL for q in ps):
        raise ValueError(f"{what}: {fname}{sig} takes no ctx: a scenario is "
                         "'async def fn(ctx, **params)'")
    if not any(q.kind is P.VAR_KEYWORD for q in ps):
        takes = {q.name for q in ps if q is not ctx
                 and q.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)}
        for k in params:
            if k not in takes:
                raise ValueError(f"{what}: {fname}{sig} does not take its parameter {k} "
                                 f"(declared {k}=Param(...)): add it to the function or drop "
                                 "the Param")
    for q in ps:
        if (q is not ctx and q.default is P.empty and q.name not in params
                and q.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)):
            raise ValueError(f"{what}: {fname}{sig} needs {q.name}, which no Param declares: "
                             f"add {q.name}=Param(...) to @scenario or give it a default")
    try:  # what the checks above did not think of
        sig.bind(None, **dict.fromkeys(params))
    except TypeError as e:
        raise ValueError(f"{what}: {fname}{sig} cannot be called as the runner calls it, "
                         f"with ctx and its parameters by name: {e}") from None


def _call(what: str, field_name: str, f: Callable[[dict[str, Any]], Any],
          params: dict[str, Any]) -> Any:
    """``f(params)`` for a scenario's ``check=`` or ``kernel=``: what it raises becomes one
    ``ValueError`` line with the parameters and the innermost line of the user's code."""
    try:
        return f(dict(params))
    except Exception as e:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "no parameters"
        raise ValueError(f"{what}: {field_name}= raised {type(e).__name__}: {e} with {shown}"
                         f"{_where(e)}") from None


def _where(e: BaseException) -> str:
    """`` (at file.py:3)``: where ``e`` was raised, innermost frame; "" if it has none."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    return f" (at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"


def get(name: str) -> Scenario:
    """The scenario called ``name``; ``KeyError`` with the known names otherwise."""
    try:
        return REGISTRY[name]
    except RegistryError:
        raise KeyError(
            f"unknown scenario {name!r}: run 'wddmemu scenarios' to list them"
        ) from None
