"""The durable HTTP sink's shared parts (poolwatch.sinks.durable.sink): one stats type for both
HTTP sinks, and a periodic task that outlives a failing round. The client is httpx's
MockTransport: these tests are about the skeleton, not a receiver (tests/webhook/receiver.py
and tests/test_alertmanager.py talk to real or recorded ones)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from structlog.testing import capture_logs

from poolwatch.sinks.alertmanager.settings import AlertmanagerSettings
from poolwatch.sinks.alertmanager.sink import AlertmanagerSink
from poolwatch.sinks.durable.delivery import Delivered, DeliveryStats, Outcome
from poolwatch.sinks.durable.queue import Item
from poolwatch.sinks.durable.sink import DurableHttp
from poolwatch.sinks.webhook.settings import WebhookSettings
from poolwatch.sinks.webhook.sink import WebhookSink


async def _delivered(_item: Item) -> Outcome:
    return Delivered()


def _ok(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


async def test_both_http_sinks_report_one_stats_type(tmp_path: Path) -> None:
    webhook = WebhookSink(
        WebhookSettings.model_validate({"name": "hook", "url": "http://hook/"}), tmp_path
    )
    alertmanager = AlertmanagerSink(
        AlertmanagerSettings.model_validate({"urls": ["http://am:9093"]}),
        "http://am:9093",
        tmp_path,
        transport=httpx.MockTransport(_ok),
    )
    for sink in (webhook, alertmanager):
        await sink.start()
        try:
            stats = sink.stats()
            assert isinstance(stats, DeliveryStats)
            assert stats.sink == sink.name
            assert set(stats.numbers()) <= set(sink.metrics())
        finally:
            await sink.close(1)
    assert set(alertmanager.metrics()) - set(webhook.metrics()) == {
        "alerts_firing",
        "alerts_resolved",
    }


async def test_the_timer_outlives_a_failing_round(tmp_path: Path) -> None:
    rounds: list[int] = []
    again = asyncio.Event()

    async def tick() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("a bug in one round")
        again.set()

    parts = DurableHttp(
        "test:timer",
        tmp_path / "q.sqlite3",
        _delivered,
        lambda: httpx.AsyncClient(transport=httpx.MockTransport(_ok)),
        WebhookSettings.model_validate({"name": "timer", "url": "http://hook/"}),
    )
    await parts.start()
    try:
        with capture_logs() as logs:
            parts.every(0.01, tick, at_once=True)
            async with asyncio.timeout(10):
                await again.wait()
        assert [line["event"] for line in logs if line["log_level"] == "warning"] == [
            "timer_failed"
        ]
    finally:
        await parts.close(1)
    assert parts.client is not None
    assert parts.client.is_closed
