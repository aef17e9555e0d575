"""Sweep H D9: a ``replay:`` line printed a parameter's ESC and newline raw (``-p
's=a^[[31mb`` and the rest on the next line), against docs/explore.md's "printed whole on
one line". Every word is quoted by ``wddmemu._files.shell_word``: printable ones as
``shlex.quote`` does, others as bash's ``$'…'``, which gives the same argument back."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wddmemu._files import shell_join, shell_word
from wddmemu._runner import RunSpec

#: an argv word: any text but NUL, with argv bytes that were no UTF-8 as lone surrogates
WORDS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")) | \
    st.binary(min_size=1).filter(lambda b: b"\0" not in b).map(os.fsdecode)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=3))
def test_bash_reads_every_word_back(words: list[str]) -> None:
    line = shell_join(["printf", r"%s\0", *words])
    assert "\n" not in line and "\x1b" not in line and line.isprintable()
    out = subprocess.run(["bash", "-c", line], capture_output=True, check=True).stdout
    assert [os.fsdecode(w) for w in out.split(b"\0")[:-1]] == words


def test_printable_words_are_quoted_as_shlex_quotes_them() -> None:
    assert shell_join(["a", "b c", "it's"]) == "a 'b c' 'it'\"'\"'s'"
    assert shell_word("a\x1b[31mb\nc") == "$'a\\x1b[31mb\\x0ac'"


def test_a_replay_line_with_a_newline_and_an_escape_is_one_line() -> None:
    line = RunSpec("fail-scen", params={"s": "a\x1b[31mb\nc"}).command("run",
                                                                     trace="tr\nx.jsonl")
    assert line.isprintable(), line
    assert "-p $'s=a\\x1b[31mb\\x0ac'" in line and "--trace $'tr\\x0ax.jsonl'" in line
