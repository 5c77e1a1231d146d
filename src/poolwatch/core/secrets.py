"""Keep secrets out of every line poolwatch writes.

Two nets: URLs/DSNs lose their password wherever they are formatted (`url()`), and every secret
value the config holds is registered here so that `scrub()` (a structlog processor runs it on
every log line and event) replaces it even inside a driver's error message.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from poolwatch.config.load import Config

MASK = "***"
_SECRET_QUERY_KEYS = {"password", "pass", "secret", "token", "sslpassword", "api_key"}
_USERINFO_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@"
)
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password|pass|secret|token)\s*=\s*('[^']*'|\S+)")

_registered: set[str] = set()


def register(secret: str | None) -> None:
    """Remember a secret value so that `scrub` masks it wherever it shows up."""
    if secret and len(secret) >= 3:
        _registered.add(secret)


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


def scrub(text: str) -> str:
    """Mask registered secrets and URL passwords in free text (error messages, log lines)."""
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO_PASSWORD.sub(rf"\g<scheme>\g<user>:{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)


def scrub_value(value: object) -> object:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: scrub_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(item) for item in value]
    return value


def processor(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: the last net before a line is rendered."""
    for key, value in event_dict.items():
        event_dict[key] = scrub_value(value)
    return event_dict


def register_config_secrets(config: Config) -> None:
    """Register every secret the config holds (passwords, signing secrets, DSN passwords)."""
    for pg in config.postgres.targets:
        register(pg.password.get_secret_value() if pg.password else None)
        register(_url_password(pg.dsn))
    for rd in config.redis.targets:
        register(rd.password.get_secret_value() if rd.password else None)
        register(_url_password(rd.url))
    for hook in config.webhooks:
        register(hook.secret.get_secret_value() if hook.secret else None)
        register(hook.bearer_token.get_secret_value() if hook.bearer_token else None)
        register(hook.password.get_secret_value() if hook.password else None)
        register(_url_password(hook.url))
    for url in config.alertmanager.urls:
        register(_url_password(url))


def _url_password(text: str) -> str | None:
    if "://" not in text:
        match = _KEYWORD_PASSWORD.search(text)
        return match.group(2).strip("'") if match else None
    try:
        return urlsplit(text).password
    except ValueError:
        return None
