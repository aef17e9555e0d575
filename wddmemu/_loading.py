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
through :func:`load_arguments`.

Where a module the user names is found (``--load``, ``--allow-load``, ``--driver
MODULE:ATTR``): as ``python -m`` finds it, the current directory first, then the installed
modules. ``--load path/to/file.py`` loads a single file as the module named by its stem (its
directory goes first on ``sys.path``, as ``python path/to/file.py`` puts it); failure files
record that module name, never the path.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import SpecError, user_error
from ._files import printable, shell_join, shown
from ._schema import is_module_name


class LoadRefused(SpecError):
    """A file asked for a module the user did not allow, or for a distribution that is not
    installed. One line, exit 2; the message says how to allow it."""


class PluginWarning(UserWarning):
    """An installed ``wddmemu.scenarios`` / ``wddmemu.drivers`` entry point could not be loaded
    (a syntax error, an import error, a refused registration): it is skipped, everything else
    works. The message is one line naming the entry point and the error; the CLI prints it as
    ``wddmemu: warning: ...`` on stderr."""


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that failed to load: ``name = value`` in ``group``, from
    ``distribution``, and the one-line ``error``."""

    name: str
    value: str
    group: str
    distribution: str | None
    error: str

    def describe(self) -> str:
        """``name = value (group)``, as the entry point is written."""
        return f"{self.name} = {self.value} ({self.group})"


@dataclass(frozen=True)
class Distribution:
    """An installed distribution whose entry points were loaded."""

    name: str
    version: str


_loaded: list[str] = []  # modules imported on the user's word, in order
_load_args: list[str] = []  # what --load was given for each (a name, or a path to a .py file)
_allowed: list[str] = []  # modules the user allows a file to import (includes _loaded)
_distributions: dict[str, Distribution] = {}
_entry_points_done = False
_broken: list[BrokenPlugin] = []

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
    allow failure files to name it. ``name`` is a module name, found as ``python -m`` finds it
    (the current directory first), or a path to a ``.py`` file, loaded as the module named by
    the file's stem, or to a package (its directory, or its ``__init__.py``), loaded as the
    package named by the directory. Any error is one :class:`SpecError` line."""
    if isinstance(name, str) and is_load_path(name):
        _load_file(name)
        return
    if not isinstance(name, str) or not name or not all(
            part.isidentifier() for part in name.split(".")):
        raise SpecError(f"--load takes a module name like mypkg.drivers or a path to a .py "
                        f"file, not {name!r}")
    allow_module(name)
    if name in _loaded:
        return
    _check_not_shadowed(name)
    _import(name, f"cannot load module {name!r}")
    _loaded.append(name)
    _load_args.append(name)


def _check_not_shadowed(name: str) -> None:
    """Refuse ``--load NAME`` when NAME's top-level package is imported already from another
    file than the one ``python -m`` finds first now: a ``./umd.py`` or ``./runtime.py`` beside
    the user (natural names, and the emulator's packages) was silently not loaded, the import
    answering with the module in ``sys.modules`` (sweep G D3). ``--load PATH`` refuses the same
    in ``_load_file``."""
    top = name.partition(".")[0]
    have = sys.modules.get(top)
    if have is None:
        return
    _cwd_on_path()
    spec = importlib.machinery.PathFinder.find_spec(top, [p or os.getcwd() for p in sys.path])
    found = getattr(spec, "origin", None)
    if found is None or not os.path.isfile(found):  # nothing else there (a namespace package)
        return
    have_file = getattr(have, "__file__", None)
    if have_file is None or Path(have_file).resolve() != Path(found).resolve():
        raise SpecError(f"--load {name}: a module named {top!r} is imported already (from "
                        f"{have_file or 'a built-in'}), so {shown(found)} would not be "
                        "loaded: rename it")


def _is_package_dir(text: str) -> bool:
    # a path (it has a separator): a bare name stays a module name, found as python -m would
    return (os.sep in text or "/" in text) and os.path.isfile(os.path.join(text, "__init__.py"))


def is_load_path(text: str) -> bool:
    """Whether ``--load TEXT`` names a file or a package directory rather than a module."""
    return text.endswith(".py") or _is_package_dir(text)


def _load_target(text: str) -> tuple[Path, str, bool]:
    """What a ``--load`` path names: the file to import, the module it is loaded as, and
    whether that is a package. ``dir/mod.py`` is ``mod``; a package, ``dir/pkg`` or
    ``dir/pkg/__init__.py``, is ``pkg`` (loaded as ``mod`` was, the package's relative
    imports would fail: it has no parent package then)."""
    path = Path(text)
    if _is_package_dir(text):
        return path / "__init__.py", path.resolve().name, True
    if path.name == "__init__.py":
        return path, path.parent.resolve().name, True
    return path, path.stem, False


def path_module(text: str) -> str:
    """The module a ``--load`` path is loaded as (:func:`_load_target`)."""
    return _load_target(text)[1]


