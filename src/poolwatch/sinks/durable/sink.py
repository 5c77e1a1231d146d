"""What every durable HTTP sink (webhook, Alertmanager) is built of: a write-ahead queue, the
delivery loop that drains it, one pooled client, and one periodic task (the webhook's heartbeat,
Alertmanager's re-send), started and stopped together, with one stats type (`DeliveryStats`).

Composed, not inherited: a sink holds a `DurableHttp` and adds what is its own (the payload,
signing, the alert book), so each sink's module says only how it differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import httpx

from poolwatch.core.backoff import Backoff
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sinks import SinkError
from poolwatch.sinks.durable.delivery import DeliverOne, DeliveryLoop, DeliveryStats
from poolwatch.sinks.durable.queue import DurableQueue, QueueError


class Durability(Protocol):
    """The settings every durable sink has (webhook, Alertmanager): its queue's bounds and its
    retry curve."""

    @property
    def max_queue(self) -> int: ...

    @property
    def max_age(self) -> float: ...

    @property
    def retry_initial(self) -> float: ...

    @property
    def retry_max(self) -> float: ...


Tick = Callable[[], Awaitable[None]]
"""One round of a sink's periodic task; it handles its own failures (logged, tried next time)."""

MakeLoop = Callable[[DurableQueue, DeliverOne, Backoff], DeliveryLoop]
"""How a sink's delivery loop is made: `DeliveryLoop` on the real clocks, or (a test) one with a
fake clock's `monotonic`, `wall` and `sleep` bound in, so that its backoffs run on that clock."""


class DurableHttp:
    """One sink's queue, loop, client and timer: `start()`, `put()`, `close()`, `stats()`."""

    def __init__(
        self,
        name: str,
        path: Path,
        deliver: DeliverOne,
        client: Callable[[], httpx.AsyncClient],
        settings: Durability,
        *,
        make_loop: MakeLoop = DeliveryLoop,
    ) -> None:
        self.name = name
        self.queue = DurableQueue(
            path, name, max_items=settings.max_queue, max_age=settings.max_age
        )
        backoff = Backoff(settings.retry_initial, settings.retry_max)
        self.loop = make_loop(self.queue, deliver, backoff)
        self.client: httpx.AsyncClient | None = None
        """Set by `start()`; a sink's `deliver` retries while it is None."""
        self._make_client = client
        self._timer: asyncio.Task[None] | None = None
        self._log = get_logger(sink=name)

    async def start(self) -> None:
        """Open the queue and the client, start the loop; SinkError (one line) if either fails."""
        try:
            await self.queue.open()
            self.client = self._make_client()
        except (SinkError, QueueError, OSError, TimeoutError) as exc:
            await self.queue.close()
            raise SinkError(f"sink {self.name}: {one_line(exc)}") from None
        self.loop.start()

    def every(self, interval: float, tick: Tick, *, at_once: bool) -> None:
        """Run `tick` every `interval` seconds until `close()`; the first at once or after one
        interval."""
        self._timer = asyncio.create_task(
            self._every(interval, tick, at_once), name=f"timer-{self.name}"
        )

    async def put(self, key: str, body: bytes) -> None:
        """Store one item (durable when it returns) and wake the loop."""
        await self.queue.put(key, body)
        self.loop.notify()

    async def close(self, grace: float) -> None:
        """Stop the timer, deliver within `grace` what can be, close the client and the queue."""
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None
        await self.loop.stop(grace)
        if self.client is not None:
            await self.client.aclose()
        await self.queue.close()

    def stats(self) -> DeliveryStats:
        return self.loop.stats()

    async def _every(self, interval: float, tick: Tick, at_once: bool) -> None:
        if not at_once:
            await asyncio.sleep(interval)
        while True:
            try:
                await tick()
            except Exception as exc:  # a tick's own bug must not end the timer
                self._log.warning("timer_failed", reason=one_line(exc, named=True))
            await asyncio.sleep(interval)
