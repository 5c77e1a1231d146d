"""Following the engine's event stream: subscribe, hand each new event over, notice the engine
going away and coming back, resubscribe with backoff where the last subscription stopped. The
collector (`EventHandler`) decides what an event means for its readings; events.py says what an
item of the stream is and which ones are new.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

from poolwatch.core.backoff import Backoff
from poolwatch.core.model import UP_CHECK, Reading
from poolwatch.logs import get_logger
from poolwatch.sources import Publish
from poolwatch.sources.docker.engine import CONNECTED, EventSkipped, EventStream, StreamEnded
from poolwatch.sources.docker.events import ContainerEvent, Resume

RECONNECT_MIN, RECONNECT_MAX = 0.5, 5.0
PING_EVERY = 5.0
"""While subscribed, the engine is pinged this often: `/events` sends nothing while nothing
happens, so a silent stream cannot tell a quiet engine from a hung one (stopped, deadlocked)."""
REASON_CHARS = 200
"""Engine errors can quote whole API answers: a reason keeps their first 200 characters."""


class EventHandler(Protocol):
    source: str
    instance: str
    timeout: float
    """How long the engine may take to accept a subscription."""
    connected: asyncio.Event
    resume: Resume
    """Kept by the handler, so that a new `follow` (after a reload) resumes where the last
    one stopped."""

    def on_event(self, event: ContainerEvent) -> Sequence[Reading]:
        """The readings one new event of a container changes."""
        ...

    async def probe(self) -> bool:
        """Does the engine answer?"""
        ...

    def reason(self, exc: BaseException) -> str:
        """One line saying why the engine could not be used."""
        ...


def _reason(handler: EventHandler, exc: BaseException | None) -> str:
    return "the event stream closed" if exc is None else handler.reason(exc)


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
    stream.open(handler.resume.since())
    connected = False
    error: BaseException | None = None
    keepalive: asyncio.Task[None] | None = None
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
            keepalive = asyncio.create_task(_keepalive(stream, handler))
            async for item in items:
                if isinstance(item, StreamEnded):
                    error = item.error
                    break
                if isinstance(item, EventSkipped):
                    log.warning("docker_event_skipped", reason=item.reason, skipped=stream.skipped)
                elif isinstance(item, dict):
                    event = ContainerEvent.parse(item)
                    if handler.resume.fresh(event) and event.container_id:
                        found = handler.on_event(event)
                        if found:
                            await publish(found)
    except TimeoutError:
        error = TimeoutError(f"no answer within {timeout:g}s")
    finally:
        if keepalive is not None:
            keepalive.cancel()
        handler.connected.clear()
        stream.abandon()
        with contextlib.suppress(Exception):
            await items.aclose()
    log.warning("docker_events_lost", reason=_reason(handler, error), dropped=stream.dropped)
    if not await handler.probe():
        await publish(_up(handler, 0, f"Docker engine unreachable: {_reason(handler, error)}"))
    return connected


async def _keepalive(stream: EventStream, handler: EventHandler) -> None:
    """Ping the engine every PING_EVERY s; one ping without an answer within the timeout ends
    the subscription (StreamEnded with the reason), and `follow` subscribes again once the
    engine answers."""
    timeout = handler.timeout
    while True:
        await asyncio.sleep(PING_EVERY)
        try:
            async with asyncio.timeout(timeout):
                await stream.ping()
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"the engine did not answer a ping within {timeout:g}s")
            stream.abandon(exc)
            return