def _load_file(text: str) -> None:
    """``--load path/to/mod.py``: import the file as module ``mod`` with its directory first on
    ``sys.path``; a package's path (its directory or ``__init__.py``) as the package, with its
    parent directory first; refused when that name is taken by another file already
    imported."""
    path, name, package = _load_target(text)
    if not path.is_file():
        raise SpecError(f"--load {text}: no such file")
    if not name.isidentifier():
        raise SpecError(f"--load {text}: {name!r} is not a module name (the file's name "
                        "becomes the module's: use letters, digits and _)")
    real = path.resolve()
    have = sys.modules.get(name)
    have_file = getattr(have, "__file__", None)
    if have is not None and (have_file is None or Path(have_file).resolve() != real):
        raise SpecError(f"--load {text}: a module named {name!r} is imported already "
                        f"(from {have_file or 'a built-in'}): rename the file")
    allow_module(name)
    if name in _loaded:
        return
    folder = str(real.parent.parent if package else real.parent)
    # the current directory first, so that the file's folder goes ahead of it: a same-named
    # module beside the user was imported (and its code run) instead of the file they named
    _cwd_on_path()
    if sys.path[0] != folder:
        sys.path.insert(0, folder)
    mod = _import(name, f"cannot load {text}")
    got = getattr(mod, "__file__", None)
    if got is None or Path(got).resolve() != real:  # a package of that name came first
        raise SpecError(f"--load {text}: the name {name!r} imports {got or 'a built-in'} "
                        "instead: rename the file")
    _loaded.append(name)
    _load_args.append(text)


def allow_module(name: str) -> None:
    """Let failure files and ``MODULE:ATTR`` driver names import ``name`` (and nothing else),
    without importing it now. Refuses (:class:`SpecError`) what is not a module name, as
    ``--allow-load`` does: ``None`` or ``' mod'`` allowed nothing, silently."""
    if not isinstance(name, str) or not is_module_name(name):
        shown = repr(printable(name)) if isinstance(name, str) else type(name).__name__
        raise SpecError(f"allow_module takes a module name like mypkg.drivers, not {shown}")
    if name not in _allowed:
        _allowed.append(name)


def is_allowed(module: str) -> bool:
    """Whether ``module`` may be imported on a file's word: the user loaded or allowed it (a
    package allows its submodules)."""
    return any(module == m or module.startswith(m + ".") for m in _allowed)


def loaded_modules() -> tuple[str, ...]:
    """The names of the modules loaded with :func:`load_module`, in order (what a failure file
    records: a file loaded by path is recorded by its module name)."""
    return tuple(_loaded)


def load_arguments() -> tuple[str, ...]:
    """What :func:`load_module` was given for each loaded module, in order (a name, or the path
    of a ``.py`` file): what a worker process or a printed command line loads again."""
    return tuple(_load_args)


def command_prefix(modules: list[str] | None = None, allow: Sequence[str] = ()) -> str:
    """``wddmemu`` with the ``--load`` options in force (only those of ``modules``, if given),
    each as the user typed it, and ``--allow-load M`` for each module of ``allow`` that no
    ``--load`` brought (a ``--driver MODULE:ATTR``'s module, imported when the driver was
    resolved): the start of a command line that reruns something in another process, such as
    the replay of a failure file that lists the modules ``allow``."""
    chosen = [arg for m, arg in zip(_loaded, _load_args, strict=True)
              if modules is None or m in modules]
    allow = [m for m in allow if not any(m == x or m.startswith(x + ".") for x in _loaded)]
    return shell_join(["wddmemu", *[a for arg in chosen for a in ("--load", arg)],
                       *[a for m in allow for a in ("--allow-load", m)]])


def distributions() -> tuple[Distribution, ...]:
    """The distributions whose ``wddmemu.*`` entry points are loaded, in load order."""
    return tuple(_distributions.values())


def _cwd_on_path() -> None:
    """The current directory first on ``sys.path``, as ``python -m`` has it (added once)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _import(name: str, what: str) -> object:
    """Import a module the user named, found as ``python -m`` finds it: the current directory
    first on ``sys.path`` (added once, as ``python -m`` adds it)."""
    _cwd_on_path()
    try:
        return importlib.import_module(name)
    except SpecError:
        raise
    except KeyboardInterrupt:  # a real Ctrl-C during the import: exit 130
        raise
    except BaseException as e:  # a user module's own failure: one line, never a traceback;
        # sys.exit, GeneratorExit or a BaseException of its own at import is one too
        raise user_error(what, e) from None


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


def note_broken(plugin: BrokenPlugin) -> None:
    """Record an entry point that failed to load (:func:`broken_plugins`)."""
    _broken.append(plugin)


def broken_plugins() -> tuple[BrokenPlugin, ...]:
    """The entry points that failed to load in this process, in load order."""
    return tuple(_broken)


def broken_hint(kind: str, name: str) -> str:
    """For an unknown ``kind`` (``scenario`` or ``driver``) called ``name``: the broken entry
    points that would (a ``wddmemu.drivers`` factory of that name) or may (a module) have
    provided it, as the rest of the one-line message; "" if none is broken."""
    exact = [b for b in _broken if kind == "driver" and b.group == "wddmemu.drivers"
             and b.name == name and ":" in b.value]
    if exact:
        b = exact[0]
        return f": it comes from the broken plugin {b.describe()}: {b.error}"
    maybe = [b for b in _broken if ":" not in b.value]
    if maybe:
        b = maybe[0]
        more = f" (and {len(maybe) - 1} more)" if len(maybe) > 1 else ""
        return f": the broken plugin {b.describe()}{more} may provide it: {b.error}"
    return ""


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
            bad = [b for b in _broken if (b.distribution or "").lower().replace("_", "-")
                   == d.lower().replace("_", "-")]
            if bad:
                raise LoadRefused(f"{by} needs the distribution {d!r}, whose plugin "
                                  f"{bad[0].describe()} is broken: {bad[0].error}")
            raise LoadRefused(f"{by} needs the distribution {d!r}, which provides no loaded "
                              f"wddmemu entry points here: install it")
