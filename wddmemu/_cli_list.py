"""The listing commands: ``wddmemu drivers``, ``wddmemu bugs``, ``wddmemu rules [ID]``.

They print what is registered (built-ins, entry points, ``--load`` modules) in registration
order — the same registries that resolve names on a command line or in a failure file.
"""

from __future__ import annotations

import os
from typing import Any

import click

from ._errors import SpecError


def _table(*columns: str) -> Any:
    from rich.table import Table

    t = Table(box=None, pad_edge=False, show_lines=False)
    for i, c in enumerate(columns):
        # names stay whole (they are what one types); the prose columns wrap
        t.add_column(c, style="bold" if i == 0 else None, no_wrap=i == 0,
                     overflow="fold")
    return t


def _row(t: Any, *cells: str) -> None:
    from rich.markup import escape  # the cells are data: brackets in them are not markup

    t.add_row(*(escape(c) for c in cells))


#: the width a listing gets off a terminal: more than any row needs, so a row is one line
LISTING_WIDTH = 10_000


def listing_console() -> Any:
    """The console a listing prints to. A terminal keeps its own width. Off a terminal (a
    pipe, a CI log) rich would assume 80 columns and wrap a summary a word a line, which no
    one can grep: there each row is one line, unless ``COLUMNS`` says otherwise."""
    from ._console import OutputConsole  # quiet when the reader closes the pipe

    console = OutputConsole()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = OutputConsole(width=LISTING_WIDTH)
    return console


def print_listing(*renderables: Any) -> None:
    """Print a listing: on a terminal as rich lays it out; off one, one row a line without
    the spaces rich pads every row with to the table's full width."""
    from ._files import stdout_may_close

    console = listing_console()
    with stdout_may_close():  # `wddmemu rules | head -1`: exit 0 whenever the reader stops
        if console.is_terminal:
            for r in renderables:
                console.print(r)
            return
        with console.capture() as cap:
            for r in renderables:
                console.print(r)
        console.file.write("".join(line.rstrip() + "\n" for line in cap.get().splitlines()))


@click.command("drivers")
def drivers_cmd() -> int:
    """List the registered drivers: the reference, its seeded variants, and yours."""
    from ._drivers import DRIVERS

    t = _table("driver", "rules", "from", "summary")
    for e in DRIVERS.entries():
        _row(t, e.name, ", ".join(e.rules) or "-", e.module or "-", e.summary)
    print_listing(t)
    return 0


@click.command("bugs")
def bugs_cmd() -> int:
    """List the seeded bugs: driver variants (--driver NAME), runtime and kernel bugs
    (--bug NAME), each with the rule ids it trips."""
    import kmd
    import umd
    from runtime import RUNTIME_BUG_REGISTRY

    from ._drivers import catalogue

    t = _table("bug", "kind", "rules", "summary")
    # the registries themselves, for the rule ids they were given (rules=...): the name ->
    # summary views found them only in a summary's text, so a user's bug showed none
    for kind, reg in (("driver", umd.VARIANT_REGISTRY), ("runtime", RUNTIME_BUG_REGISTRY),
                      ("kernel", kmd.KERNEL_BUG_REGISTRY)):
        for name, _obj, rules, summary in catalogue(reg):
            _row(t, name, kind, ", ".join(rules) or "-", " ".join(summary.split()))
    print_listing("use a driver bug with --driver NAME, a runtime or kernel bug with --bug NAME",
                  t)
    return 0


@click.command("rules")
@click.argument("rule_id", required=False, metavar="[ID]")
def rules_cmd(rule_id: str | None) -> int:
    """List the contracts' rule ids with their meaning, status (checked by the checker,
    enforced by a layer, both, not modelled, n/a) and where, then the findings that are not
    rule ids (the emulator's oracles, the engine's failure kinds: foreign-await, hang, …);
    or one of either in full."""
    from ._files import stdout_may_close
    from .rules import FINDINGS, get_finding, get_rule, rules

    if rule_id is not None:
        try:
            r = get_rule(rule_id)
        except KeyError:
            try:
                f = get_finding(rule_id)
            except KeyError:
                raise SpecError(f"unknown rule {rule_id!r}: run 'wddmemu rules' to list "
                                "the rule ids, oracles and failure kinds") from None
            text = (f"{f.id}: {f.meaning}\nstatus: {f.kind} (not a contract rule)\n"
                    f"documented: {f.documented}")
        else:
            where = r.where.replace("`", "") or "-"
            text = f"{r.id}: {r.meaning}\nstatus: {r.status}\nwhere: {where}"
        with stdout_may_close():  # `rules LA-13 | head -0` is exit 0, as the full list is
            click.echo(text)
        return 0
    t = _table("id", "status", "meaning", "where")
    for r in rules():
        _row(t, r.id, r.status, r.meaning, r.where.replace("`", "") or "-")
    own = _table("finding", "kind", "meaning", "documented")
    for k, (kind, meaning, where) in FINDINGS.items():
        _row(own, k, kind, meaning, where)
    print_listing(t, "\nnot contract rules: the emulator's own oracles and the engine's failure "
                  "kinds", own)
    return 0
