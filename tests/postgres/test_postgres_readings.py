"""Every PostgreSQL reading against a real server: documented, true, and free of secrets."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
from structlog.testing import capture_logs
from tests.eventually import eventually
from tests.postgres.pgserver import (
    LOAD_PASSWORD,
    MONITOR_PASSWORD,
    Load,
    PgServer,
    poolwatch_sessions,
    wait_for_count,
)
from tests.readme import documented_checks
from tests.recording import RecordingSink

from poolwatch import cli
from poolwatch.config import load as config
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Reading, now_utc
from poolwatch.once.run import once
from poolwatch.runtime.pipeline import owner_of
from poolwatch.runtime.runner import Runner
from poolwatch.sources.postgres.collector import PostgresCollector
from poolwatch.sources.postgres.readings import CHECKS

pytestmark = pytest.mark.integration


def target(dsn: str, **env: str) -> config.PostgresTarget:
    return config.load(env={"POOLWATCH_POSTGRES_DSN": dsn, **env}).postgres.targets[0]


def only(readings: list[Reading], check: str, **labels: str) -> float:
    found = [r.value for r in readings if r.check == check and dict(r.labels) == labels]
    assert len(found) == 1, (check, labels)
    return found[0]


async def poll_until(
    collector: PostgresCollector,
    done: Callable[[list[Reading]], bool],
    deadline: float = 20.0,
) -> list[Reading]:
    """Poll until `done` holds; the server reports some changes a moment after they happen."""
    last: list[Reading] = []

    async def polled() -> list[Reading] | None:
        last[:] = await collector.collect()
        return list(last) if done(last) else None

    found: list[Reading] = await eventually(
        polled, lambda: f"the readings wanted; last: {last}", deadline, 0.05
    )
    return found


async def test_emitted_checks_are_the_documented_ones(pg: PgServer) -> None:
    collector = PostgresCollector(target(pg.dsn()))
    try:
        await collector.collect()
        readings = list(await collector.collect())  # deadlocks is a delta: from the second poll
    finally:
        await collector.close()
    documented = documented_checks("docs/sources/postgres.md")
    assert len(documented) == len(set(documented))
    assert {r.check for r in readings} == set(documented) == set(CHECKS)
    assert all(r.source == "postgres" and r.instance == "main" for r in readings)
    assert only(readings, "database_size_bytes", database="postgres") > 0


async def test_locks_deadlocks_and_ages(pg: PgServer, load: Load, validate_event: Any) -> None:
    collector = PostgresCollector(target(pg.dsn()))
    evaluator = Evaluator("test-host")
    a, b = await load.open_one(), await load.open_one()
    admin = await pg.admin()
    try:
        baseline = list(await collector.collect())
        assert only(baseline, "connections_waiting_on_locks") == 0

        await a.execute("BEGIN; UPDATE deadlock_demo SET n = n + 1 WHERE id = 1")
        await b.execute("BEGIN; UPDATE deadlock_demo SET n = n + 1 WHERE id = 2")
        blocked = asyncio.create_task(a.execute("UPDATE deadlock_demo SET n = n + 1 WHERE id = 2"))
        readings = await poll_until(
            collector, lambda rs: only(rs, "connections_waiting_on_locks") == 1
        )
        assert only(readings, "connections_waiting_on_locks") == 1
        assert only(readings, "connections_by_state", state="idle_in_transaction") == 1
        assert only(readings, "oldest_transaction_seconds") > 0

        closing = b.execute("UPDATE deadlock_demo SET n = n + 1 WHERE id = 1")
        outcomes = await asyncio.gather(blocked, closing, return_exceptions=True)
        assert sum(isinstance(o, asyncpg.DeadlockDetectedError) for o in outcomes) == 1
        await a.execute("ROLLBACK")
        await b.execute("ROLLBACK")

        # backends flush their statistics a moment after the transaction ends
        total = 0.0

        def counted(rs: list[Reading]) -> bool:
            nonlocal total
            total += only(rs, "deadlocks")
            return total > 0

        readings = await poll_until(collector, counted)
        assert only(readings, "deadlocks") == total == 1
        events = evaluator.observe(owner_of(collector), readings, collector.rules, now_utc())
        assert [(e.alert, e.status) for e in events] == [("PostgreSQLDeadlocks", "firing")]
        validate_event(events[0].to_dict())
        assert only(list(await collector.collect()), "deadlocks") == 0

        await admin.execute("SELECT pg_stat_reset()")  # the counter restarts from 0
        assert only(list(await collector.collect()), "deadlocks") == 0

        await a.execute("BEGIN; SELECT 1")
        readings = await poll_until(
            collector, lambda rs: only(rs, "idle_in_transaction_seconds") > 0
        )
        assert only(readings, "idle_in_transaction_seconds") > 0
        await a.execute("ROLLBACK")

        sleeper = asyncio.create_task(b.execute("SELECT pg_sleep(60)"))
        readings = await poll_until(collector, lambda rs: only(rs, "longest_query_seconds") > 0)
        assert only(readings, "longest_query_seconds") > 0
        assert only(readings, "connections_by_state", state="active") >= 1
        await admin.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
            " WHERE query = 'SELECT pg_sleep(60)'"
        )
        with pytest.raises(asyncpg.QueryCanceledError):
            await sleeper
    finally:
        await collector.close()
        await admin.close()


async def _connects(collector: PostgresCollector, pg: PgServer) -> None:
    try:
        readings = list(await collector.collect())
        assert only(readings, "up") == 1
        admin = await pg.admin()
        try:
            assert await poolwatch_sessions(admin) == 1
        finally:
            await admin.close()
    finally:
        await collector.close()


async def test_keyword_dsn(pg: PgServer) -> None:
    dsn = (
        f"host=127.0.0.1 port = {pg.port} user=pw_monitor dbname=postgres"
        f" password='{MONITOR_PASSWORD}' application_name='not me' connect_timeout=3"
    )
    await _connects(PostgresCollector(target(dsn)), pg)


async def test_libpq_environment(pg: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGUSER": "pw_monitor",
        "PGPASSWORD": MONITOR_PASSWORD,
        "PGDATABASE": "postgres",
    }.items():
        monkeypatch.setenv(name, value)
    await _connects(PostgresCollector(target("")), pg)


async def test_password_file_and_limit_override(pg: PgServer, tmp_path: Path) -> None:
    secret = tmp_path / "pg_password"
    secret.write_text(MONITOR_PASSWORD + "\n")
    path = tmp_path / "poolwatch.yaml"
    path.write_text(
        "postgres:\n"
        "  targets:\n"
        "    - name: primary\n"
        f"      dsn: postgresql://pw_monitor@127.0.0.1:{pg.port}/postgres\n"
        f"      password_file: {secret}\n"
    )
    loaded = config.load(path, env={"POSTGRES_CONN_MAX": "120"})
    collector = PostgresCollector(loaded.postgres.targets[0])
    try:
        readings = list(await collector.collect())
    finally:
        await collector.close()
    connections = [r for r in readings if r.check == "connections"]
    assert [(r.instance, r.limit) for r in connections] == [("primary", 120)]


async def test_no_password_in_logs_events_or_check_config(
    pg: PgServer, validate_event: Any
) -> None:
    wrong = "wrong-Pa55word"
    dsn = f"postgresql://pw_load:{wrong}@127.0.0.1:{pg.port}/postgres"
    loaded = config.load(env={"POOLWATCH_POSTGRES_DSN": dsn})
    collector = PostgresCollector(loaded.postgres.targets[0])
    evaluator = Evaluator("test-host")
    sink = RecordingSink()  # validates every event against the schema
    runner = Runner([collector], [sink], evaluator)
    sent = sink.events
    with capture_logs() as logs:
        readings = await runner.pipeline.poll(collector)
        await runner.pipeline.handle(collector, readings)
    await collector.close()
    assert only(readings, "up") == 0
    assert "password authentication failed" in (readings[0].message or "")
    assert [e.alert for e in sent] == ["PostgreSQLDown"]
    validate_event(sent[0].to_dict())
    out = io.StringIO()
    cli.check_config(loaded, out)
    for text in (repr(logs), repr(readings), repr([e.to_dict() for e in sent]), out.getvalue()):
        assert wrong not in text
        assert LOAD_PASSWORD not in text
    assert "pw_load:***@" in out.getvalue()


async def test_once_reports_the_pool_and_closes(pg: PgServer) -> None:
    # only the PostgreSQL source: the exit code must not depend on other tests' containers
    env = {"POOLWATCH_POSTGRES_DSN": pg.dsn(), "POOLWATCH_HOST_STATS": "off"}
    loaded = config.load(env={**env, "POOLWATCH_DOCKER": "off"})
    out = io.StringIO()
    try:
        code = await once(loaded, "json", out)
    finally:
        structlog.reset_defaults()  # once() configures logging for the process
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == cli.EXIT_OK
    pool = [r for r in results if r["check"] == "connections"]
    assert [(p["source"], p["instance"], p["limit"]) for p in pool] == [("postgres", "main", 197)]
    admin = await pg.admin()
    try:
        await wait_for_count(admin, 1)  # the one-shot closed its connection
    finally:
        await admin.close()
