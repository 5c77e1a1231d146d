"""PostgreSQL source: the true use of the connection pool, from one persistent connection.

Why it is built this way (each point is a mistake other monitors make):
- Only `client backend` rows of `pg_stat_activity` are connections; autovacuum, WAL writer and
  replication senders are not.
- The pool is `max_connections - superuser_reserved_connections - reserved_connections` (the last
  from PostgreSQL 16): what ordinary roles can really use. The settings are read in the same query
  as the counts, every poll, so a changed setting shows after one restart of the server.
- One connection per target, opened once and kept. A monitor that connects per poll goes blind
  exactly when the pool is full. When a (re)connect is refused with SQLSTATE 53300, the server is
  up and full: that is reported as `connections` = limit on the very same alert key, never as down.
- asyncpg never reconnects by itself: after a lost connection poolwatch reconnects at once, then
  with capped exponential backoff and jitter, and never holds two connections to one target.

Time: connecting and the query each get 30 % of the collector's timeout, so a poll that loses its
connection, reconnects and queries again still fits the runner's timeout. The server cancels a
slow query first (`statement_timeout`, a little shorter), so a client-side timeout means a dead
peer: only then is the connection dropped. The readings are listed in README.md
(section "Source: PostgreSQL"); a test checks that this module emits exactly those.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg

from poolwatch.config.rules import Rules
from poolwatch.core.backoff import Backoff
from poolwatch.core.model import UP_CHECK, Reading
from poolwatch.core.reasons import one_line
from poolwatch.runtime.logs import get_logger
from poolwatch.sources import SourceError
from poolwatch.sources.postgres.dsn import DsnError, libpq_uri
from poolwatch.sources.postgres.settings import PostgresTarget

SOURCE = "postgres"
APPLICATION_NAME = "poolwatch"
TOO_MANY_CONNECTIONS = "53300"
SATURATED_MESSAGE = "server refused a new connection: too many clients (SQLSTATE 53300)"


STATES = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
    "fastpath function call": "fastpath_function_call",
    "disabled": "disabled",
    "": "unknown",  # a row whose state the monitor role may not see (no pg_monitor)
}
MAX_LABEL_VALUES = 20
"""Per-database and per-user readings: the busiest ones, the rest summed under `OTHER`."""
OTHER = "(other)"

BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0

# One round trip. Constant text: nothing from the configuration is ever formatted into SQL.
QUERY = """
WITH activity AS (
    SELECT pid, coalesce(state, '') AS state, wait_event_type, datname, usename,
           query_start, xact_start, state_change
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
), others AS (
    SELECT * FROM activity WHERE pid <> pg_backend_pid()
)
SELECT
    current_setting('max_connections')::int AS max_connections,
    current_setting('superuser_reserved_connections')::int AS superuser_reserved,
    coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
    pg_postmaster_start_time()::text AS started,
    (SELECT count(*) FROM activity) AS connections,
    (SELECT count(*) FROM activity WHERE wait_event_type = 'Lock') AS waiting,
    (SELECT coalesce(json_object_agg(state, n), '{}')
       FROM (SELECT state, count(*) AS n FROM activity GROUP BY state) s) AS by_state,
    (SELECT coalesce(json_object_agg(name, n), '{}')
       FROM (SELECT coalesce(datname, '') AS name, count(*) AS n
             FROM activity GROUP BY 1) d) AS by_database,
    (SELECT coalesce(json_object_agg(name, n), '{}')
       FROM (SELECT coalesce(usename, '') AS name, count(*) AS n
             FROM activity GROUP BY 1) u) AS by_user,
    (SELECT coalesce(extract(epoch FROM max(now() - query_start)), 0)::float8
       FROM others WHERE state = 'active') AS longest_query,
    (SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8
       FROM others) AS oldest_transaction,
    (SELECT coalesce(extract(epoch FROM max(now() - state_change)), 0)::float8
       FROM others WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,
    (SELECT coalesce(json_agg(json_build_array(datid, deadlocks, stats_reset::text)), '[]')
       FROM pg_stat_database) AS deadlocks,
    (SELECT coalesce(json_agg(json_build_array(datname, size)), '[]')
       FROM (SELECT datname, pg_database_size(oid) AS size FROM pg_database
             WHERE datallowconn AND NOT datistemplate
               AND (has_database_privilege(oid, 'CONNECT')
                    OR pg_has_role('pg_read_all_stats', 'USAGE'))
             ORDER BY size DESC LIMIT 50) z) AS sizes
"""

Counters = dict[int, tuple[int, str | None]]
"""Deadlock counters per database oid, with that database's `stats_reset` time."""


def deadlock_delta(previous: Counters | None, current: Counters) -> int | None:
    """Deadlocks since the last poll, summed over databases; None on the first poll.

    A database whose `stats_reset` changed, or whose counter went down (stats reset, crash
    restart), counts from zero; a database not seen before is only a baseline.
    """
    if previous is None:
        return None
    total = 0
    for oid, (count, reset) in current.items():
        before = previous.get(oid)
        if before is None:
            continue
        if reset != before[1] or count < before[0]:
            total += count
        else:
            total += count - before[0]
    return total


def _bounded(counts: Mapping[str, int]) -> dict[str, int]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:MAX_LABEL_VALUES])
    rest = sum(n for _, n in ranked[MAX_LABEL_VALUES:])
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def _reason(exc: BaseException) -> str:
    """The driver's words as one safe line, with the SQLSTATE that says which error it was."""
    state = _sqlstate(exc)
    text = one_line(exc)  # a timeout: "no answer in time"
    return f"{text} (SQLSTATE {state})" if state else text


