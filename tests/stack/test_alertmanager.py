"""A real poolwatch daemon pushes a PostgreSQL pool alert into real Alertmanagers (Debian's
package), read back through their API v2: it fires, resolves, and reaches every HA peer."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon import Daemon
from tests.eventually import eventually
from tests.net import free_port
from tests.postgres.pgserver import Load, PgServer
from tests.stack.conftest import launch, stop, wait_http

pytestmark = pytest.mark.integration

ALERT = "PostgreSQLConnectionPoolHigh"


class Peer:
    """One Alertmanager that can be stopped and started again on the same port.

    Its own launcher, not the `alertmanager` fixture: that one is a single server and looks for
    a binary named `alertmanager`, which Debian installs as `prometheus-alertmanager`. Clustering
    is off: peers gossip silences and notifications, never alerts, so each must be sent every
    alert whether or not they form a cluster.
    """

    def __init__(self, home: Path) -> None:
        binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
        if binary is None:
            pytest.fail("Alertmanager is not installed: run tests/provision/40-prometheus.sh")
        self.binary, self.home, self.port = binary, home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home.mkdir()
        (home / "alertmanager.yml").write_text(
            "route: {receiver: blackhole, group_wait: 1s}\nreceivers: [{name: blackhole}]\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.home / "log"
        self.process = launch(
            [
                self.binary,
                f"--config.file={self.home / 'alertmanager.yml'}",
                f"--storage.path={self.home}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            log,
        )
        wait_http(f"{self.url}/-/ready", self.process, log)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[list[Peer]]:
    started = [Peer(tmp_path / "am-one"), Peer(tmp_path / "am-two")]
    try:
        for peer in started:
            peer.start()
        yield started
    finally:
        for peer in started:
            peer.stop()


async def pool_alerts(peer: Peer) -> list[dict[str, Any]]:
    """The active pool alerts Alertmanager lists (a resolved alert is no longer listed)."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"{peer.url}/api/v2/alerts", params={"filter": f'alertname="{ALERT}"'}
        )
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


async def wait_alerts(peer: Peer, predicate: Any, deadline: float = 30) -> list[dict[str, Any]]:
    """Poll the API until `predicate(alerts)` holds; that answer (which may be no alerts)."""
    seen: list[list[dict[str, Any]]] = []

    async def answered() -> tuple[list[dict[str, Any]]] | None:
        seen.append(await pool_alerts(peer))
        return (seen[-1],) if predicate(seen[-1]) else None

    (alerts,) = await eventually(
        answered, lambda: f"alerts as wanted; last: {seen[-1:]}", deadline, 0.3
    )
    return alerts


def ends_at(alert: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))


def daemon_env(pg: PgServer, tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "POOLWATCH_POSTGRES_DSN": pg.dsn(),
        "POSTGRES_CONN_WARNING": "5",
        "POOLWATCH_INTERVAL": "1s",
        "POOLWATCH_HOST_STATS": "off",
        "POOLWATCH_DOCKER": "off",
        "POOLWATCH_STATE_DIR": str(tmp_path / "state"),
        **more,
    }


def started(line: dict[str, Any]) -> bool:
    return line.get("event") == "started"


async def test_pool_alert_fires_then_resolves_in_alertmanager(
    pg: PgServer, load: Load, peers: list[Peer], tmp_path: Path
) -> None:
    peer = peers[0]
    env = daemon_env(pg, tmp_path, POOLWATCH_ALERTMANAGER_URL=peer.url)
    with Daemon(env) as daemon:
        daemon.wait_for(started)
        await load.open(8)
        (alert,) = await wait_alerts(peer, lambda alerts: len(alerts) == 1)
        assert alert["status"]["state"] == "active"
        assert alert["labels"] == {
            "alertname": ALERT,
            "severity": "warning",
            "instance": "main",
            "source": "postgres",
            "check": "connections",
            "team": "database",
        }
        assert alert["annotations"]["description"].startswith("PostgreSQL main:")
        # valid for 4 minutes (4 x resend_interval 1m): disappearing sooner is a resolution
        assert ends_at(alert) > datetime.now(UTC) + timedelta(minutes=3)
        await load.close()
        await wait_alerts(peer, lambda alerts: not alerts)
        daemon.wait_for(lambda line: line.get("event") == "alert_resolved")


async def test_every_peer_is_sent_the_alert_and_a_restarted_one_gets_it_again(
    pg: PgServer, load: Load, peers: list[Peer], tmp_path: Path
) -> None:
    one, two = peers
    config = tmp_path / "poolwatch.yaml"
    config.write_text(
        "alertmanager:\n"
        f"  urls: [{one.url}, {two.url}]\n"
        "  resend_interval: 1s\n"
        "  retry_initial: 100ms\n"
        "  retry_max: 1s\n"
    )
    with Daemon(daemon_env(pg, tmp_path, POOLWATCH_CONFIG=str(config))) as daemon:
        daemon.wait_for(started)
        await load.open(8)
        for peer in peers:
            await wait_alerts(peer, lambda alerts: len(alerts) == 1)

        two.stop()
        (before,) = await pool_alerts(one)
        # `one` keeps being sent the alert (its endsAt moves on) while `two` is down
        await wait_alerts(one, lambda alerts: alerts and ends_at(alerts[0]) > ends_at(before))

        two.start()  # a new process: Alertmanager keeps no alerts across a restart
        (again,) = await wait_alerts(two, lambda alerts: len(alerts) == 1)
        assert again["labels"]["team"] == "database"
        assert daemon.proc.poll() is None
