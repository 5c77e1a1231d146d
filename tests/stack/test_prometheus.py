"""A real Prometheus scrapes a real poolwatch daemon; values come back through its query API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.daemon import Daemon
from tests.net import free_port


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def wait_query(prometheus_url: str, expr: str, deadline: float = 30) -> list[dict[str, Any]]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = query(prometheus_url, expr)
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{expr} returned nothing within {deadline}s")


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
