"""PgBouncer source: pools against the limits PgBouncer itself enforces, read from its admin
console over one persistent connection per target.

Why it is built this way:
- The admin console (`dbname=pgbouncer`) speaks only the simple query protocol: asyncpg sends
  every query with the extended protocol ("not supported by admin console"). psycopg 3's
  `AsyncClientCursor` sends a query without parameters as one simple Query message, so this
  source alone uses psycopg (imported only when a PgBouncer target is configured).
- The console is exempt from `max_client_conn`: the connection poolwatch holds, and a reconnect,
  keep working while PgBouncer refuses every other client. So PgBouncerDown means the console
  cannot be reached, never that PgBouncer is full.
- One connection, kept; a lost one is reopened at once in the same poll, then with the shared
  capped exponential backoff with jitter, never two at once.
- The console cannot tell whether clients get through; with a `probe_dsn` a login probe
  (`poolwatch.sources.login`, pgbouncer/login.py) does, through PgBouncer into a real database.

Time: connecting and the SHOW round trips each get 30 % of the timeout, so a poll that loses its
connection, reconnects and reads again still fits the runner's timeout. A timeout mid-read drops
the connection (a half-read answer must never be read as the next one). The readings are listed
in docs/sources/pgbouncer.md ("Readings"); show.py turns SHOW output into them.

Bounded: a plain `execute` lets libpq read a whole result into memory, however many rows a wrong
or hostile endpoint sends. Each SHOW is streamed instead (libpq's single-row mode, over the
simple protocol the console needs: `_Streamed`), and given up, with the connection closed, past
`SHOW_MAX_ROWS` rows or `SHOW_MAX_BYTES` of values. One row is still read whole by libpq before
it can be counted: its size is bounded by the read deadline only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any, cast

import psycopg

from poolwatch.config.fields import parent_nodes
from poolwatch.config.rules import Rules
from poolwatch.core.backoff import Backoff
from poolwatch.core.dependencies import Endpoint, Node
from poolwatch.core.model import Reading
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sources import SourceError
from poolwatch.sources.login import LoginProbe
from poolwatch.sources.pgbouncer import login
from poolwatch.sources.pgbouncer.settings import ADMIN_DATABASE, PgBouncerTarget
from poolwatch.sources.pgbouncer.show import (
    COMMANDS,
    Counters,
    Row,
    readings,
    servers,
    snapshot,
)
from poolwatch.sources.postgres.dsn import servers as dsn_servers
from poolwatch.sources.reconnect import ReconnectGate

SOURCE = "pgbouncer"
APPLICATION_NAME = "poolwatch"
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
SHOW_MAX_ROWS = 20_000
"""At most this many rows of one SHOW are read: a pool is one row of SHOW POOLS (a (database,
user) pair), and `max_client_conn` is rarely above 10,000."""
SHOW_MAX_BYTES = 16 * 1024 * 1024
"""... and at most this much text of values (a row of SHOW POOLS is about 150 bytes)."""

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


class _TooLargeError(SourceError):
    """A SHOW answered more than its cap: given up, the connection closed."""


class _Streamed(psycopg.AsyncClientCursor[tuple[Any, ...]]):
    """A client-side cursor whose `stream()` keeps the simple query protocol.

    psycopg streams over the extended protocol (`force_extended`), which the admin console
    refuses; libpq's single-row mode works as well after a simple Query, and a query without
    parameters needs nothing else.
    """

    def _execute_send(
        self, query: Any, *, force_extended: bool = False, binary: bool | None = None
    ) -> None:
        super()._execute_send(query, force_extended=False, binary=binary)


class PgBouncerCollector:
    """One PgBouncer: one admin console connection, the SHOW commands of `COMMANDS` per poll."""

    source = SOURCE

    def __init__(
        self,
        target: PgBouncerTarget,
        *,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.instance = target.name
        self.interval = target.interval
        self.timeout = target.timeout
        self.rules: Rules = target.rules
        self._dsn = str(target.dsn)
        self.depends_on: tuple[Node, ...] = parent_nodes(target.depends_on)
        where = dsn_servers(self._dsn, os.environ if environment is None else environment)
        self._endpoints = tuple(Endpoint((SOURCE, self.instance), h, p) for h, p in where)
        self._backends: tuple[Endpoint, ...] = ()
        """Its databases' servers as of the last poll that read them (kept while it is down)."""
        self._password = target.password.get_secret_value() if target.password else None
        self._clock = clock
        self._step = target.timeout * 0.3
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._counters: Counters | None = None
        self._log = get_logger(source=SOURCE, instance=self.instance)
        self.gate = ReconnectGate.connection(
            SOURCE, self._log, backoff or Backoff(BACKOFF_BASE, BACKOFF_CAP), clock
        )
        probe_dsn = str(target.probe_dsn) if target.probe_dsn else None  # checked at load
        self.probe = LoginProbe(
            SOURCE,
            self.instance,
            lambda: login.attempt(probe_dsn or "", self.timeout),
            # without a probe_dsn there is nothing to log in to: the console is exempt
            interval=target.probe_interval if probe_dsn else None,
            timeout=target.timeout,
            classify=login.failure_class,
            explain=login.explain,
            clock=clock,
            first_after=target.interval / 2,
        )
        self._probing = probe_dsn is not None

    # --- the Collector contract ---------------------------------------------------------------

    async def collect(self) -> Sequence[Reading]:
        async with self._lock:
            tables = await self._fetch()
            shown = snapshot(tables)
            out, self._counters = readings(self.instance, shown, self._counters)
            node = (SOURCE, self.instance)
            self._backends = tuple(Endpoint(node, h, p) for h, p in servers(shown))
            return [*out, *self.probe.poll()]

    async def close(self) -> None:
        await self.probe.close()
        async with self._lock:
            await self._drop(None)

    def reconfigure(self, target: PgBouncerTarget) -> None:
        """New rules, interval and timeout; every connect and read takes its deadline from
        the timeout when it starts, so a changed one applies from the next poll."""
        self.rules, self.interval = target.rules, target.interval
        self.timeout, self._step = target.timeout, target.timeout * 0.3
        self.probe.reconfigure(target.probe_interval if self._probing else None, target.timeout)
        self.depends_on = parent_nodes(target.depends_on)

    # --- where it connects (`sources.Connects`) ---------------------------------------------

    def endpoints(self) -> Sequence[Endpoint]:
        """The DSN's hosts and ports, libpq's defaults and variables filled in."""
        return self._endpoints

    def backends(self) -> Sequence[Endpoint]:
        """Where its databases connect, from the last SHOW DATABASES (none before one)."""
        return self._backends

    # --- the admin console ----------------------------------------------------------------

    async def _fetch(self) -> dict[str, list[Row]]:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            await self._drop("connection closed by PgBouncer")
        if self._conn is not None:
            try:
                return await self._show(self._conn)
            except _TooLargeError:
                await self._drop(None)
                raise  # not lost, refused: asking again at once would read as much again
            except Exception as exc:
                if not self._lost(exc):
                    raise SourceError(f"SHOW failed: {_reason(exc)}") from None
                await self._drop(_reason(exc))
                # PgBouncer may well be there (restarted, or it closed us): reconnect now
        conn = await self._connect()
        try:
            return await self._show(conn)
        except _TooLargeError:
            await self._drop(None)
            raise
        except Exception as exc:
            if self._lost(exc):
                await self._drop(_reason(exc))
            raise SourceError(f"SHOW failed: {_reason(exc)}") from None

    async def _show(self, conn: Connection) -> dict[str, list[Row]]:
        """Every command of `COMMANDS`, rows keyed by column name (never by position)."""
        tables: dict[str, list[Row]] = {}
        async with asyncio.timeout(self._step), _Streamed(conn) as cursor:
            for key, command in COMMANDS.items():
                tables[key] = await self._rows(conn, cursor, command)
        return tables

    @staticmethod
    async def _rows(conn: Connection, cursor: _Streamed, command: str) -> list[Row]:
        """One SHOW's rows, read one at a time under the caps."""
        rows: list[Row] = []
        names: list[str] | None = None
        size = 0
        # constant text, no parameters: the simple protocol
        streamed = cast(AsyncGenerator[tuple[Any, ...], None], cursor.stream(command))
        async with contextlib.aclosing(streamed) as stream:
            async for row in stream:
                if names is None:  # known once the first row is in
                    names = [column.name for column in cursor.description or ()]
                size += sum(len(str(value)) for value in row if value is not None)
                if len(rows) >= SHOW_MAX_ROWS or size > SHOW_MAX_BYTES:
                    # closed first, so that the stream's clean-up does not read the rest
                    await conn.close()
                    raise _TooLargeError(
                        f"{command} answered more than poolwatch's cap of {SHOW_MAX_ROWS} rows "
                        f"or {SHOW_MAX_BYTES // (1024 * 1024)} MiB: not read further, "
                        "connection closed"
                    )
                rows.append(dict(zip(names, row, strict=True)))
        return rows

    def _lost(self, exc: BaseException) -> bool:
        """Whether the connection is gone or no longer trustworthy, not just one command."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            return True
        return isinstance(exc, TimeoutError | psycopg.OperationalError | OSError)

    async def _connect(self) -> Connection:
        closed = self.gate.closed()
        if closed is not None:
            raise SourceError(closed)
        options: dict[str, Any] = {"dbname": ADMIN_DATABASE, "application_name": APPLICATION_NAME}
        if self._password is not None:
            options["password"] = self._password
        try:
            async with asyncio.timeout(self._step):
                conn = await psycopg.AsyncConnection.connect(
                    self._dsn,
                    autocommit=True,
                    cursor_factory=psycopg.AsyncClientCursor,
                    **options,
                )
        except Exception as exc:
            self.gate.failed(_reason(exc))
            raise SourceError(f"cannot connect to the admin console: {self.gate.reason}") from None
        self.gate.succeeded()
        self._conn = conn
        return conn

    async def _drop(self, reason: str | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if reason is not None:
            self._log.warning("pgbouncer_connection_lost", reason=reason)
        try:
            async with asyncio.timeout(self._step):
                await conn.close()
        except Exception as exc:  # closing cannot fail a poll; the socket goes with the object
            self._log.debug("pgbouncer_close_failed", reason=_reason(exc))


def _reason(exc: BaseException) -> str:
    """The driver's words as one safe line (psycopg's run over several lines)."""
    return one_line(exc)
