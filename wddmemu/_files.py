"""Files the harness writes and reads: atomically written, checked before the work, read within
bounds (issue 14; ``docs/explore.md``, "Files").

Every file a command writes — a trace, a Chrome export, a PNG, a failure file, a JUnit or JSON
report — goes to a temporary file beside its path and is renamed over it (``os.replace``, atomic
on POSIX and Windows) only once it is complete. A write that fails (a bad line, a full disk,
Ctrl-C) removes its temporary file and leaves whatever was at the path untouched: a previous
export, or a device node when run as root. Output paths are checked before a run or an
exploration starts, so a typo costs nothing; file contents quoted in messages are shown with
control bytes escaped, never raw.
"""

from __future__ import annotations

import itertools
import os
import shlex
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ._errors import SpecError

#: the most of a file's text a message quotes
QUOTE = 40


def printable(text: str | bytes, limit: int = QUOTE) -> str:
    """``text`` cut to ``limit`` characters with control bytes, escapes and non-printable
    characters escaped (``\\x1b``): safe to print on a terminal, always one line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    cut = text[:limit]
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return out + ("…" if len(text) > limit else "")


class OutputError(SpecError):
    """A file we were asked to write cannot be written (one line; exit 2). A :class:`SpecError`,
    since the path is the user's input; raised before the first schedule by
    :func:`check_output` when it can tell, and by :func:`atomic_path` when only trying tells."""


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8. A str from argv or a file name holds a lone surrogate
    for each byte that was no UTF-8 (PEP 383), which no JSON line or file can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shell_word(arg: str) -> str:
    """``arg`` quoted for a POSIX shell (``shlex.quote``), or, when it holds a character that
    is not printable (a newline, ESC, an argv byte that was no UTF-8), as bash's ``$'…'``
    with that character escaped: a printed command stays one line, shows no terminal escape,
    and pasted into bash gives back exactly ``arg`` (sweep H D9)."""
    if arg.isprintable():
        return shlex.quote(arg)
    out = []
    for c in arg:
        o = ord(c)
        if c in "\\'":
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        elif 0xDC80 <= o <= 0xDCFF:  # surrogateescape: the byte it stands for
            out.append(f"\\x{o - 0xDC00:02x}")
        else:  # its UTF-8 bytes: bash's \u depends on the locale, \x does not
            out.extend(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogatepass"))
    return "$'" + "".join(out) + "'"


def shell_join(args: Sequence[str]) -> str:
    """The command line of ``args``, each a :func:`shell_word`."""
    return " ".join(shell_word(a) for a in args)


def shown(path: str) -> str:
    """A path for a message: :func:`printable`, cut only past 120 characters (a path is what
    the reader needs to find; a 4,000-byte one still fits a line)."""
    return printable(path, 120)


def is_path(value: object) -> bool:
    """Whether ``value`` can name a file: a non-empty ``str`` or ``Path`` without a NUL byte
    (what the Python API checks of a path argument before it touches the file system)."""
    return isinstance(value, str | Path) and bool(str(value)) and "\0" not in str(value)


def kind_of(value: object) -> str:
    """What ``value`` is, for a message refusing it: ``None``, else its type's name (``int``,
    ``str``; never raising, whatever the object)."""
    from vthreads.lowlevel import type_name

    return "None" if value is None else type_name(value)


def shown_number(v: object) -> str:
    """A number argument for a message refusing it: as given (``nan``, ``0``,
    ``1000000000.0``), an int of 200 bits or more by its size (its digits could fill a
    screen), anything else by its kind (``None``, ``str``)."""
    if type(v) is int and v.bit_length() >= 200:
        return f"an int of {v.bit_length()} bits"
    return repr(v) if type(v) in (int, float) else kind_of(v)


def check_output(path: str | Path, what: str, *, make_parents: bool = False,
                 reads: Sequence[str | Path] = ()) -> Path:
    """Refuse (:class:`SpecError`, one line) an output path that cannot be written: empty, a
    NUL byte, a directory, a missing parent directory (``make_parents``: a parent that could
    not be created because a file is in the way), or one of the files the command ``reads``
    (``replay F --trace F`` made the failure file a trace: sweep H D5). Nothing is created
    here."""
    text = str(path)
    if not text:
        raise SpecError(f"{what} needs a file name, not ''")
    if "\0" in text:
        raise SpecError(f"{what} {printable(text)!s}: a file name has no NUL byte")
    if text == "-":  # `trace export --chrome -` is stdout: here it would be a file named "-"
        raise SpecError(f"{what} -: give a file name (/dev/stdout to write to stdout)")
    for read in reads:
        if _same_file(text, read):
            also = "" if str(read) == text else f" ({shown(str(read))})"
            raise SpecError(f"{what} {shown(text)} is the file this command reads{also}: "
                            "writing it would destroy its input; give another path")
    try:
        return _check_output(Path(text), what, make_parents)
    except OSError as e:  # a name too long for the file system, a loop of links, …
        raise OutputError(f"cannot write {what} {shown(text)}: {e.strerror or e}") from None


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one existing file (links and other spellings too);
    ``/dev/stdout`` and the like are never "the same" as an input: nothing is destroyed."""
    try:
        return os.path.samefile(a, b) and Path(b).is_file()
    except (OSError, ValueError):  # one of them does not exist (yet): nothing to destroy
        return False


