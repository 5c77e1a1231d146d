"""PostgreSQL source: the true use of the connection pool, from one persistent connection.

Why it is built this way (each point is a mistake other monitors make):
- Only client backends are connections; autovacuum, WAL writer and replication senders are not.
- The pool is `max_connections - superuser_reserved_connections - reserved_connections` (the last
  from PostgreSQL 16): what ordinary roles can really use, read with the counts on every poll.
- One connection per target, opened once and kept. A monitor that connects per poll goes blind
  exactly when the pool is full, or while DDL locks `pg_database` (a new session must read it).
  When a (re)connect is refused with SQLSTATE 53300, the server is up and full: that is reported
  as `connections` = limit on the very same alert key, never as down.
- The counts come from a statement that takes no lock (queries.CORE), so a migration holding a
  catalog lock cannot turn "the monitoring query waited" into "PostgreSQL down". The catalog reads
  come after it, one statement each under a short `lock_timeout`: one that fails leaves its
  readings out of a partial poll, and `monitoring_query_blocked` names the lock and its holder.
- Down (`up` 0) is only: cannot connect, or the connection lost and not re-opened in the poll.
  Any other error is the server answering: a partial poll with the reason in `up`'s message.
- asyncpg never reconnects by itself: after a lost connection poolwatch reconnects at once, then
  with capped exponential backoff and jitter, and never holds two connections to one target.
- The kept session cannot see that nobody else can log in (a hung postmaster, a changed
  password): a login probe beside it (`poolwatch.sources.login`) logs in afresh every
  `probe_interval`, for a moment, never awaited by a poll; its readings ride on every poll.

Time: connecting and each statement get 30 % of the collector's timeout, and a catalog read starts
only if it can end within 90 % of it, so a poll that loses its connection, reconnects and reads
again still fits the runner's timeout. The server cancels a slow statement first
(`statement_timeout`, a little shorter), so a client-side timeout means a dead peer: only then is
the connection dropped. The readings are listed in docs/sources/postgres.md ("Readings"); a
test checks that this module emits exactly those. What each read's rows mean is rows.py's (pure);
this module keeps the connection, the order of the reads and what a failed read costs.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg

from poolwatch.config.fields import parent_nodes
from poolwatch.config.rules import Rules
from poolwatch.core.backoff import Backoff
from poolwatch.core.dependencies import Endpoint, Node
from poolwatch.core.evaluate import concerning, rule_for
from poolwatch.core.limits import LimitNote
from poolwatch.core.model import UP_CHECK, Reading
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sources import SourceError
from poolwatch.sources.login import LoginProbe
from poolwatch.sources.postgres import login, queries, rows
from poolwatch.sources.postgres.dsn import libpq_uri, servers
from poolwatch.sources.postgres.holders import holders_context
from poolwatch.sources.postgres.queries import Detail
from poolwatch.sources.postgres.rows import Counters
from poolwatch.sources.postgres.settings import PostgresTarget
from poolwatch.sources.reconnect import ReconnectGate

SOURCE = rows.SOURCE
APPLICATION_NAME = "poolwatch"
TOO_MANY_CONNECTIONS = "53300"
SATURATED_MESSAGE = "server refused a new connection: too many clients (SQLSTATE 53300)"
NO_HOLDERS = "holders unknown: poolwatch lost its session and cannot open one to ask"
BLOCKED_CHECK = "monitoring_query_blocked"
EXHAUSTED_CHECK = "pool_exhausted"


BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
LOCK_TIMEOUT = 0.25
"""Seconds a catalog read may wait for a lock: long enough for ordinary catalog writes, short
enough that poolwatch never sits in a lock queue behind DDL, where it would stall later readers."""
LOCK_NOT_AVAILABLE = "55P03"


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def _reason(exc: BaseException) -> str:
    """The driver's words as one safe line, with the SQLSTATE that says which error it was."""
    state = _sqlstate(exc)
    text = one_line(exc)  # a timeout: "no answer in time"
    return f"{text} (SQLSTATE {state})" if state else text


@dataclass
class _Poll:
    """What one poll read, and why the rest was not read (one reason per part)."""

    readings: list[Reading] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    """The catalog reads that gave up on a lock."""
    out_of_time: bool = False
    deadlocks: Counters | None = None
    """The new deadlock baseline, kept only if the poll as a whole succeeds."""
    sessions: dict[str, Counters] | None = None
    """The new baseline of the session counters, likewise."""
    users: dict[int, str] = field(default_factory=dict)
    """Role names by oid, from the NAMES read (empty when it failed)."""
    exhausted: str | None = None
    """Why no slot is left for an ordinary role (the count reached the server's limit)."""


