"""A query's text with its values taken out, read by PostgreSQL's own scanner. Pure.

`include_query_text` shows what a holder of the pool runs; its values may be personal data or
secrets, so every constant is `?` (strings of every kind, dollar-quoted bodies, bit strings,
numbers), every quoted identifier `"?"`, and comments are left out; keywords, plain names,
operators and `$1` parameters stay, so the statement's shape is readable.

The tokens come from libpg_query (through pglast), the scanner of PostgreSQL itself, not from
regular expressions, which miss the forms that matter (`E'\\''`, `$a1$...$a1$`, nested comments,
`U&"..."`). `pg_stat_activity` keeps only the first `track_activity_query_size` bytes, and
poolwatch reads 200 characters, so the text is often cut inside a literal or a comment; the
scanner refuses that at the token that was cut, and that token and all after it become one
`?`. Nothing is shown that has not been read as a token of a known safe kind, with only white
space between tokens; anything else withholds the whole text (`WITHHELD`).

A string without `E` that holds a backslash ends where the server's
`standard_conforming_strings` says, which the text does not tell: it and everything after it
become one `?`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pglast.parser import Token

QUERY_CHARS = 200
WITHHELD = "(query text withheld: not readable as SQL tokens)"
"""Shown instead of a text the scanner could not account for, token by token."""

_CONSTANTS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST", "ICONST", "FCONST"})
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
_NAME_CHAR = "[A-Za-z0-9_$]|[^\x00-\x9f\u2028\u2029\ud800-\udfff]"
_NAME = re.compile(f"(?:[A-Za-z_]|[^\x00-\x9f\u2028\u2029\ud800-\udfff])(?:{_NAME_CHAR})*")
"""A plain (unquoted) name or keyword: PostgreSQL takes every non-ASCII character as a letter."""
_PARAM = re.compile(r"\$\d+")
_OPERATOR = re.compile(r"[-+*/<>=~!@#%^&|`?:.,;()\[\]]+")
"""Operators (`Op`, `::`, `<>`, ...) and the single characters the scanner returns as is."""
_RETRIES = 8
"""Cuts of a text that the scanner refused: each is shorter, so this ends; past it, withheld."""


def scrub(query: str | None) -> str | None:
    """`query`'s first 200 characters, as tokens, with every value masked (see the module)."""
    if query is None:
        return None
    # imported here: only a target with include_query_text needs the scanner (28 ms to load)
    from pglast.parser import ParseError, scan

    text, cut = query[:QUERY_CHARS], False
    for _ in range(_RETRIES):
        try:
            tokens = scan(text)
        except ParseError as exc:
            at = exc.args[1] if len(exc.args) > 1 else None
            if not isinstance(at, int) or not 0 <= at < len(text):
                return WITHHELD
            text, cut = text[:at], True  # where the scanner stopped: that token on is one `?`
            continue
        except (UnicodeError, ValueError):
            return WITHHELD
        pieces = _shown(text, tokens)
        if pieces is None:
            return WITHHELD
        if cut and (not pieces or pieces[-1].strip() != "?"):
            pieces.append(" ?" if pieces else "?")
        return "".join(pieces)[:QUERY_CHARS]
    return WITHHELD


def _shown(text: str, tokens: Sequence[Token]) -> list[str] | None:
    """The tokens of `text` as shown, values masked, each after one space where the text had
    white space or a comment before it. None when the tokens do not account for the text
    exactly: only white space may lie between them."""
    pieces: list[str] = []
    position = 0
    gap = False
    for token in tokens:
        start, end, name = token.start, token.end + 1, token.name
        if start < position or end <= start or text[position:start].strip():
            return None
        gap = gap or start > position
        position = end
        word = text[start:end]
        if name in _COMMENTS:
            gap = True
            continue
        if name == "SCONST" and word.startswith("'") and "\\" in word:
            # where it ends depends on the server's standard_conforming_strings: stop here
            pieces.append(" ?" if gap and pieces else "?")
            return pieces
        shown = _token(name, word)
        if shown is None:
            return None
        pieces.append(" " + shown if gap and pieces else shown)
        gap = False
    if text[position:].strip():
        return None
    return pieces


def _token(name: str, word: str) -> str | None:
    """How one token is shown; None for a token that is not what its kind says."""
    if name in _CONSTANTS:
        return "?"
    if name in ("IDENT", "UIDENT") and word.endswith('"'):
        return '"?"'  # a quoted identifier: any text at all may be in it
    if name == "PARAM":
        return word if _PARAM.fullmatch(word) else None
    if name == "UNKNOWN":
        return "?"  # a character the scanner has no use for (a control character, say)
    if _NAME.fullmatch(word) or _OPERATOR.fullmatch(word):
        return word  # a keyword, a plain name, an operator or punctuation
    return None
