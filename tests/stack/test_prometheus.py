"""A real Prometheus scrapes a real poolwatch daemon; values come back through its query API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.daemon import Daemon
from tests.eventually import eventually_sync
from tests.net import free_port
from tests.postgres.pgserver import Load, PgServer, client_backends, wait_for_count


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def wait_query(prometheus_url: str, expr: str, deadline: float = 30) -> list[dict[str, Any]]:
    """The first non-empty result of `expr`; on failure, the poolwatch series Prometheus has."""

    def series() -> str:
        seen = query(prometheus_url, '{__name__=~"poolwatch_.+"}')
        return f"{expr} returned something; series: {seen[:40]}"

    found: list[dict[str, Any]] = eventually_sync(
        lambda: query(prometheus_url, expr), series, deadline, 0.5
    )
    return found


@pytest.mark.integration
def test_prometheus_scrapes_poolwatch(prometheus_factory: Any) -> None:
    port = free_port()
    with Daemon(
        {
            "POOLWATCH_LISTEN": f"127.0.0.1:{port}",
            "POOLWATCH_INTERVAL": "1s",
            "POOLWATCH_LOG_FORMAT": "json",
        }
    ) as daemon:
        daemon.wait_for(lambda line: line.get("event") == "started")
        prometheus = prometheus_factory([f"127.0.0.1:{port}"])
        (up,) = wait_query(prometheus.url, 'up{job="poolwatch"} == 1')
        assert up["metric"]["instance"] == f"127.0.0.1:{port}"
        (host_up,) = wait_query(prometheus.url, "poolwatch_host_up")
        assert host_up["value"][1] == "1"
        disks = wait_query(prometheus.url, "poolwatch_host_disk_percent")
        assert all(0 <= float(d["value"][1]) <= 100 for d in disks)
        assert {d["metric"]["fstype"] for d in disks}


@pytest.mark.integration
async def test_prometheus_returns_the_postgresql_connection_count(
    prometheus_factory: Any, pg: PgServer, load: Load
) -> None:
    port = free_port()
    env = {
        "POOLWATCH_LISTEN": f"127.0.0.1:{port}",
        "POOLWATCH_INTERVAL": "500ms",
        "POOLWATCH_POSTGRES_DSN": pg.dsn(),
        "POOLWATCH_HOST_STATS": "off",
    }
    await load.open(12)
    with Daemon(env) as daemon:
        daemon.wait_for(lambda line: line.get("event") == "started")
        prometheus = prometheus_factory([f"127.0.0.1:{port}"])
        admin = await pg.admin()
        try:
            await wait_for_count(admin, 12 + 1 + 1)  # the load, poolwatch, this admin session
            measured = await client_backends(admin) - 1  # as poolwatch sees it: without us
        finally:
            await admin.close()
        expr = f'poolwatch_postgres_connections{{target="main"}} == {measured}'
        (series,) = wait_query(prometheus.url, expr)
        assert float(series["value"][1]) == measured == 13
        (limit,) = wait_query(prometheus.url, "poolwatch_postgres_connections_limit")
        assert float(limit["value"][1]) == 200 - 3  # max_connections - superuser_reserved
        (ratio,) = wait_query(
            prometheus.url, "poolwatch_postgres_connections / poolwatch_postgres_connections_limit"
        )
        assert float(ratio["value"][1]) == pytest.approx(13 / 197)
