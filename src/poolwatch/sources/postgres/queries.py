r"""The PostgreSQL source's SQL, split by what each statement may wait for.

`CORE` reads only functions (`pg_stat_get_activity(NULL)`, `current_setting`): no relation, so no
lock, so a migration's DDL on a catalog cannot stop it. `up`, `connections`, the states, the
waiters and the ages come from it. `pg_stat_activity` is not used: it is a view that joins
`pg_database` and `pg_authid`, so `LOCK pg_database` (or a `VACUUM FULL` of it) would stall the
count that decides "PostgreSQL down".

Each `Detail` reads catalogs (names, `pg_stat_database`, sizes), runs alone under the session's
short `lock_timeout`, and may fail alone: the poll is then partial. `BLOCKERS` reads `pg_locks`
(a view over a function, no catalog) to name who held the catalog lock a detail gave up on.

Names and query text come as the hex of their raw bytes, never as text: a database or role name
need not be valid in any encoding (a `SQL_ASCII` database takes any bytes, and its names land in
the shared catalogs every database reads), and one such name as text fails the whole statement,
in the driver's UTF-8 decoding or, when the database poolwatch connects to is itself `SQL_ASCII`,
in the server's conversion to UTF-8. Each is read as
`encode(decode(replace(name::text, E'\\', E'\\\\'), 'escape'), 'hex')`: `decode(..., 'escape')`
takes a text's bytes as they are once its backslashes are doubled, with no conversion and no
check of the encoding (`textsend` converts, `convert_to` checks: both fail on the very names at
issue). `raw_text` decodes each in Python, with replacement: a bad name costs at most its row.

Constant text: nothing from the configuration is ever formatted into SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def raw_text(hex_bytes: str | None) -> str | None:
    """A value read as raw hex (see the module), as UTF-8, each invalid byte replaced by U+FFFD."""
    if hex_bytes is None:
        return None
    return bytes.fromhex(hex_bytes).decode("utf-8", errors="replace")


CORE = """
WITH clients AS (
    -- Without pg_monitor, other roles' rows read NULL backend_type and state; they still show
    -- datid and usesysid, which background processes lack (both are set only for sessions)
    SELECT pid, coalesce(state, '') AS state, wait_event_type, datid, usesysid,
           query_start, xact_start, state_change,
           coalesce(application_name, '') AS application,
           -- a unix socket reports port -1; a row the role may not see has no address at all
           CASE WHEN client_port = -1 THEN 'local' WHEN client_addr IS NULL THEN 'unknown'
                ELSE host(client_addr) END AS client
    FROM pg_stat_get_activity(NULL)
    WHERE backend_type = 'client backend'
       OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL)
), others AS (
    SELECT * FROM clients WHERE pid <> pg_backend_pid()
)
SELECT
    current_setting('max_connections')::int AS max_connections,
    current_setting('superuser_reserved_connections')::int AS superuser_reserved,
    coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
    pg_postmaster_start_time()::text AS started,
    (SELECT count(*) FROM clients) AS connections,
    (SELECT count(*) FROM clients WHERE wait_event_type = 'Lock') AS waiting,
    (SELECT coalesce(json_object_agg(state, n), '{}')
       FROM (SELECT state, count(*) AS n FROM clients GROUP BY state) s) AS by_state,
    (SELECT coalesce(json_object_agg(coalesce(datid, 0), n), '{}')
       FROM (SELECT datid, count(*) AS n FROM clients GROUP BY datid) d) AS by_database,
    (SELECT coalesce(json_object_agg(coalesce(usesysid, 0), n), '{}')
       FROM (SELECT usesysid, count(*) AS n FROM clients GROUP BY usesysid) u) AS by_user,
    (SELECT coalesce(json_object_agg(application, n), '{}')
       FROM (SELECT application, count(*) AS n FROM clients GROUP BY application) a)
       AS by_application,
    (SELECT coalesce(json_object_agg(client, n), '{}')
       FROM (SELECT client, count(*) AS n FROM clients GROUP BY client) c) AS by_client,
    (SELECT coalesce(extract(epoch FROM max(now() - query_start)), 0)::float8
       FROM others WHERE state = 'active') AS longest_query,
    (SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8
       FROM others) AS oldest_transaction,
    (SELECT coalesce(extract(epoch FROM max(now() - state_change)), 0)::float8
       FROM others WHERE state LIKE 'idle in transaction%') AS idle_in_transaction
"""


@dataclass(frozen=True)
class Detail:
    """One statement that reads catalogs: `name` is what an operator is told was not read."""

    name: str
    sql: str


NAMES = Detail(
    "database and user names",
    r"""
SELECT
    (SELECT coalesce(json_object_agg(
         oid, encode(decode(replace(datname::text, E'\\', E'\\\\'), 'escape'), 'hex')), '{}')
       FROM pg_database WHERE oid = ANY($1::oid[])) AS databases,
    (SELECT coalesce(json_object_agg(
         o, encode(decode(replace(pg_get_userbyid(o)::text, E'\\', E'\\\\'), 'escape'), 'hex')),
         '{}')
       FROM unnest($2::oid[]) o) AS users
""",
)
"""Names by oid, each as the hex of its bytes."""

DEADLOCKS = Detail(
    "deadlock and session counters",
    """
SELECT coalesce(json_agg(json_build_array(datid, deadlocks, stats_reset::text)), '[]')
    AS deadlocks,
    coalesce(json_agg(json_build_array(datid, stats_reset::text, s -> 'sessions_fatal',
        s -> 'sessions_abandoned', s -> 'sessions_killed')), '[]') AS sessions
