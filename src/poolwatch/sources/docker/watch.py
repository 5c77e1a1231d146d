"""Following the engine's event stream: subscribe, hand events over, notice the engine going away
and coming back, resubscribe with backoff. The collector (`EventHandler`) decides what an event
means; this module only keeps the subscription alive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from poolwatch.core.backoff import Backoff
from poolwatch.core.model import UP_CHECK, Reading
from poolwatch.core.reasons import one_line
from poolwatch.runtime.logs import get_logger
from poolwatch.sources import Publish
from poolwatch.sources.docker.engine import CONNECTED, EventStream, StreamEnded

RECONNECT_MIN, RECONNECT_MAX = 0.5, 5.0
REASON_CHARS = 200
"""Engine errors can quote whole API answers: a reason keeps their first 200 characters."""


class EventHandler(Protocol):
    source: str
    instance: str
    timeout: float
    """How long the engine may take to accept a subscription."""
    connected: asyncio.Event

    def since(self) -> str | None:
        """Where a new subscription resumes (None: from now)."""
        ...

    def on_event(self, event: Mapping[str, Any]) -> Sequence[Reading]:
        """The readings one event changes."""
        ...

    async def probe(self) -> bool:
        """Does the engine answer?"""
        ...


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "the event stream closed"
    return one_line(exc, limit=REASON_CHARS)


async def follow(stream: EventStream, handler: EventHandler, publish: Publish) -> None:
    """Run until cancelled: one subscription after another, backing off while the engine is away."""
    backoff = Backoff(RECONNECT_MIN, RECONNECT_MAX)
    failures = 0
    try:
        while True:
            if await _subscription(stream, handler, publish):
                failures = 0
            failures += 1
            await asyncio.sleep(backoff.delay(failures))
    finally:
        handler.connected.clear()
        stream.abandon()


def _up(handler: EventHandler, value: int, message: str | None = None) -> list[Reading]:
    return [Reading(handler.source, handler.instance, UP_CHECK, value, "bool", message=message)]


async def _subscription(stream: EventStream, handler: EventHandler, publish: Publish) -> bool:
    """One subscription, start to end; True when the engine accepted it. The engine answering
    is `up` 1; a lost stream with an engine that does not answer a ping is `up` 0 at once."""
    log = get_logger()
    timeout = handler.timeout
    stream.open(handler.since())
    connected = False
    error: BaseException | None = None
    items = stream.items()
    try:
        async with asyncio.timeout(timeout):
            first = await anext(items)
        if first is not CONNECTED:
            error = first.error if isinstance(first, StreamEnded) else None
        else:
            connected = True
            handler.connected.set()
            log.info("docker_events_connected")
            await publish(_up(handler, 1))
            async for item in items:
                if isinstance(item, StreamEnded):
                    error = item.error
                    break
                if isinstance(item, dict):
                    found = handler.on_event(item)
                    if found:
                        await publish(found)
    except TimeoutError:
        error = TimeoutError(f"no answer within {timeout:g}s")
    finally:
        handler.connected.clear()
        stream.abandon()
        with contextlib.suppress(Exception):
            await items.aclose()
    log.warning("docker_events_lost", reason=_reason(error), dropped=stream.dropped)
    if not await handler.probe():
        await publish(_up(handler, 0, f"Docker engine unreachable: {_reason(error)}"))
    return connected
