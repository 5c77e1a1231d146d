"""Ordinary trouble is not "PostgreSQL down", against a real PostgreSQL 15: DDL holding a catalog
lock, a database dropped under the size query, a monitor role without pg_monitor.

Polls go through the Runner (`poll` then `handle`), so what is proved is what reaches the sinks:
a partial poll resolves nothing it did not read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.eventually import eventually
from tests.postgres.pgserver import Load, PgServer
from tests.recording import RecordingSink

from poolwatch.config import load as config
from poolwatch.config.rules import Rule
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Event, Reading
from poolwatch.runtime.runner import Runner
from poolwatch.sources.postgres.collector import BLOCKED_CHECK, PostgresCollector

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CATALOG_READS = ("connections_by_database", "connections_by_user", "deadlocks")

# What poolwatch counts, asked the same lock-free way (pg_stat_activity would wait on the lock)
CLIENTS = "SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE backend_type = 'client backend'"
POOLWATCH_PID = "SELECT pid FROM pg_stat_get_activity(NULL) WHERE application_name = 'poolwatch'"


class Polls:
    """A collector driven by a Runner one poll at a time; the events it would send are kept."""

    def __init__(self, collector: PostgresCollector) -> None:
        self.collector = collector
        self.sink = RecordingSink()  # validates every event against the schema
        self.runner = Runner([collector], [self.sink], Evaluator("test-host"), clock=self.now)
        self.count = 0
        self.readings: list[Reading] = []

    @property
    def events(self) -> list[Event]:
        return self.sink.events

    def now(self) -> datetime:
        return START + timedelta(seconds=self.collector.interval * self.count)

    async def poll(self) -> list[Event]:
        """One poll; returns the events it caused."""
        before = len(self.events)
        self.readings = await self.runner.pipeline.poll(self.collector)
        await self.runner.pipeline.handle(self.collector, self.readings)
        self.count += 1
        return self.events[before:]

    def value(self, check: str, **labels: str) -> Reading:
        found = [r for r in self.readings if r.check == check and dict(r.labels) == labels]
        assert len(found) == 1, (check, labels, self.readings)
        return found[0]

    def checks(self) -> set[str]:
        return {r.check for r in self.readings}


def alerts(events: Sequence[Event]) -> list[tuple[str, str]]:
    return [(e.alert, e.status) for e in events]


def make_collector(dsn: str, **rules: Rule) -> PostgresCollector:
    target = config.load(env={"POOLWATCH_POSTGRES_DSN": dsn}).postgres.targets[0]
    merged = {**target.rules, **rules}
    # every catalog read on every poll: the size read too, not only every `size_interval`
    every_poll = {"rules": merged, "size_interval": target.interval}
    return PostgresCollector(target.model_copy(update=every_poll))


async def test_catalog_lock_is_monitoring_blocked_not_down(pg: PgServer, load: Load) -> None:
    """`LOCK pg_database` (a migration's DDL) stalls every reader of the catalog, not the server."""
    # a rule on a catalog read, firing before the lock: a partial poll must not resolve it
    polls = Polls(
        make_collector(pg.dsn(), connections_by_user=Rule(alert="LoadUserBusy", warning=4))
    )
    await load.open(4)  # the superuser has 3: admin, holder, reader
    admin = await pg.admin()
    holder = await pg.admin()
    reader = await pg.admin()
    try:
        assert alerts(await polls.poll()) == [("LoadUserBusy", "firing")]
        assert polls.value(BLOCKED_CHECK).value == 0
        poolwatch_pid = await admin.fetchval(POOLWATCH_PID)
        holder_pid = await holder.fetchval("SELECT pg_backend_pid()")

        await holder.execute("BEGIN; LOCK pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE")
        # another session that needs the catalog now waits behind the holder
        waiting = asyncio.create_task(reader.fetch("SELECT datname FROM pg_database"))
        reader_pid = await waiting_pid(admin)

        during: list[Event] = []
        for _ in range(3):
            during += await polls.poll()
            assert polls.value("up").value == 1
            assert "partial poll" in (polls.value("up").message or "")
            assert polls.value("connections").value == await admin.fetchval(CLIENTS) == 8
            assert polls.value("connections_by_state", state="idle").value >= 4
            assert polls.collector.last_poll_partial
            assert not polls.checks() & {*CATALOG_READS, "database_size_bytes"}
            blocked = polls.value(BLOCKED_CHECK)
            assert blocked.value == 1
            assert f"pid {holder_pid} holds AccessExclusiveLock on pg_database" in (
                blocked.message or ""
            )
            # poolwatch gave up its place in the lock queue: it holds and awaits no lock, is
            # in no transaction, and the waiting reader is blocked by the holder alone
            assert (
                await admin.fetchval("SELECT count(*) FROM pg_locks WHERE pid = $1", poolwatch_pid)
                == 0
            )
            assert (
                await admin.fetchval("SELECT state FROM pg_stat_get_activity($1)", poolwatch_pid)
                == "idle"
            )
            assert await admin.fetchval("SELECT pg_blocking_pids($1)", reader_pid) == [holder_pid]
        assert alerts(during) == [("PostgreSQLMonitoringBlocked", "firing")]
        assert during[0].severity == "warning"
        assert str(holder_pid) in during[0].message

        await holder.execute("COMMIT")
        assert len(await waiting) >= 1
        after: list[Event] = []
        for _ in range(2):  # clear_for: 2 polls
            after += await polls.poll()
        assert alerts(after) == [("PostgreSQLMonitoringBlocked", "resolved")]
        assert not polls.collector.last_poll_partial
        assert polls.value("up").message is None
        assert polls.value("connections_by_user", user="pw_load").value == 4
        assert ("PostgreSQLDown", "firing") not in alerts(polls.events)
        assert ("LoadUserBusy", "resolved") not in alerts(polls.events)
    finally:
        await holder.close()  # rolls back, if the test failed under the lock
        await reader.close()
        await admin.close()
        await polls.collector.close()


async def waiting_pid(admin: Any) -> int:
    """The pid of the one session waiting for a relation lock, once it waits (bounded)."""
    query = "SELECT pid FROM pg_locks WHERE NOT granted AND locktype = 'relation'"
    pid = await eventually(
        lambda: admin.fetchval(query), "the reader queued for pg_database", 20, 0.05
    )
    return int(pid)


async def test_ddl_waiting_in_the_queue_is_named_too(pg: PgServer) -> None:
    """The classic stall: a migration queues for its lock behind a long reader, and every later
    reader queues behind the migration. poolwatch names the migration and leaves the queue."""
    polls = Polls(make_collector(pg.dsn()))
    admin = await pg.admin()
    long_reader = await pg.admin()
    migration = await pg.admin()
    ddl: asyncio.Task[Any] | None = None
    try:
        await polls.poll()
        migration_pid = await migration.fetchval("SELECT pg_backend_pid()")
        await long_reader.execute("BEGIN; SELECT count(*) FROM pg_database")
        ddl = asyncio.create_task(
            migration.execute("BEGIN; LOCK pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE")
        )
        assert await waiting_pid(admin) == migration_pid

        events = await polls.poll()
        assert alerts(events) == [("PostgreSQLMonitoringBlocked", "firing")]
        assert polls.value("up").value == 1
        assert f"pid {migration_pid} waits for AccessExclusiveLock on pg_database" in (
            polls.value(BLOCKED_CHECK).message or ""
        )
        await long_reader.execute("COMMIT")
        await ddl  # poolwatch is not in its way
        await migration.execute("COMMIT")
    finally:
        await long_reader.close()
        await migration.close()
        if ddl is not None:
            await asyncio.gather(ddl, return_exceptions=True)
        await admin.close()
        await polls.collector.close()


async def test_a_database_being_dropped_is_a_partial_poll(pg_private: PgServer) -> None:
    """A real DROP DATABASE, held between removing its files and ending: its row is still
    visible and its size reads NULL. It waits there for a synchronous standby that never comes
    (`synchronous_standby_names` names none that exists), until the test cancels the wait."""
    polls = Polls(
        make_collector(pg_private.dsn(), database_size_bytes=Rule(alert="AnyData", warning=1))
    )
    admin = await pg_private.admin()
    dropper = await pg_private.admin()
    drop: asyncio.Task[Any] | None = None
    try:
        await admin.execute("CREATE DATABASE doomed")
        assert sorted(alerts(await polls.poll())) == [("AnyData", "firing")] * 2
        await admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        await admin.execute("SELECT pg_reload_conf()")
        await dropper.execute("SET synchronous_commit = on")
        dropper_pid = await dropper.fetchval("SELECT pg_backend_pid()")
        drop = asyncio.create_task(dropper.execute("DROP DATABASE doomed"))
        await wait_for(
            admin, "SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE pid = $1", dropper_pid
        )
        assert await admin.fetchval(
            "SELECT pg_database_size(oid) IS NULL FROM pg_database WHERE datname = 'doomed'"
        )

        events = await polls.poll()
        assert events == []  # no Down, and doomed's alert is neither resolved nor re-fired
        assert polls.value("up").value == 1
        assert "size of database 'doomed'" in (polls.value("up").message or "")
        assert polls.collector.last_poll_partial
        assert polls.value("database_size_bytes", database="postgres").value > 0
        assert [r for r in polls.readings if r.labels.get("database") == "doomed"] == []
        assert polls.value(BLOCKED_CHECK).value == 0

        await admin.execute("SELECT pg_cancel_backend($1)", dropper_pid)
        await drop  # committed already: the cancel only ends the wait, with a warning
        await admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
        await admin.execute("SELECT pg_reload_conf()")
        events = []
        for _ in range(2):  # gone for good: a complete poll resolves it
            events += await polls.poll()
        assert alerts(events) == [("AnyData", "resolved")]
        assert events[0].labels == {"database": "doomed"}
    finally:
        await admin.close()
        await dropper.close()
        if drop is not None:
            await asyncio.gather(drop, return_exceptions=True)
        await polls.collector.close()


async def wait_for(admin: Any, query: str, *args: Any) -> None:
    """Until `query` returns true (bounded): the server reports a wait a moment after it begins."""
    await eventually(lambda: admin.fetchval(query, *args), f"true: {query}", 20, 0.05)


async def test_role_without_pg_monitor_counts_hidden_sessions_as_unknown(
    pg: PgServer, load: Load
) -> None:
    """Without pg_monitor, other roles' rows read NULL backend_type and state: they are still
    client connections (they show a database and a role, which background processes lack)."""
    admin = await pg.admin()
    await admin.execute("CREATE ROLE pw_plain LOGIN PASSWORD 'plain-pw'")
    polls = Polls(make_collector(pg.dsn("pw_plain", "plain-pw")))
    try:
        await load.open(3)
        await polls.poll()
        hidden = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_get_activity(NULL)"
            " WHERE backend_type = 'client backend' AND usesysid <> 'pw_plain'::regrole"
        )
        assert hidden == 4  # 3 loads and the admin
        assert polls.value("connections").value == await admin.fetchval(CLIENTS) == 5
        assert polls.value("connections_by_state", state="unknown").value == hidden
        assert polls.value("connections_by_state", state="active").value == 1  # its own poll
        assert polls.value("connections_by_user", user="pw_load").value == 3
        assert polls.value("connections_by_database", database="postgres").value == 5
        assert not polls.collector.last_poll_partial
    finally:
        await polls.collector.close()
        await load.close()
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_get_activity(NULL)"
            " WHERE usesysid = 'pw_plain'::regrole"
        )
        await admin.execute("DROP ROLE pw_plain")
        await admin.close()
