"""Loading user code: ``--load MODULE``, the ``wddmemu.scenarios`` / ``wddmemu.drivers``
entry points, and the allow-list that keeps a failure file from importing anything by itself.

Why an allow-list: a failure file (or a trace file) is data someone else may hand you. If naming
``"driver": "this:make"`` in it were enough to import ``this`` and call ``make``, replaying a
file would run arbitrary code. So a file's names are resolved only through the registries
(built-ins, entry points the user installed, modules the user loaded) and a ``MODULE:ATTR`` or a
listed module is imported only when the user allowed that module by name — on the command line
(``--load``, ``--allow-load``) or through :func:`load_module` / :func:`allow_module` in code.

State is per process, in registration order (never a set's order, so what a failure file
records is deterministic). Worker processes of ``explore --jobs N`` get the same modules
through :func:`loaded_modules`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ._errors import SpecError, user_error


class LoadRefused(SpecError):
    """A file asked for a module the user did not allow, or for a distribution that is not
    installed. One line, exit 2; the message says how to allow it."""


@dataclass(frozen=True)
class Distribution:
    """An installed distribution whose entry points were loaded."""

    name: str
    version: str


_loaded: list[str] = []  # modules imported on the user's word, in order
_allowed: list[str] = []  # modules the user allows a file to import (includes _loaded)
_distributions: dict[str, Distribution] = {}
_entry_points_done = False

#: a loaded module or an installed distribution: ``("module", name)``, ``("distribution",
#: name)``
Provider = tuple[str, str]
#: who registered each scenario and driver, ``("scenario" | "driver", name)`` -> provider:
#: what a failure file that uses it must record (and nothing else; issue h1 item 2)
_providers: dict[tuple[str, str], Provider] = {}
#: each distribution's entry-point modules (to place a name registered some other way)
_dist_modules: dict[str, list[str]] = {}


def load_module(name: str) -> None:
    """Import ``name`` (a user module registering scenarios or drivers) on the user's word, and
    allow failure files to name it. Any error is one :class:`SpecError` line."""
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise SpecError(f"--load takes a module name like mypkg.drivers, not {name!r}")
    allow_module(name)
    if name in _loaded:
        return
    _import(name, f"cannot load module {name!r}")
    _loaded.append(name)


def allow_module(name: str) -> None:
    """Let failure files and ``MODULE:ATTR`` driver names import ``name`` (and nothing else),
    without importing it now."""
    if name not in _allowed:
        _allowed.append(name)


def is_allowed(module: str) -> bool:
    """Whether ``module`` may be imported on a file's word: the user loaded or allowed it (a
    package allows its submodules)."""
    return any(module == m or module.startswith(m + ".") for m in _allowed)


def loaded_modules() -> tuple[str, ...]:
    """The modules loaded with :func:`load_module`, in order (what a failure file records)."""
    return tuple(_loaded)


def command_prefix(modules: list[str] | None = None) -> str:
    """``wddmemu`` with the ``--load`` options in force (only those of ``modules``, if given):
    the start of a command line that reruns something in another process."""
    import shlex

    chosen = [m for m in _loaded if modules is None or m in modules]
    return shlex.join(["wddmemu", *[a for m in chosen for a in ("--load", m)]])


def distributions() -> tuple[Distribution, ...]:
    """The distributions whose ``wddmemu.*`` entry points are loaded, in load order."""
    return tuple(_distributions.values())


def _import(name: str, what: str) -> object:
    try:
        return importlib.import_module(name)
    except SpecError:
        raise
    except (Exception, SystemExit) as e:  # a user module's own failure: one line, never a
        raise user_error(what, e) from None  # traceback; sys.exit at import is one too


def import_allowed(module: str, *, by: str, what: str = "module") -> object:
    """Import ``module`` if the user allowed it; otherwise refuse in one line. ``by`` says who
    asks (a file path), for the message."""
    if not is_allowed(module):
        raise LoadRefused(f"{by} names module {module!r}, which was not loaded: rerun with "
                          f"--load {module} (or --allow-load {module}) if you trust it")
    return _import(module, f"cannot import {what} {module!r}")


def entry_points_loaded() -> bool:
    """Whether :func:`wddmemu.load_entry_points` ran in this process; marks it as run."""
    global _entry_points_done
    done, _entry_points_done = _entry_points_done, True
    return done


def note_distribution(name: str, version: str, module: str = "") -> None:
    """Record that ``name`` provided loaded entry points (from ``module``)."""
    _distributions.setdefault(name, Distribution(name, version))
    if module and module not in _dist_modules.setdefault(name, []):
        _dist_modules[name].append(module)


def note_provided(provider: Provider, names: set[tuple[str, str]]) -> None:
    """Record that loading ``provider`` registered ``names`` (``(kind, name)`` pairs); the
    first provider of a name keeps it."""
    for key in sorted(names):
        _providers.setdefault(key, provider)


def provider_of(kind: str, name: str, module: str) -> Provider | None:
    """Who provides scenario or driver ``name`` (``kind``): the loaded module or distribution
    whose loading registered it; else the loaded module or distribution package that holds
    ``module``, where the object was defined (a module imported before it was loaded); None
    for a built-in or a name the caller's own code registered."""
    got = _providers.get((kind, name))
    if got is not None:
        return got

    def holds(pkg: str) -> bool:
        return bool(module) and (module == pkg or module.startswith(pkg + "."))

    for m in _loaded:
        if holds(m):
            return ("module", m)
    for d, mods in _dist_modules.items():
        if any(holds(m.partition(".")[0]) for m in mods):
            return ("distribution", d)
    return None


def needed(providers: list[Provider | None]) -> dict[str, list[str]]:
    """The ``load`` section of a failure file whose scenario and driver come from
    ``providers``: those modules and distributions only, in load order."""
    mods = {n for kind, n in filter(None, providers) if kind == "module"}
    dists = {n for kind, n in filter(None, providers) if kind == "distribution"}
    return {"modules": [m for m in _loaded if m in mods],
            "distributions": [d.name for d in _distributions.values() if d.name in dists]}


def require(modules: list[str], dists: list[str], *, by: str) -> None:
    """Make what a failure file says it needs available, or refuse: ``modules`` are imported
    only if allowed; ``dists`` must be installed (the caller loaded the entry points)."""
    for m in modules:
        if m not in _loaded:
            import_allowed(m, by=by)
    have = {d.name.lower().replace("_", "-") for d in _distributions.values()}
    for d in dists:
        if d.lower().replace("_", "-") not in have:
            raise LoadRefused(f"{by} needs the distribution {d!r}, which provides no loaded "
                              f"wddmemu entry points here: install it")
