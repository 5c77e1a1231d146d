"""A PostgreSQL left at its own default limits (`max_connections = 100`, 97 usable), full.

The seed's absolute thresholds (150/180) cannot be reached on such a server, so the full pool must
page by itself (`pool_exhausted`), in the daemon while poolwatch holds its session as in `--once`
whose own connection is refused; and the thresholds that cannot fire are said, once, where an
operator looks: the log, `--once`, `/metrics`. Real daemon, real server, real connections.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs
from tests.daemon import BASE_ENV, Daemon
from tests.postgres.pgserver import Load, PgServer, client_backends

from poolwatch.config.load import load as load_config
from poolwatch.core.evaluate import Evaluator
from poolwatch.runtime.limits import LimitWatch
from poolwatch.runtime.metrics import registry_for
from poolwatch.runtime.runner import Runner
from poolwatch.sources.postgres.collector import PostgresCollector

pytestmark = pytest.mark.integration

POOLWATCH = str(Path(sys.executable).with_name("poolwatch"))
USABLE = 97  # PostgreSQL's default max_connections 100 - superuser_reserved_connections 3
SEED = {"POSTGRES_CONN_WARNING": "150", "POSTGRES_CONN_CRITICAL": "180"}


def env_for(server: PgServer, **extra: str) -> dict[str, str]:
    return {
        **BASE_ENV,
        "POOLWATCH_POSTGRES_DSN": server.dsn(),
        "POOLWATCH_HOST_STATS": "off",
        "POOLWATCH_INTERVAL": "1s",
        **extra,
    }


def once(env: dict[str, str], output: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [POOLWATCH, "--once", "--format", output],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exhausted(line: dict[str, Any], status: str) -> bool:
    return line.get("alert") == "PostgreSQLConnectionPoolExhausted" and line["status"] == status


async def test_full_at_default_limits_pages_in_the_daemon_and_in_once(
    pg_default_limits: PgServer, tmp_path: Path, validate_event: Any
) -> None:
    server = pg_default_limits
    config = tmp_path / "poolwatch.yaml"
    config.write_text("log_samples: true\n")
    env = env_for(server, **SEED)
    load = Load(server)
    admin = await server.admin()
    try:
        with Daemon({**env, "POOLWATCH_CONFIG": str(config)}) as daemon:
            daemon.wait_for(lambda line: line.get("event") == "started")
            await load.fill()  # every ordinary slot taken: the next login gets 53300
            # the loads, poolwatch and the superuser admin session: every ordinary slot
            assert await client_backends(admin) == USABLE

            fired = daemon.wait_for(lambda line: exhausted(line, "firing"), deadline=30)
            validate_event(fired)
            assert fired["severity"] == "critical"
            assert "no slot left for an ordinary role" in fired["message"]
            holders = fired["context"]["holders"]
            assert holders[0]["user"] == "pw_load"
            assert holders[0]["count"] == len(load.conns)

            # it stays firing while the pool stays full (not only when someone was refused)
            for _ in range(3):
                sample = daemon.wait_for(
                    lambda line: line.get("event") == "poll" and line.get("source") == "postgres",
                    deadline=30,
                )
                assert sample["values"]["main.pool_exhausted"] == 1
                assert sample["values"]["main.connections"] == USABLE
            assert not [line for line in daemon.lines if exhausted(line, "resolved")]

            # the same server state, as the one-shot check sees it: refused, so critical too
            checked = once(env, "json")
            assert checked.returncode == 2, checked.stdout + checked.stderr
            results = {r["check"]: r for r in map(json.loads, checked.stdout.splitlines())}
            assert results["pool_exhausted"]["severity"] == "critical"
            plugin = once(env, "nagios")
            assert plugin.returncode == 2
            assert plugin.stdout.startswith("POOLWATCH CRITICAL")

            await load.close()
            resolved = daemon.wait_for(lambda line: exhausted(line, "resolved"), deadline=30)
            validate_event(resolved)
    finally:
        await load.close()
        await admin.close()


async def test_thresholds_that_cannot_fire_are_said_in_the_log_once_and_metrics(
    pg_default_limits: PgServer, tmp_path: Path
) -> None:
    server = pg_default_limits
    variables = {**SEED, "POSTGRES_CONN_MAX": "300"}
    env = env_for(server, **variables)

    checked = once(env, "json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    results = {r["check"]: r for r in map(json.loads, checked.stdout.splitlines())}
    notes = results["connections"]["notes"]
    assert len(notes) == 3
    for key, variable, value, limit in (
        ("rules.connections.warning", "POSTGRES_CONN_WARNING", "150", USABLE),
        ("rules.connections.critical", "POSTGRES_CONN_CRITICAL", "180", USABLE),
        ("max_connections", "POSTGRES_CONN_MAX", "300", 100),  # the server's max_connections
    ):
        (note,) = [n for n in notes if f"postgres.{key} {value} " in n]
        assert f"(from environment {variable})" in note
        assert f"server's own limit {limit}" in note
    assert results["connections"]["limit"] == USABLE  # never the larger configured 300
    table = once(env, "table")
    assert table.stdout.count("    note: ") == 3
    plugin = once(env, "nagios")
    assert plugin.stdout.count("\nNOTE: ") == 3
    assert plugin.returncode == 0

    # the daemon's path: one warning line per setting on the first poll, none while it holds
    config = load_config(env=variables | {"POOLWATCH_POSTGRES_DSN": server.dsn()})
    collector = PostgresCollector(config.postgres.targets[0])
    runner = Runner([collector], [], Evaluator("test"), limits=LimitWatch(config.origin_of))
    try:
        with capture_logs() as first:
            await runner.pipeline.handle(collector, await runner.pipeline.poll(collector))
        said = [line for line in first if line["event"] == "setting_unreachable"]
        assert sorted(line["setting"] for line in said) == [
            "postgres.max_connections",
            "postgres.rules.connections.critical",
            "postgres.rules.connections.warning",
        ]
        assert {line["server_limit"] for line in said} == {USABLE, 100}
        assert {line["log_level"] for line in said} == {"warning"}
        with capture_logs() as second:
            await runner.pipeline.handle(collector, await runner.pipeline.poll(collector))
        assert not [line for line in second if line["event"] == "setting_unreachable"]

        exposition = generate_latest(registry_for(runner.view, lambda: [])).decode()
        assert (
            'poolwatch_setting_unreachable{check="connections",'
            'setting="rules.connections.critical",source="postgres",target="main"} 180.0'
        ) in exposition
        assert (
            'poolwatch_setting_unreachable_limit{check="connections",'
            'setting="max_connections",source="postgres",target="main"} 100.0'
        ) in exposition
    finally:
        await collector.close()


async def test_a_percentage_default_follows_the_servers_own_limit(
    pg_default_limits: PgServer,
) -> None:
    """The built-in 75 % / 90 % come to 72.75 / 87.3 of the 97 usable here (150/180 of the
    seed's 200), and nothing is said about them: a percentage can always fire."""
    config = load_config(env={"POOLWATCH_POSTGRES_DSN": pg_default_limits.dsn()})
    collector = PostgresCollector(config.postgres.targets[0])
    runner = Runner([collector], [], Evaluator("test"), limits=LimitWatch(config.origin_of))
    try:
        await runner.pipeline.handle(collector, await runner.pipeline.poll(collector))
        assert runner.pipeline.limits.notes() == []
        rule = collector.rules["connections"]
        assert rule.warning is not None
        assert rule.critical is not None
        assert (rule.warning.resolve(USABLE), rule.critical.resolve(USABLE)) == (72.75, 87.3)
    finally:
        await collector.close()


async def test_the_seeds_conn_max_naming_the_servers_max_connections_is_not_noise(
    pg: PgServer,
) -> None:
    """The seed's `POSTGRES_CONN_MAX=200` beside `max_connections = 200`: it names the server's
    setting, so nothing is said, and fullness is judged against the 197 usable slots."""
    env = {"POOLWATCH_POSTGRES_DSN": pg.dsn(), "POSTGRES_CONN_MAX": "200"}
    config = load_config(env=env)
    collector = PostgresCollector(config.postgres.targets[0])
    runner = Runner([collector], [], Evaluator("test"), limits=LimitWatch(config.origin_of))
    try:
        readings = await runner.pipeline.poll(collector)
        await runner.pipeline.handle(collector, readings)
        assert runner.pipeline.limits.notes() == []
        (connections,) = [r for r in readings if r.check == "connections"]
        assert connections.limit == 197
    finally:
        await collector.close()
