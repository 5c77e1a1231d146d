"""The webhook heartbeat as a dead man's switch: a real webhook sink and receiver, a real
runner whose collector loop hangs (a driver that swallows cancellation): no heartbeat is sent
while it hangs, and they resume when it turns again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from poolwatch.config.rules import Rules
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Reading
from poolwatch.runtime.deadman import Pulse
from poolwatch.runtime.runner import Runner
from poolwatch.runtime.view import RuntimeView
from poolwatch.sinks.webhook.settings import WebhookSettings
from poolwatch.sinks.webhook.sink import WebhookSink
from tests.eventually import eventually
from tests.net import free_port
from tests.stack.test_silences import SCHEMAS
from tests.webhook.conftest import SECRET
from tests.webhook.receiver import Receiver

pytestmark = pytest.mark.integration


class Hangable:
    """Answers at once, until `hang` is set: then `collect` never returns, whatever cancels
    it, so the runner's loop for it stops turning (what a wedged driver does)."""

    source = "fake"
    instance = "a"
    interval = 0.1
    timeout = 0.1
    rules: Rules = {}  # noqa: RUF012 - the Collector protocol's attribute

    def __init__(self) -> None:
        self.hang = False
        self.released = asyncio.Event()

    async def collect(self) -> Sequence[Reading]:
        while self.hang and not self.released.is_set():
            try:
                await self.released.wait()
            except asyncio.CancelledError:
                continue
        return []

    async def close(self) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port())
    server.start()
    yield server
    server.stop()


def beats(receiver: Receiver) -> list[dict[str, object]]:
    verifier = Webhook(SECRET)
    found = []
    for request in receiver.answered():
        body = verifier.verify(request.body, request.headers)
        if body["schema"] == "poolwatch.heartbeat/v1":
            SCHEMAS["poolwatch.heartbeat/v1"].validate(body)
            found.append(body)
    return found


async def test_heartbeats_stop_while_a_collector_hangs(receiver: Receiver, tmp_path: Path) -> None:
    collector = Hangable()
    hook = WebhookSettings.model_validate(
        {"name": "audit", "url": receiver.url, "secret": SECRET, "heartbeat": "200ms"}
    )
    made: list[WebhookSink] = []

    def sinks(view: RuntimeView) -> list[WebhookSink]:
        made.append(WebhookSink(hook, tmp_path, heartbeat=Pulse(view, "test", "0").heartbeat))
        return made

    runner = Runner([collector], sinks, Evaluator("test"))
    (sink,) = made
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: len(beats(receiver)) >= 2, within=60)
        assert json.loads(receiver.answered()[0].body)["collectors"][0]["source"] == "fake"

        collector.hang = True
        await eventually(lambda: sink.heartbeats["heartbeats_withheld"] >= 1, within=60)
        await eventually(lambda: sink.stats().depth == 0, within=60)
        sent, received = sink.heartbeats["heartbeats_sent"], len(beats(receiver))
        withheld = sink.heartbeats["heartbeats_withheld"]
        # three more heartbeat intervals, each decided "withheld": nothing was sent meanwhile
        await eventually(lambda: sink.heartbeats["heartbeats_withheld"] >= withheld + 3, within=60)
        assert sink.heartbeats["heartbeats_sent"] == sent
        assert sink.stats().depth == 0
        assert len(beats(receiver)) == received

        collector.released.set()  # the loop turns again: so do the heartbeats
        await eventually(lambda: len(beats(receiver)) > received, within=60)
        assert sink.metrics()["heartbeats_sent"] > sent
    finally:
        collector.released.set()
        stop.set()
        await task
