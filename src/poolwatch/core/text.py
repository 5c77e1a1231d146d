"""What every text output does to a string it did not write itself. Pure.

Names and free text come from other people: a role or database name, an `application_name`, a
container's name, labels and health-check output, a silence's comment. In a text format a line
break in one of them forges a line (a Nagios status, a Checkmk service, a table row) and an ESC
sequence rewrites the reader's terminal. `printable` makes such a string inert; the JSON formats
need none of this (JSON escapes every control character itself), so structured fields there stay
exactly what the watched system said.
"""

from __future__ import annotations

import re

REPLACEMENT = "?"
"""What stands in for each character `printable` removes: visible, one column wide, ASCII, and
syntax in none of the text formats (perfdata, Checkmk, the tables)."""

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""C0 controls (line feed, carriage return, tab, ESC, ...), DEL, C1 controls (NEL, CSI, ...),
the Unicode line and paragraph separators (line breaks to `str.splitlines` and to many readers),
and lone surrogates (text decoded with `surrogateescape`: they cannot even be encoded to UTF-8)."""


def printable(text: str) -> str:
    """`text` with every control character, line separator and lone surrogate as `?`, one for
    one, so no line can be forged and no terminal sequence sent; all else is kept as it is."""
    return _UNPRINTABLE.sub(REPLACEMENT, text)
