"""The connection pool against a real PostgreSQL 15: true counts, thresholds, saturation, down.

The collector and the Evaluator are driven directly, with `now` and the backoff clock injected, so
every step is deterministic: a poll is one call, an interval is a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from tests.postgres.pgserver import (
    Load,
    PgServer,
    client_backends,
    poolwatch_sessions,
    wait_for_count,
)
from tests.recording import RecordingSink

from poolwatch.config import load as config
from poolwatch.config.rules import Rule
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Event, Reading, Severity
from poolwatch.runtime.pipeline import owner_of
from poolwatch.runtime.runner import Runner
from poolwatch.sources.postgres.collector import (
    NO_HOLDERS,
    SATURATED_MESSAGE,
    PostgresCollector,
)

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
USABLE = 197  # max_connections 200 - superuser_reserved_connections 3 (PostgreSQL 15)


class FakeClock:
    """The collector's monotonic clock, for the reconnect backoff."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_target(dsn: str, env: Mapping[str, str] | None = None) -> config.PostgresTarget:
    loaded = config.load(env={"POOLWATCH_POSTGRES_DSN": dsn, **(env or {})})
    return loaded.postgres.targets[0]


class Harness:
    """A collector, an Evaluator and a poll counter: what the runner does, one step at a time."""

    def __init__(self, collector: PostgresCollector, validate_event: Any) -> None:
        self.collector = collector
        self.evaluator = Evaluator("test-host")
        self.sink = RecordingSink()  # validates every event against the schema
        self.runner = Runner([collector], [self.sink], self.evaluator, clock=self.now)
        self.validate = validate_event
        self.polls = 0
        self.readings: list[Reading] = []

    def now(self) -> datetime:
        return START + timedelta(seconds=self.collector.interval * self.polls)

    async def poll(self) -> list[Event]:
        self.readings = await self.runner.pipeline.poll(self.collector)
        now = self.now()
        self.polls += 1
        events = self.evaluator.observe(
            owner_of(self.collector), self.readings, self.collector.rules, now
        )
        for event in events:
            self.validate(event.to_dict())
        return events

    def value(self, check: str, **labels: str) -> Reading:
        found = [r for r in self.readings if r.check == check and dict(r.labels) == labels]
        assert len(found) == 1, (check, labels, self.readings)
        return found[0]


def alerts(events: Sequence[Event]) -> list[tuple[str, str, str]]:
    return [(e.alert, e.status, e.severity) for e in events]


async def test_pool_high_critical_resolved_with_true_counts(
    pg: PgServer, load: Load, validate_event: Any
) -> None:
    h = Harness(PostgresCollector(make_target(pg.dsn())), validate_event)
    admin = await pg.admin()
    try:
        assert await h.poll() == []
        assert h.value("connections").value == await client_backends(admin)
        assert h.value("connections").limit == USABLE

        await load.open(155 - await client_backends(admin))
        measured = await client_backends(admin)
        events = await h.poll()
        assert measured == 155
        assert h.value("connections").value == measured
        assert alerts(events) == [("PostgreSQLConnectionPoolHigh", "firing", "warning")]
        assert events[0].value == 155
        assert events[0].limit == USABLE
        assert await h.poll() == []  # steady state: no flood
        assert await poolwatch_sessions(admin) == 1

        await load.open(185 - await client_backends(admin))
        measured = await client_backends(admin)
        events = await h.poll()
        assert h.value("connections").value == measured == 185
        assert alerts(events) == [("PostgreSQLConnectionPoolCritical", "firing", "critical")]
        assert await poolwatch_sessions(admin) == 1

        await load.close(len(load.conns) - 3)
        await wait_for_count(admin, 5)  # admin, poolwatch, 3 loads
        first = await h.poll()
        second = await h.poll()
        assert h.value("connections").value == await client_backends(admin) == 5
        assert first == []  # clear_for: 2 polls
        assert alerts(second) == [("PostgreSQLConnectionPoolCritical", "resolved", "critical")]
        assert h.value("connections_by_user", user="pw_load").value == 3
        assert await poolwatch_sessions(admin) == 1
    finally:
        await h.collector.close()
        await admin.close()


