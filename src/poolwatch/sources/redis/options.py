"""How redis-py connects to one target: the connection class and its arguments.

Apart from the collector so that the settings can check a target's URL at load (`check_options`)
without importing the collector; it reads the target through `Target`, so it imports neither.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from pydantic import SecretStr
from redis.asyncio.connection import AbstractConnection, Connection, parse_url

from poolwatch.core import secrets as redact
from poolwatch.sources.redis.replies import parser_for

CLIENT_NAME = "poolwatch"

NO_SETINFO: dict[str, None] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters
    else {"lib_name": None, "lib_version": None}
)
"""Connection arguments that turn off CLIENT SETINFO: one round trip less, nothing to fail on old
servers. redis-py 7.2 added `driver_info` and deprecated `lib_name`/`lib_version` (5.0-7.1 know
only those), so the installed redis-py's signature decides, once, at import."""


class Target(Protocol):
    """What of a `RedisTarget` a connection needs."""

    @property
    def url(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> SecretStr | None: ...


def connection_options(target: Target, io_timeout: float) -> tuple[type[Any], dict[str, Any]]:
    """Connection class and arguments for a target: its URL, then the configured credentials,
    then what poolwatch insists on (its client name, timeouts, RESP2 which every Redis speaks,
    and a parser that reads no reply over its cap: `replies`)."""
    options: dict[str, Any] = dict(parse_url(target.url))
    connection_class = options.pop("connection_class", Connection)
    if target.username:
        options["username"] = target.username
    if target.password is not None:
        options["password"] = target.password.get_secret_value()
    options.setdefault("protocol", 2)
    options.update(
        client_name=CLIENT_NAME,
        **NO_SETINFO,
        decode_responses=True,
        socket_timeout=io_timeout,
        socket_connect_timeout=io_timeout,
        parser_class=parser_for(options["protocol"]),
    )
    return connection_class, options


def check_options(target: Target) -> None:
    """Raise ValueError (with the URL's password masked) when redis-py cannot use the target."""
    try:
        connection_class, options = connection_options(target, 1.0)
        connection_class(**options)
    except (ValueError, TypeError) as exc:
        raise ValueError(redact.mask_urls(f"redis-py cannot use it ({exc})")) from None
