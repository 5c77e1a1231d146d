"""The PgBouncer source against a real PgBouncer 1.18 (transaction pooling, default_pool_size 2,
max_client_conn 30) in front of a real PostgreSQL 15: queues, long waits, a full PgBouncer,
PgBouncer stopped and started, `--once` and `/metrics`.

The collector and the Evaluator are driven directly, with `now` and the backoff clock injected:
a poll is one call, an interval is a number. Waiting for PgBouncer to reach a state is polling
with a bound, never a timed assertion.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tests.daemon import BASE_ENV
from tests.eventually import eventually
from tests.pgbouncer_source.bouncer import MAX_CLIENT_CONN, POOL_SIZE, Bouncer, pgbench
from tests.readme import documented_checks

from poolwatch.config import load as config
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Event, Reading
from poolwatch.runtime.metrics import registry_for
from poolwatch.runtime.pipeline import owner_of
from poolwatch.runtime.runner import Runner
from poolwatch.sources.pgbouncer.collector import PgBouncerCollector
from poolwatch.sources.pgbouncer.readings import CHECKS
from poolwatch.sources.pgbouncer.settings import PgBouncerTarget

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POOL = {"database": "postgres", "user": "pw_load"}


class FakeClock:
    """The collector's monotonic clock, for the reconnect backoff."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_target(dsn: str, **env: str) -> PgBouncerTarget:
    return config.load(env={"POOLWATCH_PGBOUNCER_DSN": dsn, **env}).pgbouncer.targets[0]


class Harness:
    """A collector, an Evaluator and a poll counter: what the runner does, one step at a time."""

    def __init__(self, collector: PgBouncerCollector, validate_event: Any) -> None:
        self.collector = collector
        self.evaluator = Evaluator("test-host")
        self.runner = Runner([collector], [], self.evaluator, clock=self.now)
        self.validate = validate_event
        self.polls = 0
        self.readings: list[Reading] = []
        self.events: list[Event] = []

    def now(self) -> datetime:
        return START + timedelta(seconds=self.collector.interval * self.polls)

    async def poll(self) -> list[Event]:
        self.readings = await self.runner.pipeline.poll(self.collector)
        now = self.now()
        self.polls += 1
        owner = owner_of(self.collector)
        events = self.evaluator.observe(owner, self.readings, self.collector.rules, now)
        if not any(r.check == "up" and r.value < 1 for r in self.readings):
            events += self.evaluator.sweep(owner, (r.key for r in self.readings), now)
        for event in events:
            self.validate(event.to_dict())
        self.events += events
        return events

    async def poll_until(self, done: Callable[[], bool], deadline: float = 30.0) -> None:
        """Poll until `done()` holds after a poll; PgBouncer changes state on its own time."""

        async def polled() -> bool:
            await self.poll()
            return done()

        await eventually(polled, lambda: f"reached; last readings: {self.readings}", deadline, 0.05)

    def value(self, check: str, **labels: str) -> float:
        found = [r.value for r in self.readings if r.check == check and dict(r.labels) == labels]
        assert len(found) == 1, (check, labels, self.readings)
        return found[0]

    def fired(self, alert: str) -> list[Event]:
        return [e for e in self.events if e.alert == alert and e.status == "firing"]

    def resolved(self, alert: str) -> list[Event]:
        return [e for e in self.events if e.alert == alert and e.status == "resolved"]


@pytest.fixture
async def harness(bouncer: Bouncer, validate_event: Any) -> AsyncIterator[Harness]:
    collector = PgBouncerCollector(make_target(bouncer.admin_dsn()), clock=FakeClock())
    try:
        yield Harness(collector, validate_event)
    finally:
        await collector.close()


async def client(bouncer: Bouncer, *, autocommit: bool = True) -> psycopg.AsyncConnection[Any]:
    """An ordinary client through PgBouncer (no prepared statements: transaction pooling)."""
    return await psycopg.AsyncConnection.connect(
        bouncer.client_dsn(), autocommit=autocommit, prepare_threshold=None, connect_timeout=10
    )


async def fill(bouncer: Bouncer, clients: list[psycopg.AsyncConnection[Any]]) -> str:
    """Open clients (into `clients`, for the caller to close) until PgBouncer refuses one;
    what it said."""
    for _ in range(MAX_CLIENT_CONN + 5):
        try:
            clients.append(await client(bouncer))
        except psycopg.OperationalError as exc:
            return str(exc)
    return ""