#: the longest file name (bytes) written here: what every Linux file system takes (the
#: temporary file beside it is shorter, see :func:`atomic_path`)
NAME_MAX = 255


def _check_output(p: Path, what: str, make_parents: bool) -> Path:
    text = str(p)
    if len(os.fsencode(p.name)) > NAME_MAX:
        raise OutputError(f"cannot write {what} {shown(text)}: the file name is longer than "
                          f"{NAME_MAX} bytes")
    if p.is_dir():
        raise SpecError(f"{what} {text} is a directory: give a file name")
    parent = p.parent
    if make_parents:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if not parent.is_dir():  # a file in the way is no missing directory (sweep H D7)
        raise SpecError(f"cannot write {what} {text}: directory {p.parent} does not exist"
                        if not make_parents and not parent.exists() else
                        f"cannot write {what} {text}: {parent} is not a directory")
    if not os.access(parent, os.W_OK):
        raise SpecError(f"cannot write {what} {text}: directory {parent} is not writable")
    return p


def check_directory(path: str | Path, what: str) -> Path:
    """Refuse a directory that cannot hold new files: empty name, a NUL byte, a file in the
    way, not writable. A missing directory is fine when it can be created (it is, later)."""
    text = str(path)
    if not text or "\0" in text:
        raise SpecError(f"{what} needs a directory name, not {printable(text)!r}")
    p = Path(text)
    if any(len(os.fsencode(part)) > NAME_MAX for part in p.parts):
        raise OutputError(f"{what} {shown(text)}: a name in it is longer than {NAME_MAX} "
                          "bytes")
    try:
        if p.exists() and not p.is_dir():
            raise SpecError(f"{what} {text} is a file, not a directory")
        probe = p
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise SpecError(f"{what} {text}: {probe} is not a directory")
    except OSError as e:
        raise OutputError(f"{what} {shown(text)}: {e.strerror or e}") from None
    if not os.access(probe, os.W_OK):
        raise SpecError(f"{what} {text}: {probe} is not writable")
    return p


_temp_count = itertools.count()


