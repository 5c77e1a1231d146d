"""Keep secrets out of every line poolwatch writes, without rewriting what it reports.

Two tools, both pure: `url()` masks the password of a URL or libpq DSN wherever one is formatted,
and a `Scrubber`, built from the secrets the configuration declares (see
`poolwatch.config.secrets`), masks those values in free text: the reasons and exception strings
that come from outside poolwatch (a driver's error, a receiver's answer). A secret is masked only
as a whole token, never inside a longer word, and structured fields (source, instance, check,
labels, alert names) are never scrubbed at all: a password `postgres` must not turn the event's
`"source": "postgres"` into `"***"`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_QUERY_KEYS = {"password", "pass", "secret", "token", "sslpassword", "api_key"}
_USERINFO_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@"
)
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password|pass|secret|token)\s*=\s*('[^']*'|\S+)")

FREE_TEXT_KEYS = frozenset(
    {"reason", "error", "exception", "exc_info", "detail", "response", "address", "url", "dsn"}
)
"""Log fields that may hold text from outside poolwatch; the log net scrubs only these. Event
fields are never among them: an event's `message` is composed by poolwatch from structured
values and reasons that were scrubbed where they entered (the runtime's failure reasons)."""


def url(text: str) -> str:
    """A URL or libpq DSN with its password (userinfo or query) masked; other parts kept."""
    if "://" not in text:
        return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)
    try:
        parts = urlsplit(text)
    except ValueError:
        return _USERINFO_PASSWORD.sub(rf"\g<scheme>\g<user>:{MASK}@", text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if has_password else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(text: str) -> str | None:
    """The password a URL (userinfo or query) or libpq keyword DSN carries, if any."""
    if "://" not in text:
        match = _KEYWORD_PASSWORD.search(text)
        return match.group(2).strip("'") if match else None
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return None
    if password:
        return password
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _SECRET_QUERY_KEYS and value:
            return value
    return None


def mask_urls(text: str) -> str:
    """Free text with the password of every URL or `password=` keyword in it masked."""
    text = _USERINFO_PASSWORD.sub(rf"\g<scheme>\g<user>:{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)


class Scrubber:
    """Masks the configured secrets in free text, each only as a whole token.

    Built once from the configuration's declared secrets and passed to what writes free text
    (the log pipeline, the runtime's failure reasons): no module-global registry.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        # a token boundary: not inside a longer word or number (`a` in `alpha` stays)
        alternatives = "|".join(re.escape(value) for value in values)
        self._pattern = (
            re.compile(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])") if values else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return mask_urls(text)

    def log_processor(
        self, _logger: object, _method: str, event_dict: MutableMapping[str, Any]
    ) -> Any:
        """structlog processor: the last net, over the free-text fields of a log line only."""
        for key in FREE_TEXT_KEYS.intersection(event_dict):
            value = event_dict[key]
            if isinstance(value, str):
                event_dict[key] = self(value)
        return event_dict
