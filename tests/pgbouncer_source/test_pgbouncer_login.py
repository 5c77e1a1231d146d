"""The PgBouncer login probe against a real PgBouncer 1.18 in front of a real PostgreSQL 15.

The admin console is exempt from `max_client_conn` and reaches no server, so it keeps answering
(`up` 1) while no client gets through: PgBouncer at `max_client_conn`, and PgBouncer whose server
is down. With a `probe_dsn` (a real database through PgBouncer) PgBouncerLoginFailing must fire
after two failed probes in a row, name the class of failure, and resolve when clients get
through again. Without one there is no probe at all. The daemon's loop (`Runner.run`) runs in
this process (tests/running.py); waits are bounded.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from tests.pgbouncer_source.bouncer import MAX_CLIENT_CONN, Bouncer
from tests.postgres.pgserver import PgServer
from tests.running import Running

from poolwatch.config import load as config
from poolwatch.sources.pgbouncer.collector import PgBouncerCollector

pytestmark = pytest.mark.integration

INTERVAL = 0.3
TIMEOUT = 1.0
PROBE_INTERVAL = 1.0
ALERT = "PgBouncerLoginFailing"
BOUND = PROBE_INTERVAL + 2 * TIMEOUT + 3 * INTERVAL + 20.0
"""The worst case of docs/sources/pgbouncer.md, plus slack for a shared machine: a bound."""
LOGIN_CHECKS = {"login_ok", "login_seconds"}


def collector_for(bouncer: Bouncer, probe: bool = True) -> PgBouncerCollector:
    env = {"POOLWATCH_PGBOUNCER_DSN": bouncer.admin_dsn()}
    target = config.load(env=env).pgbouncer.targets[0]
    fast: dict[str, Any] = {
        "interval": INTERVAL,
        "timeout": TIMEOUT,
        "probe_interval": PROBE_INTERVAL,
    }
    if probe:
        fast["probe_dsn"] = bouncer.client_dsn()
    return PgBouncerCollector(target.model_copy(update=fast))


async def first_probe(daemon: Running) -> None:
    await daemon.until("a first login_ok", lambda: daemon.latest("login_ok") is not None, 20)


async def test_without_probe_dsn_nothing_is_probed(bouncer: Bouncer) -> None:
    collector = collector_for(bouncer, probe=False)
    async with Running(collector) as daemon:
        await daemon.until(
            "three polls", lambda: daemon.runner.view.stats().polls.get(owner(daemon), 0) >= 3, 20
        )
        assert collector.probe.started == 0
        checks = {r.check for r in daemon.runner.pipeline.latest[owner(daemon)].values()}
        assert "up" in checks
        assert not checks & LOGIN_CHECKS


def owner(daemon: Running) -> str:
    return f"pgbouncer:{daemon.collector.instance}"


async def test_probe_readings_through_pgbouncer(bouncer: Bouncer) -> None:
    async with Running(collector_for(bouncer)) as daemon:
        await first_probe(daemon)
        assert daemon.reading("login_ok").value == 1
        seconds = daemon.reading("login_seconds")
        assert 0 < seconds.value < TIMEOUT
        assert seconds.limit == TIMEOUT
        assert not daemon.sink.events


async def test_at_max_client_conn_the_probe_is_refused_as_full(bouncer: Bouncer) -> None:
    sockets: list[socket.socket] = []
    try:
        async with Running(collector_for(bouncer)) as daemon:
            await first_probe(daemon)
            # plain TCP connections are clients to PgBouncer: fill every client slot
            for _ in range(MAX_CLIENT_CONN):
                sockets.append(socket.create_connection(("127.0.0.1", bouncer.port), timeout=5))
            await daemon.until(
                "PgBouncer full",
                lambda: daemon.reading("client_connections").value >= MAX_CLIENT_CONN,
                20,
            )
            fired = await daemon.sink.wait_for(ALERT, "firing", BOUND)
            assert fired.severity == "critical"
            assert "refused because full: " in fired.message, fired.message
            assert "no more connections allowed (max_client_conn)" in fired.message
            assert daemon.reading("up").value == 1  # the console is exempt
            assert not daemon.sink.of("PgBouncerDown", "firing")

            for sock in sockets:
                sock.close()
            sockets.clear()
            await daemon.sink.wait_for(ALERT, "resolved", BOUND)
    finally:
        for sock in sockets:
            sock.close()


async def test_a_server_down_behind_pgbouncer_fires_while_the_console_answers(
    bouncer_before_private: Bouncer, pg_private: PgServer
) -> None:
    async with Running(collector_for(bouncer_before_private)) as daemon:
        await first_probe(daemon)
        pg_private.stop("fast")
        try:
            fired = await daemon.sink.wait_for(ALERT, "firing", BOUND)
            assert daemon.reading("up").value == 1
        finally:
            pg_private.start()
        assert fired.severity == "critical"
        assert fired.check == "login_ok"
        assert not daemon.sink.of("PgBouncerDown", "firing")
        await daemon.sink.wait_for(ALERT, "resolved", BOUND)
    print(fired.message)
