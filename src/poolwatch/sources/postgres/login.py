"""The PostgreSQL login probe's attempt, and the failure classes of the PostgreSQL protocol.

The attempt is what an application does: a fresh asyncpg connection with the target's DSN and
password (`application_name = poolwatch-probe`, so it is told apart from the kept session),
`SELECT 1`, and a proper close (a Terminate message: the server counts no abandoned session for
it). Any failure on the way (a refused, timed-out or cancelled attempt) terminates the socket
without waiting for the peer.

The attempt and `failure_class` serve PgBouncer's probe too: it speaks the same protocol, with
the same SQLSTATEs. asyncpg ends a cancelled attempt at once (the probe's timeout is a bound).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from poolwatch.core.reasons import one_line
from poolwatch.sources.login import AUTH, FULL

PROBE_APPLICATION_NAME = "poolwatch-probe"

SQLSTATE_CLASSES = {
    "53300": FULL,  # too many clients; remaining slots are reserved
    "28P01": AUTH,  # password authentication failed
    "28000": AUTH,  # invalid authorization: no pg_hba.conf entry, pg_hba.conf rejects
}
TEXT_CLASSES = (
    (FULL, ("too many clients", "remaining connection slots are reserved",
            "no more connections allowed")),
    (AUTH, ("password authentication failed", "pg_hba.conf", "SASL authentication failed",
            "authentication failed")),
)  # fmt: skip
"""The server's words, for drivers that report a failed connect without its SQLSTATE (libpq's
connect errors in psycopg); PgBouncer says `no more connections allowed (max_client_conn)`."""


def failure_class(exc: BaseException) -> str | None:
    """Full or authentication rejected, from the SQLSTATE, else from the server's words."""
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state in SQLSTATE_CLASSES:
        return SQLSTATE_CLASSES[state]
    text = str(exc)
    for kind, phrases in TEXT_CLASSES:
        if any(phrase in text for phrase in phrases):
            return kind
    return None


def explain(exc: BaseException) -> str:
    """The driver's words as one safe line, with the SQLSTATE that says which error it was."""
    state = getattr(exc, "sqlstate", None)
    text = one_line(exc)
    return f"{text} (SQLSTATE {state})" if isinstance(state, str) and state else text


async def attempt(dsn: str | None, password: str | None, io_timeout: float) -> None:
    """Connect, authenticate, `SELECT 1`, close; raises on any failure. `io_timeout` bounds
    each step; the probe's own timeout bounds the whole."""
    conn: Any = await asyncpg.connect(
        dsn,
        password=password,
        timeout=io_timeout,
        command_timeout=io_timeout,
        statement_cache_size=0,  # one statement, unnamed: fine behind PgBouncer's pooling too
        server_settings={"application_name": PROBE_APPLICATION_NAME},
    )
    try:
        await conn.fetchval("SELECT 1")
    except BaseException:
        conn.terminate()
        raise
    await conn.close(timeout=io_timeout)  # asyncpg aborts the socket itself if this fails
