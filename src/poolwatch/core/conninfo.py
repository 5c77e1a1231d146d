"""libpq keyword connection strings (`host=db password='a b'`), read exactly as libpq reads them.

One grammar for everything that looks inside such a string: the PostgreSQL and PgBouncer
settings (what to connect to), and the masking and scrubbing of secrets (which characters are
the password). A reader that stops early at `\\'` masks half a password and teaches the scrubber
the wrong one, so this follows libpq's `conninfo_parse()` rule for rule:

- a keyword runs to `=` or whitespace; whitespace may surround the `=`;
- a value is either single-quoted, where `\\x` stands for `x` and the value ends at the first
  unescaped `'`, or bare, where `\\x` stands for `x` (a trailing `\\` is dropped) and the value
  ends at whitespace;
- whitespace is C's `isspace()`: space, tab, newline, vertical tab, form feed, carriage return;
- a keyword given twice: the last one wins.

Pure: no I/O, no import outside the standard library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SPACE = frozenset(" \t\n\v\f\r")
"""C's `isspace()` in the C locale, which is what libpq tests."""
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""What a libpq keyword looks like; anything else is not echoed (it may be a pasted secret)."""


class ConninfoError(ValueError):
    """A string libpq would refuse; the message names the keyword, never a value."""


@dataclass(frozen=True, slots=True)
class Keyword:
    """One `key=value` of a connection string, and where its value was written."""

    key: str
    value: str
    """The value as libpq reads it: quotes removed, escapes resolved."""
    start: int
    """Where the written value begins in the text (its opening quote included)."""
    end: int
    """Where it ends (after its closing quote)."""


def keywords(text: str) -> list[Keyword]:
    """Every `key=value` of `text`, in order (a repeated key appears twice)."""
    found: list[Keyword] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in SPACE:
            i += 1
        if i >= n:
            break
        start = i
        while i < n and text[i] != "=" and text[i] not in SPACE:
            i += 1
        key = text[start:i]
        while i < n and text[i] in SPACE:
            i += 1
        if i >= n or text[i] != "=" or not key:
            if not _IDENTIFIER.fullmatch(key):
                raise ConninfoError("DSN is neither a URI (postgresql://...) nor key=value pairs")
            raise ConninfoError(f"DSN keyword {key!r} has no value (expected key=value)")
        i += 1
        while i < n and text[i] in SPACE:
            i += 1
        begin = i
        value, i = _quoted(text, i, key) if i < n and text[i] == "'" else _bare(text, i)
        found.append(Keyword(key, value, begin, i))
    return found


def parse(text: str) -> dict[str, str]:
    """The keywords of `text` as libpq takes them: the last of a repeated key wins."""
    return {item.key: item.value for item in keywords(text)}


def quote(value: str) -> str:
    """`value` written so that libpq reads it back unchanged: single-quoted, `\\` and `'`
    escaped (the form `libpq`'s own `appendConnStrVal()` writes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quoted(text: str, i: int, key: str) -> tuple[str, int]:
    chars: list[str] = []
    i += 1  # the opening quote
    n = len(text)
    while True:
        if i >= n:
            named = f"keyword {key!r}" if _IDENTIFIER.fullmatch(key) else "value"
            raise ConninfoError(f"DSN {named}: unterminated quoted value")
        char = text[i]
        if char == "\\":
            i += 1
            if i < n:
                chars.append(text[i])
                i += 1
            continue
        if char == "'":
            return "".join(chars), i + 1
        chars.append(char)
        i += 1


def _bare(text: str, i: int) -> tuple[str, int]:
    chars: list[str] = []
    n = len(text)
    while i < n and text[i] not in SPACE:
        if text[i] == "\\":
            i += 1
            if i < n:
                chars.append(text[i])
                i += 1
            continue
        chars.append(text[i])
        i += 1
    return "".join(chars), i
