"""The Redis login probe's attempt, and Redis's failure classes.

The attempt is what an application does: a fresh connection with the target's options (its URL,
username and password, so `AUTH` or `HELLO ... AUTH` as redis-py sends them), client name
`poolwatch-probe`, one `PING`, and a disconnect. A full server answers the connection itself with
"max number of clients reached"; a changed password or ACL with `WRONGPASS` (or `NOAUTH` when
poolwatch sends none). A refused probe counts in the server's `rejected_connections`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from poolwatch.sources.login import AUTH, FULL, TIMED_OUT

PROBE_CLIENT_NAME = "poolwatch-probe"
SATURATION_ERROR = "max number of clients reached"
AUTH_WORDS = ("WRONGPASS", "NOAUTH", "invalid password", "invalid username-password pair")


def failure_class(exc: BaseException) -> str | None:
    """Full, authentication rejected or timed out, from redis-py's error or the server's words."""
    text = str(exc)
    if SATURATION_ERROR in text:
        return FULL
    if isinstance(exc, AuthenticationError) or any(word in text for word in AUTH_WORDS):
        return AUTH
    if isinstance(exc, RedisTimeoutError):  # not the built-in TimeoutError
        return TIMED_OUT
    return None


async def attempt(connection_class: type[Any], options: Mapping[str, Any]) -> None:
    """Connect (with AUTH), `PING`, disconnect; raises on any failure."""
    conn = connection_class(**{**options, "client_name": PROBE_CLIENT_NAME})
    try:
        await conn.connect()
        await conn.send_command("PING")
        answer = await conn.read_response()
    finally:
        with contextlib.suppress(RedisError, OSError):
            await conn.disconnect(nowait=True)
    if answer not in ("PONG", b"PONG", True):
        raise RedisError(f"PING answered {answer!r}")