SIZES_EARLY = 0.1
"""The share of `interval` a size read may come early: more than a poll's jitter, so a read due
at 300.004 s does not slip to the poll after the one at 300.001 s."""


class PostgresCollector:
    """One target: one persistent asyncpg connection, a lock-free count, then the catalog reads."""

    source = SOURCE

    def __init__(
        self,
        target: PostgresTarget,
        *,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.instance = target.name
        self.interval = target.interval
        self.timeout = target.timeout
        self.rules: Rules = target.rules
        self.limit_override = target.max_connections
        self.depends_on: tuple[Node, ...] = parent_nodes(target.depends_on)
        where = servers(target.dsn, os.environ if environment is None else environment)
        self._endpoints = tuple(Endpoint((SOURCE, self.instance), h, p) for h, p in where)
        self._reading = functools.partial(rows.reading, self.instance)
        self.include_query_text = target.include_query_text
        self.size_interval = target.size_interval
        self.last_poll_partial = False
        self._dsn = libpq_uri(target.dsn)  # checked at load (`PostgresTarget`)
        self._password = target.password.get_secret_value() if target.password else None
        self._clock = clock
        # connect, query, reconnect, query again: three steps must fit the runner's timeout
        self._step = target.timeout * 0.3
        self._statement_timeout = self._step * 0.8
        self._lock_timeout = min(LOCK_TIMEOUT, self._step / 4)
        self._retimed = False
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self.limit_notes: list[LimitNote] = []
        """Configured limits the server's own undercuts (`max_connections` above it)."""
        self._deadlocks: Counters | None = None
        self._sessions: dict[str, Counters] | None = None
        self._sizes: list[Reading] = []
        """The last size read's readings, reported again until the next one."""
        self._sizes_at: float | None = None
        """When the last size read succeeded (`clock`); None: never, so the next poll reads."""
        self._log = get_logger(source=SOURCE, instance=self.instance)
        self.gate = ReconnectGate.connection(
            SOURCE, self._log, backoff or Backoff(BACKOFF_BASE, BACKOFF_CAP), clock
        )
        self.probe = LoginProbe(
            SOURCE,
            self.instance,
            lambda: login.attempt(self._dsn, self._password, self.timeout),
            interval=target.probe_interval,
            timeout=target.timeout,
            classify=login.failure_class,
            explain=login.explain,
            clock=clock,
            first_after=target.interval / 2,
        )

    # --- the Collector contract ---------------------------------------------------------------

    async def collect(self) -> Sequence[Reading]:
        async with self._lock:
            self.last_poll_partial = False
            try:
                poll = await self._poll()
            except _SaturatedError:
                self.last_poll_partial = True
                return [*self._saturation(), *self.probe.poll()]
            if poll.deadlocks is not None:
                self._deadlocks = poll.deadlocks
            if poll.sessions is not None:
                self._sessions = poll.sessions
            if poll.unread:
                self.last_poll_partial = True
                self._log.warning("postgres_partial_poll", unread=poll.unread)
            return [*poll.readings, *self.probe.poll()]

    async def close(self) -> None:
        await self.probe.close()
        async with self._lock:
            await self._drop(None)

    def reconfigure(self, target: PostgresTarget) -> None:
        """New rules, interval and timeout; a changed timeout re-sizes the connect, query,
        statement and lock timeouts, the last two on the live session at the next poll."""
        self.rules, self.interval = target.rules, target.interval
        self.depends_on = parent_nodes(target.depends_on)
        self.include_query_text = target.include_query_text
        self.size_interval = target.size_interval
        self.probe.reconfigure(target.probe_interval, target.timeout)
        if target.timeout != self.timeout:
            self.timeout, self._step = target.timeout, target.timeout * 0.3
            self._statement_timeout = self._step * 0.8
            self._lock_timeout = min(LOCK_TIMEOUT, self._step / 4)
            self._retimed = True

    # --- where it connects (`sources.Connects`) -------------------------------------------------

    def endpoints(self) -> Sequence[Endpoint]:
        """The DSN's hosts and ports, libpq's defaults and variables filled in."""
        return self._endpoints

    def backends(self) -> Sequence[Endpoint]:
        return ()

    # --- one poll -----------------------------------------------------------------------------

    async def _poll(self) -> _Poll:
        # a catalog read starts only if it can end by then (90 % of the runner's timeout)
        deadline = asyncio.get_running_loop().time() + 3 * self._step
        if self._conn is not None and self._conn.is_closed():
            await self._drop("connection closed by the server")
        if self._conn is not None and self._retimed:
            try:
                await self._conn.execute(
                    "SELECT set_config('statement_timeout', $1, false),"
                    " set_config('lock_timeout', $2, false)",
                    _milliseconds(self._statement_timeout),
                    _milliseconds(self._lock_timeout),
                    timeout=self._step,
                )
                self._retimed = False
            except Exception as exc:
                await self._drop(_reason(exc))  # reconnect with the new timeouts instead
        if self._conn is not None:
            try:
                return await self._read(self._conn, deadline)
            except _LostError as lost:
                await self._drop(lost.reason)
                # the server may well be there: reconnect at once, in this same poll
        conn = await self._connect()
        try:
            return await self._read(conn, deadline)
        except _LostError as lost:
            await self._drop(lost.reason)
            raise SourceError(f"query failed: {lost.reason}") from None

    async def _read(self, conn: Any, deadline: float) -> _Poll:
        """Everything one connection can tell in this poll; `_LostError` if it is gone."""
        poll = _Poll()
        try:
            core = await self._query(conn, queries.CORE)
        except _LostError:
            raise
        except Exception as exc:  # the server answered, with an error: up, nothing counted
            poll.unread.append(f"connection counts: {_reason(exc)}")
            return self._finish(poll)
        counted = rows.counts(self.instance, core, self.limit_override)
        self.limit_notes, poll.exhausted = counted.notes, counted.exhausted
        poll.readings.extend(counted.readings)

        names = await self._detail(
            conn, queries.NAMES, poll, deadline, list(counted.databases), list(counted.users)
        )
        if names is not None:
            named, poll.users = rows.by_name(self.instance, names, counted)
            poll.readings.extend(named)
        await self._holders(conn, poll, deadline)
        row = await self._detail(conn, queries.DEADLOCKS, poll, deadline)
        if row is not None:
            grown = rows.deadlocks(
                self.instance, row, core["started"], self._deadlocks, self._sessions
            )
            poll.readings.extend(grown.readings)
            poll.deadlocks, poll.sessions = grown.deadlocks, grown.sessions
        await self._sizes_read(conn, poll, deadline)

        if poll.blocked:
            whom = await self._blockers(conn, deadline)
            parts = ", ".join(poll.blocked)
            message = (
                f"monitoring queries gave up on a catalog lock after {self._lock_timeout:g}s"
                f" ({parts}): {whom}"
            )
            poll.readings.append(self._reading(BLOCKED_CHECK, 1, "bool", message=message))
        elif not poll.out_of_time:  # every catalog read got its answer: nothing blocked
            poll.readings.append(self._reading(BLOCKED_CHECK, 0, "bool"))
        return self._finish(poll)

    def _finish(self, poll: _Poll) -> _Poll:
        message = f"partial poll, not read: {'; '.join(poll.unread)}" if poll.unread else None
        connections = next((r for r in poll.readings if r.check == "connections"), None)
        exhausted = self._reading(EXHAUSTED_CHECK, 0, "bool")  # connected: a refusal is over
        if poll.exhausted is not None:
            # full while poolwatch is connected: the same alert a refused reconnect raises,
            # for as long as the pool stays full, with the holders the count read
            context = connections.context if connections is not None else None
            exhausted = replace(exhausted, value=1, message=poll.exhausted, context=context)
        poll.readings[:0] = [self._reading(UP_CHECK, 1, "bool", message=message), exhausted]
        return poll

    async def _query(self, conn: Any, sql: str, *args: Any) -> Any:
        try:
            return await conn.fetchrow(sql, *args, timeout=self._step)
        except Exception as exc:
            if self._lost(exc):
                raise _LostError(_reason(exc)) from None
            raise

    async def _detail(
        self, conn: Any, detail: Detail, poll: _Poll, deadline: float, *args: Any
    ) -> Any:
        """One catalog read, or None (and a reason in `poll`) when it failed alone."""
        if asyncio.get_running_loop().time() + self._statement_timeout > deadline:
            poll.out_of_time = True
            poll.unread.append(f"{detail.name}: no time left in this poll")
            return None
        try:
            return await self._query(conn, detail.sql, *args)
        except _LostError:
            raise
        except Exception as exc:
            if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
                poll.blocked.append(detail.name)
            poll.unread.append(f"{detail.name}: {_reason(exc)}")
            return None

    async def _holders(self, conn: Any, poll: _Poll, deadline: float) -> None:
        """Attach who holds the pool to `connections`, only while its rule is at or above warning
        (one extra statement, O(sessions)). A failure costs the context, never the count: the
        reading then says why in its message, and the poll is not partial."""
        index = next(i for i, r in enumerate(poll.readings) if r.check == "connections")
        reading = poll.readings[index]
        if poll.exhausted is None and not concerning(reading, rule_for(self.rules, reading)):
            return
        if asyncio.get_running_loop().time() + self._statement_timeout > deadline:
            why = "no time left in this poll"
        else:
            try:
                row = await self._query(conn, queries.HOLDERS.sql, self.include_query_text)
            except _LostError:
                raise
            except Exception as exc:
                why = _reason(exc)
            else:
                context = holders_context(row, poll.users, with_query=self.include_query_text)
                poll.readings[index] = replace(reading, context=context)
                return
        self._log.warning("postgres_holders_unread", reason=why)
        poll.readings[index] = replace(reading, message=f"holders not read: {why}")

    async def _blockers(self, conn: Any, deadline: float) -> str:
        """Who holds the lock a catalog read gave up on, read without a catalog."""
        if asyncio.get_running_loop().time() + self._statement_timeout > deadline:
            return "no time left in this poll to name the holder"
        try:
            rows = await conn.fetch(queries.BLOCKERS, timeout=self._step)
        except Exception as exc:
            if self._lost(exc):
                raise _LostError(_reason(exc)) from None
            return f"the holder could not be read: {_reason(exc)}"
        return queries.blockers_text(rows)

    # --- connection ---------------------------------------------------------------------------

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
        closed = self.gate.closed()
        if closed is not None:
            if self.gate.saturated:
                raise _SaturatedError
            raise SourceError(closed)
        started = self._clock()
        try:
            conn = await asyncpg.connect(
                self._dsn,
                password=self._password,
                timeout=self._step,
                command_timeout=self._step,
                server_settings={
                    "application_name": APPLICATION_NAME,
                    # the server cancels first, so a client timeout means a dead peer
                    "statement_timeout": _milliseconds(self._statement_timeout),
                    # never queue behind DDL: give up on a catalog lock, report who holds it
                    "lock_timeout": _milliseconds(self._lock_timeout),
                },
            )
        except Exception as exc:
            saturated = _sqlstate(exc) == TOO_MANY_CONNECTIONS
            self.gate.failed(SATURATED_MESSAGE if saturated else _reason(exc), saturated=saturated)
            if saturated:
                raise _SaturatedError from None
            raise SourceError(f"cannot connect: {self.gate.reason}") from None
        self.gate.succeeded()
        self._conn = conn
        self.probe.succeeded(self._clock() - started)  # a fresh login, as the probe's
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

    def _saturation(self) -> list[Reading]:
        """The server refused poolwatch's (re)connect for "too many clients": it is up, and
        full. No count is reported: the server gave none in this poll, and an old limit would
        be invented (after a restart with another `max_connections` it was wrong). The refusal
        is its own reading, which says why it names no holders; `connections` is absent, not
        resolved, until read again."""
        full = f"{SATURATED_MESSAGE}; {NO_HOLDERS}"
        return [
            self._reading(UP_CHECK, 1, "bool", message=SATURATED_MESSAGE),
            self._reading(EXHAUSTED_CHECK, 1, "bool", message=full),
        ]

    async def _sizes_read(self, conn: Any, poll: _Poll, deadline: float) -> None:
        """The database sizes, read every `size_interval` (the poll that comes within a tenth of
        `interval` of it takes it; every poll when it is not longer than `interval`), the last
        ones reported in between so they stay present and their alerts neither resolve nor
        flap. `pg_database_size` stats every file: with 20,000 tables it is most of what a poll
        costs the server. A read that fails is tried again at the next poll and reports nothing
        (a partial poll, which resolves nothing)."""
        now = self._clock()
        if self._sizes_at is not None and self.size_interval > self.interval:
            due = self._sizes_at + self.size_interval - self.interval * SIZES_EARLY
            if now < due:
                poll.readings += self._sizes
                return
        row = await self._detail(conn, queries.SIZES, poll, deadline)
        if row is not None:
            sized, unread = rows.sizes(self.instance, row)
            poll.readings.extend(sized)
            poll.unread.extend(unread)
            self._sizes, self._sizes_at = sized, now


class _SaturatedError(Exception):
    """Internal: the server refused a connection with 53300 (full), now or within the backoff."""


class _LostError(Exception):
    """Internal: the connection is gone mid-poll; `reason` is one safe line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _milliseconds(seconds: float) -> str:
    """A PostgreSQL timeout setting: whole milliseconds, at least 1 (0 would mean none)."""
    return str(max(1, round(seconds * 1000)))