class PostgresCollector:
    """One target: one persistent asyncpg connection, one query per poll."""

    source = SOURCE

    def __init__(
        self,
        target: PostgresTarget,
        *,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self.instance = target.name
        self.interval = target.interval
        self.timeout = target.timeout
        self.rules: Rules = target.rules
        self.limit_override = target.max_connections
        self.last_poll_partial = False
        self._dsn: str | None = None
        self._dsn_error: str | None = None
        try:
            self._dsn = libpq_uri(target.dsn)
        except DsnError as exc:  # refused at load; kept for a target built by hand
            self._dsn_error = f"invalid DSN: {exc}"
        self._password = target.password.get_secret_value() if target.password else None
        self._clock = clock
        self.backoff = backoff or Backoff(BACKOFF_BASE, BACKOFF_CAP)
        # connect, query, reconnect, query again: three steps must fit the runner's timeout
        self._step = target.timeout * 0.3
        self._retimed = False
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self._saturated = False
        self._failure = ""
        self._limit: float | None = None
        self._deadlocks: Counters | None = None
        self._log = get_logger(source=SOURCE, instance=self.instance)

    # --- the Collector contract ---------------------------------------------------------------

    async def collect(self) -> Sequence[Reading]:
        async with self._lock:
            self.last_poll_partial = False
            try:
                row = await self._fetch()
            except _SaturatedError:
                self.last_poll_partial = True
                return self._saturation()
            return self._readings(row)

    async def close(self) -> None:
        async with self._lock:
            await self._drop(None)

    def reconfigure(self, target: PostgresTarget) -> None:
        """New rules, interval and timeout; a changed timeout re-sizes the connect, query and
        server-side statement timeouts, the last on the live session at the next poll."""
        self.rules, self.interval = target.rules, target.interval
        if target.timeout != self.timeout:
            self.timeout, self._step = target.timeout, target.timeout * 0.3
            self._retimed = True

    # --- connection ---------------------------------------------------------------------------

    def _statement_timeout(self) -> str:
        """The server cancels first (a little before the client gives up), in milliseconds."""
        return str(max(1, int(self._step * 800)))

    async def _fetch(self) -> Any:
        if self._conn is not None and self._conn.is_closed():
            await self._drop("connection closed by the server")
        if self._conn is not None and self._retimed:
            try:
                await self._conn.execute(
                    "SELECT set_config('statement_timeout', $1, false)",
                    self._statement_timeout(),
                    timeout=self._step,
                )
                self._retimed = False
            except Exception as exc:
                await self._drop(_reason(exc))  # reconnect with the new timeouts instead
        if self._conn is not None:
            try:
                return await self._conn.fetchrow(QUERY, timeout=self._step)
            except Exception as exc:
                if not self._lost(exc):
                    raise SourceError(f"query failed: {_reason(exc)}") from None
                await self._drop(_reason(exc))
                # the server may well be there: reconnect at once, in this same poll
        conn = await self._connect()
        try:
            return await conn.fetchrow(QUERY, timeout=self._step)
        except Exception as exc:
            if self._lost(exc):
                await self._drop(_reason(exc))
            raise SourceError(f"query failed: {_reason(exc)}") from None

    def _lost(self, exc: BaseException) -> bool:
        """Whether the connection is gone (or no longer trustworthy), not just this query."""
        if self._conn is None or self._conn.is_closed():
            return True
        if isinstance(exc, TimeoutError):
            return True  # the server's own statement_timeout did not answer either
        state = _sqlstate(exc) or ""
        connection_errors = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)
        return isinstance(exc, connection_errors) or state.startswith(("08", "57P"))

    async def _connect(self) -> Any:
        if self._dsn_error:
            raise SourceError(self._dsn_error)
        wait = self._retry_at - self._clock()
        if wait > 0:
            if self._saturated:
                raise _SaturatedError
            raise SourceError(f"{self._failure}; next reconnect attempt in {wait:.0f}s")
        try:
            conn = await asyncpg.connect(
                self._dsn,
                password=self._password,
                timeout=self._step,
                command_timeout=self._step,
                server_settings={
                    "application_name": APPLICATION_NAME,
                    # the server cancels first, so a client timeout means a dead peer
                    "statement_timeout": self._statement_timeout(),
                },
            )
        except Exception as exc:
            self._failures += 1
            delay = self.backoff.delay(self._failures)
            self._retry_at = self._clock() + delay
            self._saturated = _sqlstate(exc) == TOO_MANY_CONNECTIONS
            self._failure = SATURATED_MESSAGE if self._saturated else _reason(exc)
            self._log.warning(
                "postgres_connect_failed",
                reason=self._failure,
                attempt=self._failures,
                retry_in_seconds=round(delay, 1),
            )
            if self._saturated:
                raise _SaturatedError from None
            raise SourceError(f"cannot connect: {self._failure}") from None
        if self._failures:
            self._log.info("postgres_reconnected", attempts=self._failures)
        self._conn, self._failures, self._retry_at, self._saturated = conn, 0, 0.0, False
        return conn

    async def _drop(self, reason: str | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if reason is not None:
            self._log.warning("postgres_connection_lost", reason=reason)
            conn.terminate()  # no goodbye to a dead peer; never two connections at once
            return
        try:
            await conn.close(timeout=self._step)
        except Exception:
            conn.terminate()

    # --- readings -----------------------------------------------------------------------------

    def _reading(
        self,
        check: str,
        value: float,
        unit: str,
        limit: float | None = None,
        labels: Mapping[str, str] | None = None,
        message: str | None = None,
    ) -> Reading:
        return Reading(SOURCE, self.instance, check, value, unit, limit, labels or {}, message)

    def _saturation(self) -> list[Reading]:
        """The pool is full: `connections` at the limit, on the key the normal reading uses."""
        limit = self.limit_override or self._limit
        value: float
        if limit is not None:
            value = limit
        else:
            # never connected, so the settings are unknown: full is at least the critical mark
            rule = self.rules.get("connections")
            critical = rule.critical if rule else None
            if critical is not None and not critical.percent:
                value = critical.number
            else:
                value = limit = 1.0
        return [
            self._reading(UP_CHECK, 1, "bool", message=SATURATED_MESSAGE),
            self._reading("connections", value, "connections", limit, message=SATURATED_MESSAGE),
        ]

    def _readings(self, row: Any) -> list[Reading]:
        usable = row["max_connections"] - row["superuser_reserved"] - row["reserved"]
        self._limit = float(max(1, usable))
        limit = float(self.limit_override) if self.limit_override else self._limit
        out = [
            self._reading(UP_CHECK, 1, "bool"),
            self._reading("connections", row["connections"], "connections", limit),
            self._reading("connections_waiting_on_locks", row["waiting"], "connections", limit),
        ]
        states = dict.fromkeys(STATES.values(), 0)
        for state, count in json.loads(row["by_state"]).items():
            name = STATES.get(state, "unknown")
            states[name] += count
        for name, count in states.items():
            labels = {"state": name}
            out.append(self._reading("connections_by_state", count, "connections", limit, labels))
        for label, column, check in (
            ("database", "by_database", "connections_by_database"),
            ("user", "by_user", "connections_by_user"),
        ):
            for name, count in _bounded(json.loads(row[column])).items():
                out.append(self._reading(check, count, "connections", limit, {label: name}))
        for check, column in (
            ("longest_query_seconds", "longest_query"),
            ("oldest_transaction_seconds", "oldest_transaction"),
            ("idle_in_transaction_seconds", "idle_in_transaction"),
        ):
            out.append(self._reading(check, max(0.0, row[column]), "seconds"))
        counters: Counters = {
            int(oid): (int(count), f"{reset}|{row['started']}")
            for oid, count, reset in json.loads(row["deadlocks"])
        }
        delta = deadlock_delta(self._deadlocks, counters)
        self._deadlocks = counters
        if delta is not None:
            out.append(self._reading("deadlocks", delta, "deadlocks"))
        for name, size in json.loads(row["sizes"]):
            labels = {"database": name}
            out.append(self._reading("database_size_bytes", size, "bytes", None, labels))
        return out


class _SaturatedError(Exception):
    """Internal: the server refused a connection with 53300 (full), now or within the backoff."""
