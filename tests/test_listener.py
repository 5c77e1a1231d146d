"""/metrics, /healthz and /readyz over real HTTP, from a runner polling the real host."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from poolwatch.config.load import load
from poolwatch.core.evaluate import Evaluator
from poolwatch.runtime.health import liveness, readiness
from poolwatch.runtime.listener import Listener, parse_listen
from poolwatch.runtime.metrics import registry_for
from poolwatch.runtime.plan import build_sinks
from poolwatch.runtime.runner import Runner
from poolwatch.sources.host.collector import HostCollector
from tests.eventually import eventually


@pytest.fixture
async def served() -> AsyncIterator[tuple[Runner, str, asyncio.Event]]:
    config = load(None, {"POOLWATCH_INTERVAL": "200ms", "CPU_WARNING": "0", "CPU_CRITICAL": "off"})
    runner = Runner([HostCollector(config.host)], [], Evaluator("test"))
    listener = Listener(
        "127.0.0.1:0",
        registry_for(runner.view, lambda: list(runner.sinks)),
        lambda: liveness(runner.view),
        lambda: readiness(runner.view),
    )
    await listener.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    yield runner, f"http://127.0.0.1:{listener.port}", stop
    stop.set()
    await task
    await listener.close()


async def wait_ready(client: httpx.AsyncClient, base: str) -> None:
    async def ready() -> bool:
        return (await client.get(f"{base}/readyz")).status_code == 200

    await eventually(ready, "/readyz ready", 10, 0.05)


async def test_metrics_show_the_latest_readings_and_alerts(
    served: tuple[Runner, str, asyncio.Event],
) -> None:
    runner, base, _ = served
    async with httpx.AsyncClient(timeout=5) as client:
        await wait_ready(client, base)
        response = await client.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    (host,) = runner.pipeline.latest.values()
    memory = next(r for r in host.values() if r.check == "memory_percent")
    key = ("poolwatch_host_memory_percent", (("target", memory.instance),))
    assert samples[key] == memory.value
    active = [k for k in samples if k[0] == "poolwatch_alert_active"]
    assert any(("alert", "HighCPUUsage") in labels for _, labels in active)  # CPU_WARNING=0
    assert (
        samples[("poolwatch_polls_total", (("source", "host"), ("target", memory.instance)))] >= 1
    )
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)


async def test_health_endpoints(served: tuple[Runner, str, asyncio.Event]) -> None:
    runner, base, _ = served
    async with httpx.AsyncClient(timeout=5) as client:
        await wait_ready(client, base)
        alive = await client.get(f"{base}/healthz")
        assert (alive.status_code, alive.json()["ok"]) == (200, True)
        assert (await client.get(f"{base}/nothing")).status_code == 404
        assert (await client.post(f"{base}/metrics")).status_code == 405
    # a loop that stopped turning is what makes poolwatch unhealthy
    later = time.time() + 60
    verdict = liveness(runner.view, now=later)
    assert not verdict.ok
    assert list(verdict.detail["stale_seconds"]) == [f"host:{runner.collectors[0].instance}"]


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen(":9108") == ("0.0.0.0", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)


async def test_metrics_include_each_sinks_delivery_state(tmp_path: Path) -> None:
    """The real webhook and Alertmanager sinks, as the daemon builds them, in the exposition."""
    config = load(
        None,
        {
            "POOLWATCH_WEBHOOK_URL": "http://127.0.0.1:9/hook",  # nobody listens: events wait
            "POOLWATCH_ALERTMANAGER_URL": "http://127.0.0.1:9",
            "POOLWATCH_STATE_DIR": str(tmp_path),
            "POOLWATCH_DOCKER": "off",
        },
    )
    sinks = build_sinks(config, stdout=False)
    runner = Runner([], sinks, Evaluator("test"))
    await runner.sinks.start()
    try:
        text = generate_latest(registry_for(runner.view, lambda: list(runner.sinks))).decode()
    finally:
        for sink in sinks:
            await sink.close(0.1)
    depths = {
        s.labels["sink"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "poolwatch_sink_queue_depth"
    }
    assert set(depths) == {sink.name for sink in sinks}
    assert len(depths) == 2
    assert all(value == 0 for value in depths.values())


async def test_concurrent_clients_are_capped_and_slow_ones_cut() -> None:
    """Idle connections beyond the cap wait in the backlog; each is cut at the read deadline,
    and a fresh client is answered once they are gone."""
    config = load(None, {})
    runner = Runner([HostCollector(config.host)], [], Evaluator("test"))
    listener = Listener(
        "127.0.0.1:0",
        registry_for(runner.view, lambda: list(runner.sinks)),
        lambda: liveness(runner.view),
        lambda: readiness(runner.view),
        max_clients=4,
        read_timeout=0.5,
    )
    await listener.start()
    idle = [
        await asyncio.open_connection("127.0.0.1", listener.port) for _ in range(10)
    ]  # connected: the kernel's backlog holds what the listener has not accepted
    try:
        most = 0
        cut = 0
        async with asyncio.timeout(30):
            for reader, _ in idle:
                while not reader.at_eof():
                    most = max(most, listener.clients)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await reader.read()
                cut += 1
        assert cut == len(idle)
        assert most == 4
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"http://127.0.0.1:{listener.port}/healthz")).status_code in (
                200,
                503,
            )
    finally:
        for _, writer in idle:
            writer.close()
        await listener.close()
