"""Who holds the pool, against the real PostgreSQL: the pool alert's event names the holders and
the root blocker (collector + evaluator, the daemon's stdout and webhook, `--once`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.daemon import BASE_ENV, Daemon
from tests.eventually import eventually
from tests.net import free_port
from tests.postgres.pgserver import PgServer, wait_for_count
from tests.postgres.scene import SECRET_LITERAL, TOTAL, Scene
from tests.postgres.test_postgres_pool import Harness, make_target
from tests.webhook.receiver import Receiver

from poolwatch.core.model import Event
from poolwatch.sources.postgres.collector import PostgresCollector

pytestmark = pytest.mark.integration

# the scene's 76 sessions and poolwatch's: 77, past critical
THRESHOLDS = {"POSTGRES_CONN_WARNING": "60", "POSTGRES_CONN_CRITICAL": "70"}


@pytest.fixture
async def scene(pg: PgServer) -> AsyncIterator[Scene]:
    built = Scene(pg)
    try:
        await built.open()
        yield built
    finally:
        await built.close()


def assert_names_the_holders(context: Any, migrate_pid: int) -> None:
    top = context["holders"][0]
    assert (top["application"], top["user"], top["client"], top["count"]) == (
        "leaky",
        "pw_load",
        "127.0.0.1",
        40,
    )
    assert top["states"] == {"idle in transaction": 40}
    assert top["oldest_idle_in_transaction_seconds"] >= 0
    assert top["oldest_transaction_seconds"] >= top["oldest_idle_in_transaction_seconds"]
    assert [h["application"] for h in context["holders"][:3]] == ["leaky", "busy", "worker"]
    assert context["holders"][1]["states"] == {"active": 20}
    assert len(context["holders"]) == 5
    assert context["waiting_on_locks"] == 5
    root = context["blockers"][0]
    assert (root["pid"], root["application"], root["blocking"]) == (migrate_pid, "migrate", 5)
    assert root["state"] == "idle in transaction"
    assert len(context["blockers"]) == 1  # the waiter at the head of the chain is no root


async def test_the_pool_alert_names_the_holders_and_the_root_blocker(
    pg: PgServer, scene: Scene, validate_event: Any
) -> None:
    h = Harness(PostgresCollector(make_target(pg.dsn(), THRESHOLDS)), validate_event)
    admin = await pg.admin()  # a session over the unix socket: client `local`
    try:
        events = await h.poll()
    finally:
        await admin.close()
        await h.collector.close()
    assert [(e.alert, e.status) for e in events] == [("PostgreSQLConnectionPoolCritical", "firing")]
    event = events[0]
    data = validate_event(event.to_dict())
    assert_names_the_holders(data["context"], scene.migrate_pid)
    assert "query" not in json.dumps(data["context"])  # never query text by default
    assert "leaky@127.0.0.1 40 (40 idle in transaction, oldest " in event.message
    assert f"5 waiting on locks behind pid {scene.migrate_pid} (migrate, " in event.message
    assert " — " in event.message
    assert "\n" not in event.message

    # the bounded per-application and per-client readings
    assert h.value("connections_by_application", application="leaky").value == 40
    assert h.value("connections_by_application", application="migrate").value == 1
    assert h.value("connections_by_client", client="127.0.0.1").value == TOTAL + 1  # + poolwatch
    assert h.value("connections_by_client", client="local").value == 1  # the admin's socket
    assert not h.collector.last_poll_partial


async def test_resolved_and_ok_carry_no_context(
    pg: PgServer, scene: Scene, validate_event: Any
) -> None:
    h = Harness(PostgresCollector(make_target(pg.dsn(), THRESHOLDS)), validate_event)
    assert (await h.poll())[0].context is not None
    await scene.close()
    admin = await pg.admin()
    try:
        await wait_for_count(admin, 2)  # the admin and poolwatch
    finally:
        await admin.close()
    events: list[Event] = []
    try:
        for _ in range(3):
            events += await h.poll()
            assert h.value("connections").context is None  # OK: no HOLDERS read is even made
    finally:
        await h.collector.close()
    assert [(e.status, e.context) for e in events] == [("resolved", None)]
    assert "context" not in events[0].to_dict()


async def test_query_text_only_when_asked_and_scrubbed(pg: PgServer, scene: Scene) -> None:
    target = make_target(pg.dsn(), THRESHOLDS).model_copy(update={"include_query_text": True})
    collector = PostgresCollector(target)
    try:
        readings = await collector.collect()
    finally:
        await collector.close()
    context = next(r for r in readings if r.check == "connections").context
    assert context is not None
    query = context["blockers"][0]["query"]
    assert "FROM holders_demo WHERE id = ? AND ? <> ? FOR UPDATE" in query
    assert SECRET_LITERAL not in json.dumps(context, default=list)
    assert context["holders"][1]["query"] == "SELECT pg_sleep(?)"


async def test_a_failed_holders_read_costs_the_context_never_the_count(
    pg: PgServer, scene: Scene
) -> None:
    admin = await pg.admin()
    await admin.execute("REVOKE EXECUTE ON FUNCTION pg_blocking_pids(int) FROM PUBLIC")
    collector = PostgresCollector(make_target(pg.dsn(), THRESHOLDS))
    try:
        readings = await collector.collect()
    finally:
        await admin.execute("GRANT EXECUTE ON FUNCTION pg_blocking_pids(int) TO PUBLIC")
        await admin.close()
        await collector.close()
    connections = next(r for r in readings if r.check == "connections")
    assert connections.value == TOTAL + 2
    assert connections.context is None
    assert connections.message is not None
    assert connections.message.startswith("holders not read: permission denied")
    up = next(r for r in readings if r.check == "up")
    assert (up.value, up.message) == (1, None)  # not a partial poll: nothing went unreported
    assert not collector.last_poll_partial


def _once(dsn: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poolwatch", "--once", "--only", "postgres", *extra],
        env={**BASE_ENV, "POOLWATCH_POSTGRES_DSN": dsn, **THRESHOLDS},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_once_shows_the_holders_in_json_and_table(pg: PgServer, scene: Scene) -> None:
    done = await asyncio.to_thread(_once, pg.dsn(), "--format", "json")
    assert done.returncode == 2, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    (connections,) = [r for r in results if r["check"] == "connections"]
    assert_names_the_holders(connections["context"], scene.migrate_pid)
    assert all("context" not in r for r in results if r["severity"] == "ok")

    table = await asyncio.to_thread(_once, pg.dsn(), "--format", "table")
    lines = table.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if " connections " in f" {line} ")
    assert lines[row].startswith("CRITICAL")
    assert lines[row + 1].strip().startswith("holder leaky @ 127.0.0.1 user pw_load: 40 (40 idle")
    assert any(
        line.strip().startswith(f"blocker pid {scene.migrate_pid} migrate") and "blocks 5" in line
        for line in lines[row + 1 : row + 12]
    )


async def test_daemon_stdout_and_webhook_carry_the_context(
    pg: PgServer, scene: Scene, tmp_path: Path, validate_event: Any
) -> None:
    receiver = Receiver(free_port())
    receiver.start()
    daemon = Daemon(
        {
            "POOLWATCH_POSTGRES_DSN": pg.dsn(),
            "POOLWATCH_HOST_STATS": "off",
            "POOLWATCH_INTERVAL": "500ms",
            "POOLWATCH_WEBHOOK_URL": receiver.url,
            "POOLWATCH_STATE_DIR": str(tmp_path / "state"),
            **THRESHOLDS,
        }
    )
    try:
        line = await asyncio.to_thread(
            daemon.wait_for, lambda line: line.get("alert") == "PostgreSQLConnectionPoolCritical"
        )
        validate_event({k: v for k, v in line.items() if k not in ("event", "level")})
        assert_names_the_holders(line["context"], scene.migrate_pid)
        await eventually(
            lambda: any(q.id == line["id"] for q in receiver.answered()),
            "the event at the webhook",
            30,
            0.05,
        )
        (body,) = [q.json() for q in receiver.answered() if q.id == line["id"]]
        validate_event(body)
        assert body["context"] == line["context"]
        assert body["message"] == line["message"]
    finally:
        await asyncio.to_thread(daemon.stop)
        receiver.stop()
