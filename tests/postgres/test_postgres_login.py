"""The login probe against a real PostgreSQL 15: what the kept session cannot see.

A hung postmaster (SIGSTOP), slots taken by sockets stalled in the startup handshake, a changed
password and a `pg_hba.conf` that now rejects poolwatch's role: in each, every open session,
poolwatch's own included, keeps answering, so `up` and `connections` stay green while no
application can log in. PostgreSQLLoginFailing must fire (after two failed probes in a row),
with the class of failure in its message, and resolve when logins work again.

The hung postmaster runs the real daemon (a `poolwatch` process, its stdout read line by line);
the others drive the Runner's own loop (`Runner.run`) in this process (tests/running.py), with a
sink that keeps the events, so `runner.pipeline.latest` shows what each poll read. Waits are bounded
polls, never sleeps followed by an assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from tests.daemon import BASE_ENV, Daemon
from tests.postgres.pgserver import (
    LOAD_PASSWORD,
    MONITOR_PASSWORD,
    PgServer,
    client_backends,
    poolwatch_sessions,
)
from tests.running import Running

from poolwatch.config import load as config
from poolwatch.sources.postgres.collector import PostgresCollector

pytestmark = pytest.mark.integration

INTERVAL = 0.3
TIMEOUT = 1.0
PROBE_INTERVAL = 1.0
ALERT = "PostgreSQLLoginFailing"
WORST_CASE = PROBE_INTERVAL + 2 * TIMEOUT + 3 * INTERVAL
"""The latest PostgreSQLLoginFailing fires after logins start failing (docs/sources/postgres.md):
the probe falls due, starts at the next poll, fails after its timeout; the confirming probe starts
at the poll after that and fails after its timeout; the poll after that reports it."""
SLACK = 20.0
"""Added to every bounded wait: the machine is shared, and a wait is a bound, not a timing."""


async def logged_in(daemon: Running) -> None:
    """Wait for the first `login_ok` (poolwatch's own first login)."""
    await daemon.until("a first login_ok", lambda: daemon.latest("login_ok") is not None, SLACK)


def collector_for(server: PgServer) -> PostgresCollector:
    target = config.load(env={"POOLWATCH_POSTGRES_DSN": server.dsn()}).postgres.targets[0]
    fast = {"interval": INTERVAL, "timeout": TIMEOUT, "probe_interval": PROBE_INTERVAL}
    return PostgresCollector(target.model_copy(update=fast))


def postmaster_pid(server: PgServer) -> int:
    return int((server.data / "postmaster.pid").read_text().splitlines()[0])


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """SIGSTOP the process, and always SIGCONT it again."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_hung_postmaster_fires_login_failing_in_the_daemon(pg_private: PgServer) -> None:
    """Every open session keeps answering a stopped postmaster; no new one can log in."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        file.write(
            json.dumps(
                {
                    "log_samples": True,  # every poll's values on stdout
                    "host": {"enabled": False},
                    "postgres": {
                        "interval": f"{INTERVAL * 1000:g}ms",
                        "timeout": f"{TIMEOUT:g}s",
                        "probe_interval": f"{PROBE_INTERVAL:g}s",
                        "targets": [{"name": "main", "dsn": pg_private.dsn()}],
                    },
                }
            )
        )
        file.flush()
        with Daemon({"POOLWATCH_CONFIG": file.name}) as daemon:
            daemon.wait_for(lambda line: _sample(line, "login_ok") == 1, 30)
            start = len(daemon.lines)
            with stopped(postmaster_pid(pg_private)):
                fired = daemon.wait_for(lambda line: _event(line, "firing"), WORST_CASE + SLACK)
                during = [line for line in daemon.lines[start:] if line.get("event") == "poll"]
            assert fired["severity"] == "critical"
            assert fired["check"] == "login_ok"
            assert "timed out: no answer within 1s" in fired["message"], fired
            # the kept session reported the true count in every poll meanwhile: never down
            assert during
            assert all(line["values"]["main.up"] == 1 for line in during)
            assert all(line["values"]["main.connections"] >= 1 for line in during)
            assert not [
                line for line in daemon.lines[start:] if line.get("alert") == "PostgreSQLDown"
            ]

            resolved = daemon.wait_for(lambda line: _event(line, "resolved"), 30 + SLACK)
            assert resolved["check"] == "login_ok"


def _sample(line: dict[str, Any], check: str) -> float | None:
    if line.get("event") != "poll" or line.get("source") != "postgres":
        return None
    value = line.get("values", {}).get(f"main.{check}")
    return None if value is None else float(value)


def _event(line: dict[str, Any], status: str) -> bool:
    return line.get("alert") == ALERT and line.get("status") == status


async def _settings(admin: Any) -> dict[str, int]:
    names = (
        "max_connections",
        "autovacuum_max_workers",
        "max_wal_senders",
        "max_worker_processes",
        "superuser_reserved_connections",
    )
    return {name: int(await admin.fetchval(f"SHOW {name}")) for name in names}


@pytest.fixture
async def small(pg_private: PgServer) -> PgServer:
    """A server whose postmaster takes few children: max_connections 10 and no extra workers,
    so it refuses once its children reach 2 x (10 + 1 + 1 + 0 + 0) = 24. The handshake may
    take 10 minutes (authentication_timeout), so stalled sockets hold their slots for the test."""
    admin = await pg_private.admin()
    try:
        for name, value in (
            ("max_connections", "10"),
            ("autovacuum_max_workers", "1"),
            ("max_wal_senders", "0"),
            ("max_worker_processes", "0"),
            ("authentication_timeout", "'10min'"),
        ):
            await admin.execute(f"ALTER SYSTEM SET {name} = {value}")
    finally:
        await admin.close()
    pg_private.stop("fast")
    pg_private.start()
    return pg_private


