"""Named, documented plug-ins: the one mechanism behind every list of choosable things.

Scenarios, drivers, seeded driver variants, seeded runtime and kernel bugs are all entries of a
:class:`Registry`: a name, the object, the rule ids it is about and a one-line summary. Layers
register their own entries with the decorator; the harness lists them (``wddmemu drivers``,
``wddmemu bugs``) and resolves names given on a command line or in a failure file *only*
through them, so a name never causes an import (the harness imports a module only when the user
names it with ``--load`` or installs it under an entry point).

    BUGS = Registry("runtime bug")

    @BUGS.register("rename-twice", rules=("RN-1",), summary="Rename is enqueued twice")
    class RenameTwice(Device): ...

Registration order is kept and is the order of every listing (never a set's order), so output
that lists entries is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """One registered object. ``rules`` are the rule ids it is about (the ones a seeded bug
    should trip); ``module`` is where it was defined, for listings."""

    name: str
    obj: T
    rules: tuple[str, ...] = ()
    summary: str = ""
    module: str = ""


class RegistryError(KeyError):
    """An unknown name, or a name registered twice. ``str()`` is the one-line message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """An ordered map from names to :class:`Entry` objects, filled by :meth:`register`."""

    def __init__(self, kind: str) -> None:
        #: what the entries are, for messages ("driver", "runtime bug", …)
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    @overload
    def register(self, name: str, obj: None = None, *, rules: tuple[str, ...] = (),
                 summary: str = "", replace: bool = False) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T, *, rules: tuple[str, ...] = (),
                 summary: str = "", replace: bool = False) -> T: ...

    def register(self, name: str, obj: Any = None, *, rules: tuple[str, ...] = (),
                 summary: str = "", replace: bool = False) -> Any:
        """Register ``obj`` under ``name`` (or, without ``obj``, return a decorator that does).

        A name is taken once: registering it again raises :class:`RegistryError` unless
        ``replace`` is true, or the module that registered it is being run again
        (``importlib.reload``, a notebook's autoreload, Dask's ``upload_file`` of a module the
        process has imported already): the same module and the same qualified name register
        the new object in place of the old one."""
        if not is_name(name):
            raise ValueError(f"a {self.kind} name is one word of printable characters (no "
                             f"spaces or line breaks: it goes on command lines), not {name!r}")

        def add(o: T) -> T:
            old = self._entries.get(name)
            if (old is not None and not replace and old.obj is not o
                    and not same_definition(old.obj, o)):
                raise RegistryError(
                    f"{self.kind} {name!r} is registered already (by "
                    f"{old.module or 'an earlier call'}): pick another name"
                )
            doc = summary or first_paragraph(getattr(o, "__doc__", None))
            self._entries[name] = Entry(name, o, tuple(rules), doc,
                                        getattr(o, "__module__", "") or "")
            return o

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register temporary entries clean up with this)."""
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``; an unknown name raises :class:`RegistryError` listing the
        known ones."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            known = ", ".join(self._entries) or "none registered"
            raise RegistryError(f"unknown {self.kind} {name!r}: choose from {known}") from None

    def __getitem__(self, name: str) -> T:
        return self.entry(name).obj

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        """Every name, in registration order."""
        return tuple(self._entries)

    def entries(self) -> tuple[Entry[T], ...]:
        """Every entry, in registration order."""
        return tuple(self._entries.values())


def is_name(name: object) -> bool:
    """Whether ``name`` can name an entry: a non-empty string of printable characters with no
    whitespace (it is typed after ``--driver``, printed in listings and stored in files)."""
    return (isinstance(name, str) and bool(name) and name.isprintable()
            and not any(c.isspace() for c in name))


def same_definition(old: object, new: object) -> bool:
    """Whether ``new`` is ``old``'s definition run again: the same module and qualified name
    (a module re-executed by a reload), both defined in a module (not built at run time)."""
    module = getattr(new, "__module__", None)
    name = getattr(new, "__qualname__", None)
    return (isinstance(module, str) and isinstance(name, str) and "<locals>" not in name
            and module == getattr(old, "__module__", None)
            and name == getattr(old, "__qualname__", None))


def first_paragraph(doc: object) -> str:
    """A docstring's summary for a listing: its first paragraph (up to the first blank line)
    on one line. Not its first line: a summary wrapped over two lines was cut mid-sentence."""
    if not isinstance(doc, str):
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())
