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
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from poolwatch.core import conninfo

MASK = "***"
_SECRET_QUERY_KEYS = {"password", "pass", "secret", "token", "sslpassword", "api_key"}
_SECRET_KEYWORDS = frozenset({"password", "sslpassword"})
"""The libpq keywords that hold a secret."""
_USERINFO_PASSWORD = re.compile(
    # to the last `@` of the word: a password may hold an unencoded `/`, `?`, `#` or `@`
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):\S*@"
)
_KEYWORD_PASSWORD = re.compile(
    # libpq's quoting: `'...'` with `\x` escapes (to the end when never closed), or a bare word
    r"(?i)\b(sslpassword|password|pass|secret|token)\s*=\s*"
    r"('(?:[^'\\]|\\.?)*'?|(?:[^\s\\]|\\.?)+)",
    re.DOTALL,
)
_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)

FREE_TEXT_KEYS = frozenset(
    {"reason", "error", "exception", "exc_info", "detail", "response", "address", "url", "dsn"}
)
"""Log fields that may hold text from outside poolwatch; the log net scrubs only these. Event
fields are never among them: an event's `message` is composed by poolwatch from structured
values and reasons that were scrubbed where they entered (the runtime's failure reasons)."""


def is_uri(text: str) -> bool:
    """Whether `text` is a URI (`scheme://...`), as libpq decides it: by how it begins, not by a
    `://` anywhere (a keyword DSN's password may hold one)."""
    return _SCHEME.match(text.strip()) is not None


def url(text: str) -> str:
    """A URL or libpq DSN with its password (userinfo, query or keyword) masked; other parts
    kept. A userinfo that urllib cannot see (a password with an unencoded `/`, `?` or `#` ends
    the host early) is masked to the last `@`."""
    if not is_uri(text):
        return _keywords_masked(text)
    if hidden_userinfo(text) is not None:
        masked = _USERINFO_PASSWORD.sub(rf"\g<scheme>\g<user>:{MASK}@", text)
        return masked if hidden_userinfo(masked) is not None else url(masked)
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


def unparsed(text: str) -> str | None:
    """A URL or DSN that failed to parse, as far as it may be shown: its scheme and host, with
    everything between `://` and the last `@` masked and whatever follows the host (a path, a
    query, a fragment: where tokens live) masked too; a keyword DSN with its secret values
    masked. None when nothing of it can be shown safely."""
    match = _SCHEME.match(text.strip())
    if match is None:
        try:
            items = conninfo.keywords(text)
        except conninfo.ConninfoError:
            return None
        return _spans_masked(text, items) if items else None
    rest = match.group("rest")
    _, at, hostpart = rest.rpartition("@")
    end = min((i for i in (hostpart.find(c) for c in "/?#") if i >= 0), default=len(hostpart))
    host, tail = hostpart[:end], hostpart[end:]
    name, colon, port = host.rpartition(":")
    if colon and not at and "]" not in port and not port.isdigit():
        host = f"{name}:{MASK}"  # no `@`: a "port" of letters may be a password that lost it
    shown = f"{match.group('scheme')}://{MASK + '@' if at else ''}{host}"
    return shown + (f"{tail[0]}{MASK}" if tail else "")


def opaque_url(text: str) -> str:
    """A URL whose path and query are secret too, as a webhook's are (Slack and Discord keep
    their tokens in the path, Azure in `sig=`, Google Chat in `key=`): scheme, host and port
    are kept, and the query's keys (which say what kind of token it was); the password, the
    path, every query value, a key without a value and the fragment are masked."""
    if hidden_userinfo(text) is not None:
        return unparsed(text) or MASK
    try:
        parts = urlsplit(text)
    except ValueError:
        return unparsed(text) or MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if has_password else netloc
    path = parts.path if parts.path in ("", "/") else f"/{MASK}"
    query = "&".join(
        f"{piece.partition('=')[0]}={MASK}" if "=" in piece else MASK
        for piece in parts.query.split("&")
        if piece
    )
    return urlunsplit((parts.scheme, netloc, path, query, MASK if parts.fragment else ""))


