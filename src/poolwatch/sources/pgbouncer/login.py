"""The PgBouncer login probe's attempt: through PgBouncer into a real database (`probe_dsn`).

What an application does: a fresh psycopg connection (`application_name = poolwatch-probe`),
`SELECT 1`, close. PgBouncer authenticates the client itself and only then needs a server, so
the round trip is what proves that a client gets through to PostgreSQL: a login that PgBouncer
accepts while it cannot reach its server hangs in `cl_waiting` (timed out) or is answered with
an error. psycopg, like the admin console's collector: the source already depends on it, and a
pooled database speaks the ordinary protocol. PostgreSQL's failure classes apply (same SQLSTATEs;
PgBouncer's own "no more connections allowed (max_client_conn)" is full).
"""

from __future__ import annotations

import math

import psycopg

from poolwatch.sources.postgres.login import PROBE_APPLICATION_NAME
from poolwatch.sources.postgres.login import explain as explain
from poolwatch.sources.postgres.login import failure_class as failure_class

LIBPQ_MIN_CONNECT_TIMEOUT = 2
"""libpq takes whole seconds and treats 1 as 2; the probe's own timeout bounds the attempt."""


async def attempt(dsn: str, io_timeout: float) -> None:
    """Connect, authenticate, `SELECT 1`, close; raises on any failure."""
    seconds = max(LIBPQ_MIN_CONNECT_TIMEOUT, math.ceil(io_timeout))
    conn = await psycopg.AsyncConnection.connect(
        dsn,
        autocommit=True,
        prepare_threshold=None,  # transaction pooling: no prepared statements
        application_name=PROBE_APPLICATION_NAME,
        connect_timeout=seconds,
    )
    try:
        await conn.execute("SELECT 1")
    finally:
        await conn.close()  # libpq's PQfinish: a Terminate message, no wait for the peer
