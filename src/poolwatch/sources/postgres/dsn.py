"""libpq DSNs for asyncpg: a URI passes through, a `key=value` string becomes a URI.

asyncpg parses only URIs, while libpq (and so every PostgreSQL user) also writes
`host=db user=app password='a b'`. The keyword grammar is libpq's own, in
`poolwatch.core.conninfo`, shared with the masking of secrets. Errors name the keyword, never
its value.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from poolwatch.core.conninfo import ConninfoError as DsnError
from poolwatch.core.conninfo import parse as parse_keywords
from poolwatch.core.secrets import is_uri

__all__ = ["DsnError", "libpq_uri", "parse_keywords"]


def libpq_uri(dsn: str) -> str | None:
    """A DSN asyncpg understands: URIs pass through; libpq `key=value` strings become a URI.

    asyncpg parses only URIs. Keywords poolwatch sets itself (`application_name`,
    `connect_timeout`) are dropped, so that they cannot reach the server as unknown settings.
    """
    text = dsn.strip()
    if not text:
        return None
    if is_uri(text):  # by how it begins, as libpq decides: a password may hold "://"
        return text
    params = {
        k: v
        for k, v in parse_keywords(text).items()
        if k not in ("application_name", "connect_timeout")
    }
    return "postgresql://?" + urlencode(params, quote_via=quote)
