"""One safe line saying why something failed: the words every log line, `up` message and retry
reason carries.

Safe means one line (a driver's multi-line dump would break log lines and alert texts), never empty
(the type name stands in), and without a password: URLs and DSNs in the text go through
`secrets.url`, `password=...`-style keywords are masked. Only the pure masking in `core.secrets`
is used, so a reason is safe without any registry of secrets.
"""

from __future__ import annotations

import re

from poolwatch.core import secrets

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def one_line(
    exc: BaseException,
    *,
    timeout: float | None = None,
    named: bool = False,
    limit: int | None = None,
) -> str:
    """Why `exc` happened, in one masked line.

    A `TimeoutError` says "no answer within {timeout}s" when the caller knows the timeout, else
    its own text, else "no answer in time" (asyncio's carries no text). `named` puts the type
    name first, for errors whose text alone does not say what failed (a bug, a library error);
    `limit` bounds the length.
    """
    text = str(exc).strip()
    if isinstance(exc, TimeoutError) and (timeout is not None or not text):
        return "no answer in time" if timeout is None else f"no answer within {timeout:g}s"
    name = type(exc).__name__
    if not text:
        return name
    line = masked(text.splitlines()[0])
    if named:
        line = f"{name}: {line}"
    return line if limit is None else line[:limit]


def masked(text: str) -> str:
    """`text` with the password of every URL in it and every `password=` keyword masked."""
    pieces: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        pieces.append(secrets.url(text[position : match.start()]))
        pieces.append(secrets.url(match.group()))
        position = match.end()
    pieces.append(secrets.url(text[position:]))
    return "".join(pieces)