async def test_full_pool_is_saturation_not_down(
    pg: PgServer, load: Load, validate_event: Any
) -> None:
    target = make_target(pg.dsn())
    # one more rule, to prove that a saturated poll resolves nothing "gone"
    rules = {**target.rules, "connections_by_user": Rule(alert="LoadUserBusy", warning=100)}
    clock = FakeClock()
    collector = PostgresCollector(target.model_copy(update={"rules": rules}), clock=clock)
    h = Harness(collector, validate_event)
    admin = await pg.admin()
    try:
        await h.poll()
        await load.fill()  # every ordinary slot taken: pw_load now gets 53300
        measured = await client_backends(admin)
        events = await h.poll()
        assert h.value("connections").value == measured
        assert measured >= USABLE
        assert sorted(alerts(events)) == [
            ("LoadUserBusy", "firing", "warning"),
            ("PostgreSQLConnectionPoolCritical", "firing", "critical"),
            # full while poolwatch is connected: the exhausted alert, whatever the thresholds
            ("PostgreSQLConnectionPoolExhausted", "firing", "critical"),
        ]
        assert h.value("pool_exhausted").context is not None  # the holders, read while full

        # kill poolwatch's own connection while full, and take the slot it freed
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'poolwatch'"
        )
        await wait_for_count(admin, measured - 1)
        await load.open_one()
        with pytest.raises(asyncpg.TooManyConnectionsError):
            await load.open_one()

        sent: list[Event] = []
        for _ in range(3):  # the failed reconnect, then polls inside the backoff
            readings = await h.runner.pipeline.poll(collector)
            checks = {r.check: r for r in readings}
            # the refusal is its own reading; no count the server did not give; the login
            # probe's last result (here poolwatch's own first login) rides along
            assert set(checks) == {"up", "pool_exhausted", "login_ok", "login_seconds"}
            assert checks["up"].value == 1
            assert checks["pool_exhausted"].value == 1
            assert checks["pool_exhausted"].message == f"{SATURATED_MESSAGE}; {NO_HOLDERS}"
            assert checks["pool_exhausted"].context is None  # no session to read holders with
            assert collector.last_poll_partial
            await h.runner.pipeline.handle(collector, readings)
            sent += h.sink.take()
            h.polls += 1
            clock.now += 0.2  # the later polls fall inside the reconnect backoff
        # no Down, no resolve of LoadUserBusy, Critical or Exhausted (absent is not resolved)
        assert alerts(sent) == []
        firing = {(k.check, s) for k, s, _ in h.evaluator.firing()}
        assert ("connections", Severity.CRITICAL) in firing
        assert ("connections_by_user", Severity.WARNING) in firing
        assert ("pool_exhausted", Severity.CRITICAL) in firing
        assert await poolwatch_sessions(admin) == 0

        # a fresh collector that never saw the server: refused, never down, no invented count
        fresh = PostgresCollector(make_target(pg.dsn(), {"POSTGRES_CONN_MAX": "190"}))
        try:
            readings = list(await fresh.collect())
        finally:
            await fresh.close()  # and the login probe it started
        assert [(r.check, r.value) for r in readings] == [("up", 1), ("pool_exhausted", 1)]

        # the pool drains: after the backoff, poolwatch is back with one connection
        await load.close(len(load.conns) - 2)
        await wait_for_count(admin, 3)
        clock.now += 60
        events = await h.poll()
        assert h.value("connections").value == await client_backends(admin) == 4
        events += await h.poll()
        assert ("PostgreSQLConnectionPoolCritical", "resolved", "critical") in alerts(events)
        assert ("PostgreSQLConnectionPoolExhausted", "resolved", "critical") in alerts(events)
        assert await poolwatch_sessions(admin) == 1
    finally:
        await collector.close()
        await admin.close()


async def test_down_within_two_intervals_and_back(
    pg_private: PgServer, validate_event: Any
) -> None:
    clock = FakeClock()
    h = Harness(PostgresCollector(make_target(pg_private.dsn()), clock=clock), validate_event)
    try:
        assert await h.poll() == []
        pg_private.stop("fast")
        fired: list[Event] = []
        for _ in range(2):
            fired += await h.poll()
            clock.now += h.collector.interval
        assert alerts(fired) == [("PostgreSQLDown", "firing", "critical")]
        assert h.value("up").value == 0
        assert "cannot connect" in (h.value("up").message or "")

        pg_private.start()
        clock.now += 60  # past any backoff
        resolved: list[Event] = []
        for _ in range(3):
            resolved += await h.poll()
            clock.now += h.collector.interval
        assert alerts(resolved) == [("PostgreSQLDown", "resolved", "critical")]
        admin = await pg_private.admin()
        try:
            assert await poolwatch_sessions(admin) == 1
        finally:
            await admin.close()
    finally:
        await h.collector.close()


async def test_a_reloaded_timeout_reaches_the_live_session(pg: PgServer) -> None:
    """reconfigure(): a new timeout re-sizes the server-side statement_timeout of the same
    session (no reconnect), so the server still cancels before the client gives up."""
    target = config.load(env={"POOLWATCH_POSTGRES_DSN": pg.dsn()}).postgres.targets[0]
    collector = PostgresCollector(target)
    try:
        await collector.collect()
        conn = collector._conn
        assert await conn.fetchval("SHOW statement_timeout") == "1200ms"  # 5 s x 0.3 x 0.8
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        collector.reconfigure(target.model_copy(update={"timeout": 10.0}))
        await collector.collect()
        assert collector._conn is conn
        assert await conn.fetchval("SHOW statement_timeout") == "2400ms"
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid
    finally:
        await collector.close()
