"""The PgBouncer login probe's attempt: through PgBouncer into a real database (`probe_dsn`).

What an application does: a fresh connection (`application_name = poolwatch-probe`), `SELECT 1`,
close. PgBouncer authenticates a client itself and needs a server only for the query, so the
round trip is what proves that a client gets through to PostgreSQL: a login PgBouncer accepts
while it cannot reach its server waits in `cl_waiting` (timed out), or is answered with PgBouncer's
"server login has been failing".

The attempt is the PostgreSQL source's (asyncpg, no named prepared statements, so transaction
pooling is fine), not psycopg like the admin console: a pooled database speaks the extended
protocol, and psycopg answers a cancelled query by sending a cancel request and waiting up to 5 s
for it (a 1 s probe took 6 s against a PgBouncer with no server), while a probe must end within
its timeout. PostgreSQL's failure classes apply (same SQLSTATEs; PgBouncer's own "no more
connections allowed (max_client_conn)" is full).
"""

from __future__ import annotations

from poolwatch.sources.postgres.dsn import libpq_uri
from poolwatch.sources.postgres.login import attempt as postgres_attempt
from poolwatch.sources.postgres.login import explain as explain
from poolwatch.sources.postgres.login import failure_class as failure_class


async def attempt(dsn: str, io_timeout: float) -> None:
    """Connect through PgBouncer, authenticate, `SELECT 1`, close; raises on any failure."""
    await postgres_attempt(libpq_uri(dsn), None, io_timeout)