OPAQUE_PIECE = 16
"""A path segment or query value at least this long counts as a token the scrubber learns (a
shorter one is a word such as `services` or `json`, not a credential anyone issues)."""


def opaque_secrets(text: str) -> list[str]:
    """What the scrubber learns of a URL whose path and query are secret (see `opaque_url`):
    the URL itself, its path, its fragment, and every path segment and query value of
    `OPAQUE_PIECE` characters or more (as written and decoded), besides its password."""
    found = [text, *url_secrets(text)]
    try:
        parts = urlsplit(text)
    except ValueError:
        return found
    if parts.path not in ("", "/"):
        found.append(parts.path)
    found += [segment for segment in parts.path.split("/") if len(segment) >= OPAQUE_PIECE]
    for piece in parts.query.split("&"):
        value = piece.partition("=")[2] if "=" in piece else piece
        found += [v for v in {value, unquote_plus(value)} if len(v) >= OPAQUE_PIECE]
    if parts.fragment:
        found.append(parts.fragment)
    return found


def url_password(text: str) -> str | None:
    """The password a URL (userinfo or query) or libpq keyword DSN carries, if any."""
    return next(iter(url_secrets(text)), None)


def url_secrets(text: str) -> list[str]:
    """Every secret a URL or DSN carries: the userinfo password (to the last `@` when urllib
    cannot see it), secret query values, libpq's `password` and `sslpassword`."""
    if not is_uri(text):
        try:
            items = conninfo.keywords(text)
        except conninfo.ConninfoError:
            return []
        found = {item.key: item.value for item in items if item.key in _SECRET_KEYWORDS}
        return [value for value in found.values() if value]
    hidden = hidden_userinfo(text)
    if hidden is not None:
        return [hidden]
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return []
    found_values = [password] if password else []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _SECRET_QUERY_KEYS and value:
            found_values.append(value)
    return found_values


def mask_urls(text: str) -> str:
    """Free text with the password of every URL or `password=` keyword in it masked."""
    text = _USERINFO_PASSWORD.sub(rf"\g<scheme>\g<user>:{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)


def hidden_userinfo(text: str) -> str | None:
    """The password of a URL whose userinfo urllib cannot see: `user:pass` with an unencoded
    `/`, `?` or `#` in the password, so that urllib ends the host inside it and the `@` lands
    in the path. Detected as a host part (to the first `/`, `?` or `#`) that holds a `:` and no
    `@` while an `@` follows; the password then runs from that `:` to the last `@`."""
    match = _SCHEME.match(text.strip())
    if match is None:
        return None
    rest = match.group("rest")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" in authority or ":" not in authority or "@" not in rest[end:]:
        return None
    userinfo = rest[: rest.rfind("@")]
    return userinfo.partition(":")[2]


def _keywords_masked(text: str) -> str:
    """A libpq keyword DSN with its secret values masked, read as libpq reads it; text that
    is not one (free text, an unterminated quote) has every `password=`-like value masked, to
    the end of the text for a quote that never closes."""
    try:
        items = conninfo.keywords(text)
    except conninfo.ConninfoError:
        return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return _spans_masked(text, items)


def _spans_masked(text: str, items: list[conninfo.Keyword]) -> str:
    pieces: list[str] = []
    position = 0
    for item in items:
        if item.key.lower() in _SECRET_KEYWORDS or item.key.lower() in _SECRET_QUERY_KEYS:
            pieces.append(text[position : item.start])
            pieces.append(MASK)
            position = item.end
    pieces.append(text[position:])
    return "".join(pieces)


class Scrubber:
    """Masks the configured secrets in free text, each only as a whole token.

    Built once from the configuration's declared secrets and passed to what writes free text
    (the log pipeline, the runtime's failure reasons): no module-global registry.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # a password of white space alone cannot be told from the text's own spaces: masking it
        # would garble every line and hide nothing
        values = sorted({s for s in secrets if s.strip()}, key=len, reverse=True)
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
