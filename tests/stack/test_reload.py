"""SIGHUP: a changed threshold applies from the next poll on the same PostgreSQL connection; a
broken file leaves the daemon running on the old configuration, saying why; a disabled rule
resolves its alert at once."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon import Daemon
from tests.net import free_port
from tests.postgres.pgserver import Load, PgServer

YAML = """\
interval: 300ms
log_samples: true
host: {{enabled: false}}
postgres:
  targets:
    - name: main
      dsn: {dsn}
      rules:
        connections: {{warning: {warning}, critical: null}}
"""


async def poolwatch_backend(pg: PgServer) -> list[int]:
    conn = await pg.admin()
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'poolwatch'"
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


@pytest.mark.integration
async def test_sighup_applies_a_new_threshold_without_reconnecting(
    pg: PgServer, load: Load, tmp_path: Path, validate_event: Any
) -> None:
    config = tmp_path / "poolwatch.yaml"
    config.write_text(YAML.format(dsn=pg.dsn(), warning=150))
    await load.open(10)
    with Daemon({"POOLWATCH_CONFIG": str(config), "POOLWATCH_LOG_FORMAT": "json"}) as daemon:
        daemon.wait_for(lambda line: line.get("event") == "poll" and line["source"] == "postgres")
        (before,) = await poolwatch_backend(pg)

        config.write_text(YAML.format(dsn=pg.dsn(), warning=5))
        daemon.proc.send_signal(signal.SIGHUP)
        reloaded = daemon.wait_for(lambda line: line.get("event") == "reloaded")
        assert reloaded["collectors"] == {"postgres:main": "updated"}
        firing = daemon.wait_for(lambda line: line.get("alert") == "PostgreSQLConnectionPoolHigh")
        validate_event(firing)
        assert firing["threshold"] == 5
        assert firing["value"] >= 10
        assert await poolwatch_backend(pg) == [before]  # same session: no reconnect

        config.write_text("postgres: [this is not\n")
        daemon.proc.send_signal(signal.SIGHUP)
        failed = daemon.wait_for(lambda line: line.get("event") == "reload_failed")
        assert "not valid YAML" in failed["reason"]
        assert failed["level"] == "error"
        # still polling, on the old configuration, on the same connection
        daemon.wait_for(lambda line: line.get("event") == "poll" and line["source"] == "postgres")
        assert daemon.proc.poll() is None
        assert await poolwatch_backend(pg) == [before]
        assert daemon.stop() == 0


DISABLE_YAML = """\
interval: 300ms
log_samples: true
host: {{enabled: false}}
listen: 127.0.0.1:{port}
postgres:
  targets:
    - name: main
      dsn: {dsn}
      rules:
        connections: {{warning: 5, critical: null, enabled: {enabled}}}
"""


def active_alerts(port: int) -> list[str]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return [line for line in text.splitlines() if line.startswith("poolwatch_alert_active{")]


@pytest.mark.integration
async def test_sighup_disabling_a_firing_rule_resolves_it_at_once(
    pg: PgServer, load: Load, tmp_path: Path, validate_event: Any
) -> None:
    """Reproduced: an alert whose rule a reload disabled stayed firing forever (and Alertmanager
    kept being told so). Now the reload itself resolves it, on stdout and in /metrics."""
    port = free_port()
    config = tmp_path / "poolwatch.yaml"
    config.write_text(DISABLE_YAML.format(dsn=pg.dsn(), port=port, enabled="true"))
    await load.open(10)
    with Daemon({"POOLWATCH_CONFIG": str(config), "POOLWATCH_LOG_FORMAT": "json"}) as daemon:
        daemon.wait_for(lambda line: line.get("alert") == "PostgreSQLConnectionPoolHigh")
        assert any('alert="PostgreSQLConnectionPoolHigh"' in s for s in active_alerts(port))

        config.write_text(DISABLE_YAML.format(dsn=pg.dsn(), port=port, enabled="false"))
        daemon.proc.send_signal(signal.SIGHUP)
        resolved = daemon.wait_for(
            lambda line: (
                line.get("alert") == "PostgreSQLConnectionPoolHigh"
                and line.get("status") == "resolved"
            )
        )
        validate_event(resolved)
        assert "rule was disabled or removed" in resolved["message"]
        reloaded = daemon.wait_for(lambda line: line.get("event") == "reloaded")
        assert reloaded["collectors"] == {"postgres:main": "updated"}
        assert active_alerts(port) == []
        after = len(daemon.lines)
        polls = iter(range(3))  # three more polls with the load still there
        daemon.wait_for(lambda line: line.get("event") == "poll" and next(polls, None) is None)
        assert [
            line for line in daemon.lines[after:] if line.get("alert")
        ] == []  # the rule no longer judges it: nothing fires again
        assert active_alerts(port) == []
        assert daemon.stop() == 0