async def test_emitted_checks_are_the_documented_ones(harness: Harness, bouncer: Bouncer) -> None:
    conn = await client(bouncer)
    try:
        await conn.execute("SELECT 1")  # a pool and its stats exist
        await harness.poll()
        await conn.execute("SELECT 1")
        await harness.poll()  # wait_per_transaction_seconds is a delta: from the second poll
    finally:
        await conn.close()
    assert documented_checks("docs/sources/pgbouncer.md") == list(CHECKS)
    # the login probe's readings need a probe_dsn (test_pgbouncer_login.py)
    assert {r.check for r in harness.readings} == set(CHECKS) - {"login_ok", "login_seconds"}
    assert harness.value("up") == 1
    assert harness.value("server_connections", **POOL) >= 1
    limits = {r.check: r.limit for r in harness.readings if r.labels == POOL}
    assert limits["server_connections"] == POOL_SIZE
    assert limits["max_wait_seconds"] == 120  # query_wait_timeout
    clients = next(r for r in harness.readings if r.check == "client_connections")
    assert clients.limit == MAX_CLIENT_CONN
    assert clients.value >= 2  # poolwatch's admin connection and the client


async def test_pool_saturated_fires_under_pgbench_and_resolves_when_it_ends(
    harness: Harness, bouncer: Bouncer
) -> None:
    """12 pgbench clients on a pool of 2: about 10 wait, 2 servers busy, for two polls."""
    await harness.poll()
    load = pgbench(bouncer, clients=12, transactions=10, sleep=0.1)
    try:
        await harness.poll_until(lambda: bool(harness.fired("PgBouncerPoolSaturated")))
        (fired,) = harness.fired("PgBouncerPoolSaturated")
        assert fired.severity == "warning"
        assert dict(fired.labels) == POOL
        assert harness.value("server_connections", **POOL) == POOL_SIZE
        assert harness.value("clients_waiting", **POOL) >= 5
        assert harness.value("client_connections") >= 12
        output, _ = await asyncio.to_thread(load.communicate, timeout=120)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    assert load.returncode == 0, output  # no client was refused or aborted
    await harness.poll_until(lambda: bool(harness.resolved("PgBouncerPoolSaturated")))
    assert harness.value("pool_saturated", **POOL) == 0
    assert harness.value("clients_waiting", **POOL) == 0
    assert harness.value("wait_per_transaction_seconds", database="postgres") >= 0
    assert not harness.fired("PgBouncerDown")


async def test_clients_waiting_long_fires_while_sessions_hold_the_servers(
    harness: Harness, bouncer: Bouncer
) -> None:
    """Two sessions in open transactions hold both servers; a third client's query waits."""
    holders = [await client(bouncer, autocommit=False) for _ in range(POOL_SIZE)]
    waiter = await client(bouncer)
    try:
        for conn in holders:
            await conn.execute("SELECT 1")  # BEGIN: the server stays with this client
        waiting = asyncio.create_task(waiter.execute("SELECT 1"))
        await harness.poll_until(lambda: harness.value("max_wait_seconds", **POOL) >= 1)
        assert harness.value("clients_waiting", **POOL) == 1
        (fired,) = harness.fired("PgBouncerClientsWaitingLong")
        assert fired.severity == "warning"
        assert fired.threshold == 1
        assert fired.limit == 120
        for conn in holders:
            await conn.commit()
        await asyncio.wait_for(waiting, 30)
        await harness.poll_until(lambda: bool(harness.resolved("PgBouncerClientsWaitingLong")))
        assert harness.value("max_wait_seconds", **POOL) < 1
    finally:
        for conn in [*holders, waiter]:
            await conn.close()


async def test_a_full_pgbouncer_refuses_clients_but_poolwatch_still_reports(
    bouncer: Bouncer, validate_event: Any
) -> None:
    """Clients up to max_client_conn: PgBouncer refuses the next, and a fresh admin connection
    still gets in (the console is exempt): saturation, never PgBouncerDown."""
    clients: list[psycopg.AsyncConnection[Any]] = []
    try:
        refused = await fill(bouncer, clients)
        assert "max_client_conn" in refused
        assert len(clients) == MAX_CLIENT_CONN
        collector = PgBouncerCollector(make_target(bouncer.admin_dsn()), clock=FakeClock())
        harness = Harness(collector, validate_event)
        try:
            await harness.poll()
            await harness.poll()
        finally:
            await collector.close()
    finally:
        for conn in clients:
            await conn.close()
    assert harness.value("up") == 1
    used = next(r for r in harness.readings if r.check == "client_connections")
    assert (used.value, used.limit) == (MAX_CLIENT_CONN + 1, MAX_CLIENT_CONN)  # + the console
    (fired,) = harness.fired("PgBouncerClientConnectionsCritical")  # 31/30: at least 90 %
    assert fired.severity == "critical"
    assert not harness.fired("PgBouncerDown")


