"""libpq DSNs for asyncpg: a URI passes through, a `key=value` string becomes a URI.

asyncpg parses only URIs, while libpq (and so every PostgreSQL user) also writes
`host=db user=app password='a b'`. Errors name the keyword, never its value.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode


class DsnError(ValueError):
    """A DSN that libpq would refuse; the message names the keyword, never its value."""


def libpq_uri(dsn: str) -> str | None:
    """A DSN asyncpg understands: URIs pass through; libpq `key=value` strings become a URI.

    asyncpg parses only URIs. Keywords poolwatch sets itself (`application_name`,
    `connect_timeout`) are dropped, so that they cannot reach the server as unknown settings.
    """
    text = dsn.strip()
    if not text:
        return None
    if "://" in text:
        return text
    params = {
        k: v
        for k, v in parse_keywords(text).items()
        if k not in ("application_name", "connect_timeout")
    }
    return "postgresql://?" + urlencode(params, quote_via=quote)


def parse_keywords(text: str) -> dict[str, str]:
    """libpq `key = value` pairs; values may be single-quoted with `\\'` and `\\\\` escapes."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=" or not key:
            raise DsnError(f"DSN keyword {key!r} has no value (expected key=value)")
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value: list[str] = []
        quoted = i < n and text[i] == "'"
        i += quoted
        while i < n and (quoted or not text[i].isspace()):
            if text[i] == "\\" and i + 1 < n:
                value.append(text[i + 1])
                i += 2
                continue
            if quoted and text[i] == "'":
                quoted = False
                i += 1
                break
            value.append(text[i])
            i += 1
        if quoted:
            raise DsnError(f"DSN keyword {key!r}: unterminated quoted value")
        params[key] = "".join(value)
    return params