@contextmanager
def atomic_path(path: str | Path, *, make_parents: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed over ``path`` when the block ends
    normally, removed when it raises (``path`` is then untouched).

    A directory that does not exist is refused (:class:`OutputError` naming it), as the CLI
    refuses it before the run (:func:`check_output`): the API once made the whole chain, even
    ``/nonexist`` as root. ``make_parents`` makes it instead, for the files whose directory the
    tool makes (a failure file's save directory, the ``--junit``/``--json`` reports). An empty
    name is refused as such (it resolved to the current directory: "Is a directory").

    Only a regular file is replaced. A symbolic link is followed: the file it names is replaced
    and the link stays. Anything else at ``path`` — ``/dev/null``, a FIFO, a terminal — is
    written through, as ``open`` would: renaming a file over a device node would destroy the
    node (run as root, ``--trace /dev/null`` once replaced ``/dev/null`` with a file). A pipe
    whose reader left (``--json /dev/stdout | head -1``) is not an error: what it did not read
    is unwanted, and the command ends with its own exit code."""
    if not str(path) or "\0" in str(path):
        raise OutputError(f"cannot write {printable(str(path))!r}: give a file name")
    # the path as given first: os.stat follows its links, where realpath cannot resolve
    # /dev/stdout on a pipe (/proc/self/fd/1 names "pipe:[N]", no path)
    p = Path(path) if _special(Path(path)) else Path(os.path.realpath(path))
    if _special(p):
        try:
            yield p
        except BrokenPipeError:  # the reader stopped early: the rest is unwanted
            return
        except OSError as e:  # /dev/full
            raise OutputError(f"cannot write {shown(str(path))}: {e.strerror or e}") from None
        return
    tmp: Path | None = None
    try:
        if make_parents:
            p.parent.mkdir(parents=True, exist_ok=True)
        elif not p.parent.is_dir():
            raise OutputError(f"cannot write {shown(str(path))}: directory "
                              f"{shown(str(Path(path).parent))} does not exist")
        # named before it is made, inside the try that removes it: a Ctrl-C that lands as the
        # file is created leaves no temporary behind (mkstemp names it only once it returns)
        while True:
            tmp = _temp_name(p)
            try:  # open()'s mode (0666 less the umask), where mkstemp's is 0600
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                tmp = None  # another process's: never ours to remove
        yield tmp
        os.replace(tmp, p)
    except OSError as e:  # disk full, /dev/full, a rename refused: the old file stays
        _discard(tmp)
        raise OutputError(f"cannot write {shown(str(path))}: {e.strerror or e}") from None
    except BaseException:
        _discard(tmp)
        raise


def _temp_name(p: Path) -> Path:
    # at most 64 characters of the target's name: a target of 250 bytes is a valid name, its
    # temporary twin of 265 would not be; pid and counter keep two writers apart
    return p.parent / f".{p.name[:64]}.{os.getpid()}.{next(_temp_count)}.tmp"


def _discard(tmp: Path | None) -> None:
    if tmp is not None:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a directory that refuses it: the error being raised says more
            pass


def _special(p: Path) -> bool:
    """Whether something other than a regular file (a device, a FIFO, a socket) is at ``p``."""
    try:
        mode = os.stat(p).st_mode
    except OSError:  # nothing there yet (or nothing we may look at: the write will say)
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextmanager
def atomic_open(path: str | Path, buffering: int = -1, *,
                make_parents: bool = False) -> Iterator[IO[bytes]]:
    """:func:`atomic_path`, opened for binary writing."""
    with atomic_path(path, make_parents=make_parents) as tmp, \
            open(tmp, "wb", buffering=buffering) as f:
        yield f


def write_atomically(path: str | Path, body: bytes, *, make_parents: bool = False) -> Path:
    """Write ``body`` to ``path`` through a temporary file beside it and ``os.replace``
    (``make_parents``: see :func:`atomic_path`)."""
    with atomic_open(path, make_parents=make_parents) as f:
        f.write(body)
    return Path(path)


def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, refused (``OSError`` subclasses pass through) if it holds more
    than ``limit`` bytes: a failure file is small, and ``/dev/zero`` never ends."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SpecError(f"{path} is too big for a {what} (more than {limit:,} bytes)")
    return data



def stdout_to_null() -> None:
    """The reader closed stdout: what is still to be printed goes to /dev/null (stdout's
    descriptor is replaced), so neither the next write nor Python's flush at exit fails."""
    import sys

    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
        pass
    finally:
        os.close(null)


@contextmanager
def stdout_may_close() -> Iterator[None]:
    """Write to a reader that may stop early (``| head -1``) without rich: once it closed the
    pipe (``BrokenPipeError``), the rest of the block's output is unwanted and skipped, and the
    command ends with its own exit code (``_console.OutputConsole`` does the same for rich
    output). Output is flushed before the block ends, so a close in time is met here."""
    import sys

    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_to_null()