async def test_at_max_client_conn_the_exhausted_alert_fires_and_holds_while_full(
    harness: Harness, bouncer: Bouncer
) -> None:
    """poolwatch connected first, then clients until PgBouncer refuses one: PgBouncerPoolExhausted
    (critical) fires whatever the client thresholds, stays while full, resolves once drained."""
    await harness.poll()
    clients: list[psycopg.AsyncConnection[Any]] = []
    try:
        refused = await fill(bouncer, clients)
        assert "max_client_conn" in refused
        for _ in range(3):
            await harness.poll()
            assert harness.value("pool_exhausted") == 1
        (fired,) = harness.fired("PgBouncerPoolExhausted")
        assert fired.severity == "critical"
        assert f"of max_client_conn {MAX_CLIENT_CONN}: new clients are refused" in fired.message
        assert not harness.resolved("PgBouncerPoolExhausted")
    finally:
        for conn in clients:
            await conn.close()
    await harness.poll_until(lambda: bool(harness.resolved("PgBouncerPoolExhausted")))
    assert harness.value("pool_exhausted") == 0


async def test_down_when_stopped_and_resolved_when_started(
    harness: Harness, bouncer: Bouncer
) -> None:
    await harness.poll()
    assert harness.value("up") == 1
    await asyncio.to_thread(bouncer.stop)
    await harness.poll()
    assert harness.value("up") == 0
    (down,) = harness.fired("PgBouncerDown")
    assert down.severity == "critical"
    assert "admin console" in down.message
    assert "s3cret" not in down.message
    await asyncio.to_thread(bouncer.start)
    clock = harness.collector._clock
    assert isinstance(clock, FakeClock)
    clock.now += 60  # past the reconnect backoff
    await harness.poll()
    assert harness.value("up") == 1
    await harness.poll()  # clear_for: 2
    (resolved,) = harness.resolved("PgBouncerDown")
    assert resolved.severity == "critical"


async def test_reconfigure_keeps_the_connection_and_takes_the_new_timeout(
    harness: Harness, bouncer: Bouncer
) -> None:
    await harness.poll()
    held = harness.collector._conn
    assert held is not None
    changed = make_target(
        bouncer.admin_dsn(), POOLWATCH_INTERVAL="30s", POOLWATCH_CONFIG=""
    ).model_copy(update={"timeout": 9.0})
    harness.collector.reconfigure(changed)
    assert (harness.collector.interval, harness.collector.timeout) == (30.0, 9.0)
    assert harness.collector._step == pytest.approx(2.7)
    await harness.poll()
    assert harness.collector._conn is held
    assert harness.value("up") == 1


async def test_metrics_show_pgbouncer_readings(harness: Harness, bouncer: Bouncer) -> None:
    conn = await client(bouncer)
    try:
        await conn.execute("SELECT 1")
    finally:
        await conn.close()
    runner = harness.runner
    await runner.pipeline.handle(harness.collector, await runner.pipeline.poll(harness.collector))
    text = generate_latest(registry_for(runner.view, list)).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = (("database", "postgres"), ("target", "main"), ("user", "pw_load"))
    assert samples[("poolwatch_pgbouncer_server_connections_limit", labels)] == POOL_SIZE
    assert ("poolwatch_pgbouncer_pool_saturated", labels) in samples
    assert samples[("poolwatch_pgbouncer_up", (("target", "main"),))] == 1


def test_once_json_lists_pgbouncer_results(bouncer: Bouncer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--once", "--format", "json"],
        env={
            **BASE_ENV,
            "POOLWATCH_HOST_STATS": "off",
            "POOLWATCH_PGBOUNCER_DSN": bouncer.admin_dsn(),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["source"] for r in results} == {"pgbouncer"}
    up = next(r for r in results if r["check"] == "up")
    assert (up["instance"], up["value"], up["severity"]) == ("main", 1, "ok")
    clients = next(r for r in results if r["check"] == "client_connections")
    assert clients["limit"] == MAX_CLIENT_CONN
    assert "s3cret" not in done.stdout + done.stderr
