"""libpq DSNs for asyncpg: a URI passes through, a `key=value` string becomes a URI; and where
a DSN connects (`servers`).

asyncpg parses only URIs, while libpq (and so every PostgreSQL user) also writes
`host=db user=app password='a b'`. The keyword grammar is libpq's own, in
`poolwatch.core.conninfo`, shared with the masking of secrets. Errors name the keyword, never
its value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from poolwatch.core.conninfo import ConninfoError as DsnError
from poolwatch.core.conninfo import parse as parse_keywords
from poolwatch.core.secrets import is_uri

__all__ = ["DsnError", "libpq_uri", "parse_keywords", "servers"]

DEFAULT_PORT = 5432
SOCKET_DIR = "/var/run/postgresql"
"""Where libpq looks without a host (its build's default: Debian's, and what asyncpg tries
first after `/run/postgresql`). A socket names no container, so the exact directory matters
only to a reader."""
_BRACKETED = re.compile(r"\[([^\]]*)\](?::(.*))?")


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


def servers(dsn: str, environment: Mapping[str, str]) -> list[tuple[str, int]]:
    """Where a checked DSN connects: (host, port) per host, as libpq and asyncpg read it.

    Hosts: a URI's own (`postgresql://a:5433,b/db`), else its `host` parameter (or keyword
    `host`; `hostaddr` first, as libpq connects there), else `PGHOSTADDR` / `PGHOST`, else the
    unix socket. Ports: a host's own, else the `port` list (one for all hosts, or one each),
    else `PGPORT`, else 5432. A host may be a socket directory (`/run/postgresql`).
    """
    text = dsn.strip()
    given: list[tuple[str, str]] = []
    if is_uri(text):
        parts = urlsplit(text)
        params = dict(parse_qsl(parts.query))
        netloc = parts.netloc.rpartition("@")[2]
        given = [_hostspec(unquote(spec)) for spec in netloc.split(",")] if netloc else []
    else:
        params = parse_keywords(text) if text else {}
    hosts = [host for host, _ in given]
    if not any(hosts):
        hosts = _listed(params.get("hostaddr") or params.get("host"))
    if not any(hosts):
        hosts = _listed(environment.get("PGHOSTADDR") or environment.get("PGHOST")) or [""]
    ports = _listed(params.get("port") or environment.get("PGPORT"))
    found: dict[tuple[str, int], None] = {}
    for i, host in enumerate(hosts):
        own = given[i][1] if i < len(given) else ""
        port = own or (ports[i] if len(ports) == len(hosts) else ports[0] if ports else "")
        found[(host or SOCKET_DIR, int(port) if port.isdigit() else DEFAULT_PORT)] = None
    return list(found)


def _listed(text: str | None) -> list[str]:
    return [item.strip() for item in text.split(",")] if text else []


def _hostspec(spec: str) -> tuple[str, str]:
    """`host`, `host:port`, `[v6]:port` of a URI's host list."""
    bracketed = _BRACKETED.fullmatch(spec)
    if bracketed:
        return bracketed.group(1), bracketed.group(2) or ""
    host, _, port = spec.partition(":")
    return host, port