FROM pg_stat_database d CROSS JOIN LATERAL to_jsonb(d) AS s
""",
)
"""The session counters are PostgreSQL 14+: read through `to_jsonb(row)`, they are null on an
older server instead of failing the statement (sessions.py)."""

SIZES = Detail(
    "database sizes",
    r"""
SELECT coalesce(json_agg(json_build_array(
           encode(decode(replace(datname::text, E'\\', E'\\\\'), 'escape'), 'hex'), size)), '[]')
       AS sizes
FROM (SELECT datname, pg_database_size(oid) AS size FROM pg_database
      WHERE datallowconn AND NOT datistemplate
        AND (has_database_privilege(oid, 'CONNECT')
             OR pg_has_role('pg_read_all_stats', 'USAGE'))
      ORDER BY size DESC NULLS LAST LIMIT 50) z
""",
)
"""Names as the hex of their bytes, the largest first. A size reads NULL when the database's files
are gone but its row is still visible: a DROP DATABASE in progress. A DROP that commits during
the statement fails it with SQLSTATE 3D000."""

HOLDERS = Detail(
    "connection holders",
    r"""
WITH clients AS (
    SELECT pid, coalesce(application_name, '') AS application, usesysid,
           CASE WHEN client_port = -1 THEN 'local' WHEN client_addr IS NULL THEN 'unknown'
                ELSE host(client_addr) END AS client,
           coalesce(state, '') AS state, state_change, xact_start, wait_event_type,
           CASE WHEN $1::bool
                THEN encode(decode(replace(left(query, 200), E'\\', E'\\\\'), 'escape'), 'hex')
           END AS query
    FROM pg_stat_get_activity(NULL)
    WHERE (backend_type = 'client backend'
           OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL))
      AND pid <> pg_backend_pid()
), waits AS (
    SELECT pid, pg_blocking_pids(pid) AS blockers FROM clients WHERE wait_event_type = 'Lock'
)
SELECT
    (SELECT coalesce(json_agg(json_build_object(
         'application', application, 'usesysid', usesysid, 'client', client, 'state', state,
         'count', n, 'idle_in_transaction', idle_xact, 'transaction', xact, 'query', query)),
         '[]')
       FROM (SELECT application, usesysid, client, state, count(*) AS n,
                    extract(epoch FROM max(now() - state_change)
                        FILTER (WHERE state LIKE 'idle in transaction%'))::float8 AS idle_xact,
                    extract(epoch FROM max(now() - xact_start))::float8 AS xact,
                    (array_agg(query ORDER BY xact_start NULLS LAST))[1] AS query
             FROM clients GROUP BY application, usesysid, client, state) g) AS groups,
    (SELECT coalesce(json_agg(json_build_array(pid, blockers)), '[]') FROM waits) AS waits,
    (SELECT coalesce(json_agg(json_build_object(
         'pid', pid, 'application', application, 'usesysid', usesysid, 'client', client,
         'state', state, 'state_seconds', extract(epoch FROM now() - state_change)::float8,
         'query', query)), '[]')
       FROM clients WHERE pid IN (SELECT unnest(blockers) FROM waits)) AS sessions
""",
)
"""Who holds the pool, read only while `connections` is at or above warning: the sessions grouped
by (application, role, client address, state), every lock waiter with `pg_blocking_pids`, and the
sessions those name. Functions only, like CORE, so no DDL can hold it up; role oids are named from
the NAMES read of the same poll. Query text only when `$1` (`include_query_text`) is true, as the
hex of its bytes: a session of a `SQL_ASCII` database may send any bytes."""

FIRST_NORMAL_OID = 16384
"""Relations below this oid are the system catalogs, their indexes and the system views."""

BLOCKERS = """
SELECT pid, mode, granted, relation::int8 AS relation
FROM pg_locks
WHERE locktype = 'relation'
  AND mode = 'AccessExclusiveLock'  -- the only mode that conflicts with a reader's AccessShare
  AND relation < 16384
  AND database IN (0, (SELECT datid FROM pg_stat_get_activity(pg_backend_pid())))
  AND pid IS DISTINCT FROM pg_backend_pid()
ORDER BY granted DESC, pid
"""
"""Who holds, or queues for, the one lock mode that stops a reader of a catalog. After
`lock_timeout` poolwatch's own request has left the queue, so `pg_blocking_pids(pg_backend_pid())`
would say nothing; this asks the lock table directly, still without touching a catalog."""

CATALOGS = {
    1213: "pg_tablespace",
    1247: "pg_type",
    1249: "pg_attribute",
    1255: "pg_proc",
    1259: "pg_class",
    1260: "pg_authid",
    1261: "pg_auth_members",
    1262: "pg_database",
    2615: "pg_namespace",
    2618: "pg_rewrite",
    2619: "pg_statistic",
    2964: "pg_db_role_setting",
}
"""Catalog oids are fixed at bootstrap: naming them here needs no lookup in `pg_class`, which
could itself be the locked catalog."""


def relation_name(oid: int) -> str:
    return CATALOGS.get(oid, f"relation oid {oid}")


def blockers_text(rows: Sequence[Any]) -> str:
    """`pid 123 holds AccessExclusiveLock on pg_database`, one clause per lock."""
    clauses = [
        f"pid {row['pid']} {'holds' if row['granted'] else 'waits for'} {row['mode']}"
        f" on {relation_name(int(row['relation']))}"
        for row in rows
    ]
    return "; ".join(clauses) if clauses else "the lock was released before it could be named"