async def test_sockets_stalled_in_the_handshake_fill_the_slots_unseen(small: PgServer) -> None:
    """50 sockets that connect and send nothing: each is a postmaster child waiting for its
    startup packet, counted against the postmaster's limit and invisible in pg_stat_activity.
    A new login is refused "too many clients" while the kept session reads a quiet server."""
    admin = await small.admin()  # before the sockets: then even the superuser is refused
    sockets: list[socket.socket] = []
    try:
        limits = await _settings(admin)
        children = 2 * (
            limits["max_connections"]
            + limits["autovacuum_max_workers"]
            + 1
            + limits["max_wal_senders"]
            + limits["max_worker_processes"]
        )
        assert children == 24
        async with Running(collector_for(small)) as daemon:
            await logged_in(daemon)
            for _ in range(50):
                sockets.append(socket.create_connection(("127.0.0.1", small.port), timeout=5))
            with pytest.raises(asyncpg.TooManyConnectionsError):
                await asyncpg.connect(small.dsn("pw_load", LOAD_PASSWORD), timeout=5)

            fired = await daemon.sink.wait_for(ALERT, "firing", WORST_CASE + SLACK)
            assert fired.severity == "critical"
            assert "refused because full: sorry, too many clients already (SQLSTATE 53300)" in (
                fired.message
            )
            # pg_stat_activity shows none of them: poolwatch and this admin session only
            assert await client_backends(admin) == 2
            connections = daemon.reading("connections")
            assert connections.value == 2
            assert connections.limit == limits["max_connections"] - 3
            assert daemon.reading("up").value == 1
            assert not daemon.sink.of("PostgreSQLDown", "firing")

            for sock in sockets:
                sock.close()
            sockets.clear()
            resolved = await daemon.sink.wait_for(ALERT, "resolved", WORST_CASE + SLACK)
            assert resolved.check == "login_ok"
    finally:
        for sock in sockets:
            sock.close()
        await admin.close()


async def _change_password(server: PgServer, admin: Any) -> None:
    await admin.execute("ALTER ROLE pw_monitor PASSWORD 'other-password'")


async def _restore_password(server: PgServer, admin: Any) -> None:
    await admin.execute(f"ALTER ROLE pw_monitor PASSWORD '{MONITOR_PASSWORD}'")


HBA_REJECT = "host all pw_monitor 127.0.0.1/32 reject\n"


async def _reject_in_hba(server: PgServer, admin: Any) -> None:
    hba = server.data / "pg_hba.conf"
    hba.write_text(HBA_REJECT + hba.read_text())
    assert await admin.fetchval("SELECT pg_reload_conf()")


async def _restore_hba(server: PgServer, admin: Any) -> None:
    hba = server.data / "pg_hba.conf"
    hba.write_text(hba.read_text().removeprefix(HBA_REJECT))
    assert await admin.fetchval("SELECT pg_reload_conf()")


@pytest.mark.parametrize(
    ("change", "undo", "said"),
    [
        (
            _change_password,
            _restore_password,
            'authentication rejected: password authentication failed for user "pw_monitor"'
            " (SQLSTATE 28P01)",
        ),
        (
            _reject_in_hba,
            _restore_hba,
            'authentication rejected: pg_hba.conf rejects connection for host "127.0.0.1",'
            ' user "pw_monitor"',
        ),
    ],
    ids=["password", "pg_hba"],
)
async def test_a_role_that_can_no_longer_log_in_fires_while_the_session_works(
    pg_private: PgServer, change: Any, undo: Any, said: str
) -> None:
    admin = await pg_private.admin()
    try:
        async with Running(collector_for(pg_private)) as daemon:
            await logged_in(daemon)
            pid = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'poolwatch'"
            )
            await change(pg_private, admin)
            try:
                fired = await daemon.sink.wait_for(ALERT, "firing", WORST_CASE + SLACK)
            finally:
                await undo(pg_private, admin)
            assert fired.severity == "critical"
            assert said in fired.message, fired.message
            # the same session kept polling all along: never down, never reconnected
            assert not daemon.sink.of("PostgreSQLDown", "firing")
            assert await poolwatch_sessions(admin) == 1
            assert pid == await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'poolwatch'"
            )
            await daemon.sink.wait_for(ALERT, "resolved", WORST_CASE + SLACK)
    finally:
        await admin.close()


def _once(dsn: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "poolwatch", "--once", "--only", "postgres", "--format", "json"],
        env={**BASE_ENV, "POOLWATCH_POSTGRES_DSN": dsn},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 2), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


async def test_once_judges_the_same_login_by_its_own_connect(pg: PgServer) -> None:
    """`--once` opens no probe: its own connect is the login. Working, it is `login_ok` 1; with a
    wrong password it is `up` 0, CRITICAL, as PostgreSQLLoginFailing is in the daemon."""
    results = {r["check"]: r for r in await asyncio.to_thread(_once, pg.dsn())}
    assert (results["login_ok"]["value"], results["login_ok"]["severity"]) == (1, "ok")
    assert results["login_seconds"]["value"] > 0
    assert results["login_seconds"]["limit"] == 5.0

    refused = await asyncio.to_thread(_once, pg.dsn(password="wrong"))
    (up,) = refused
    assert (up["check"], up["value"], up["severity"]) == ("up", 0, "critical")
    assert "password authentication failed" in up["message"]
