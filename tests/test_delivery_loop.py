"""The durable delivery loop on a fake clock: backoff waits, the idle wake-up and the shutdown
deadline are exact, where real time made them counts after fixed sleeps.

The queue is the real sqlite `DurableQueue` in a temporary directory; the deliver callable is a
script of outcomes (the loop's contract is with that callable, not with HTTP).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from poolwatch.core.backoff import Backoff
from poolwatch.sinks.durable.delivery import Delivered, DeliveryLoop, Outcome, Retry
from poolwatch.sinks.durable.queue import DurableQueue, Item
from tests.fakeclock import FakeClock


class Script:
    """Answers each attempt with the next outcome; Delivered once the script is used up."""

    def __init__(self, clock: FakeClock, *outcomes: Outcome) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.attempts: list[tuple[float, str]] = []

    async def __call__(self, item: Item) -> Outcome:
        self.attempts.append((self.clock.monotonic(), item.key))
        return self.outcomes.pop(0) if self.outcomes else Delivered()


def most(low: float, high: float) -> float:
    """A jitter that always takes the longest delay: backoffs are exact."""
    return high


async def started(
    tmp_path: Path, script: Script, clock: FakeClock
) -> tuple[DurableQueue, DeliveryLoop]:
    queue = DurableQueue(tmp_path / "queue.sqlite", "test", max_items=100, max_age=3600)
    await queue.open()
    loop = DeliveryLoop(
        queue,
        script,
        Backoff(1.0, 60.0, rand=most),
        monotonic=clock.monotonic,
        wall=clock.wall,
        sleep=clock.sleep,
    )
    loop.start()
    await clock.parked()  # idle: the queue is empty
    return queue, loop


async def test_retries_back_off_exactly_on_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    script = Script(clock, Retry("503"), Retry("503"))
    queue, loop = await started(tmp_path, script, clock)
    t0 = clock.monotonic()
    await queue.put("a", b"{}")
    loop.notify()
    await clock.parked()  # first attempt failed: backing off 1 s
    assert [at - t0 for at, _ in script.attempts] == [0.0]
    await clock.advance(0.999)
    await clock.parked()
    assert len(script.attempts) == 1  # not before the backoff ends
    await clock.advance(0.001)
    await clock.parked()  # second attempt failed: 2 s now
    await clock.advance(2.0)
    await clock.parked()  # delivered, idle again
    assert [round(at - t0, 6) for at, _ in script.attempts] == [0.0, 1.0, 3.0]
    assert loop.stats().delivered == 1
    assert loop.stats().failures == 2
    assert loop.stats().depth == 0
    assert loop.stats().last_delivered_at == clock.wall()
    await loop.stop(1.0)
    await queue.close()


async def test_stop_gives_up_at_once_when_the_next_retry_is_past_the_deadline(
    tmp_path: Path,
) -> None:
    """A receiver asking to retry in 30 s: a stop with 5 s of grace ends now, the item kept."""
    clock = FakeClock()
    script = Script(clock, Retry("429", retry_after=30))
    queue, loop = await started(tmp_path, script, clock)
    await queue.put("a", b"{}")
    loop.notify()
    await clock.parked()  # backing off 30 s
    stopping = asyncio.create_task(loop.stop(5.0))
    await asyncio.wait_for(stopping, 5)  # bounded in real time; the fake clock never moved
    assert len(script.attempts) == 1
    assert loop.stats().depth == 1  # kept for the next start
    await queue.close()


async def test_stop_delivers_what_it_can_within_the_grace(tmp_path: Path) -> None:
    """A retry due before the deadline is made: the item is delivered during the stop."""
    clock = FakeClock()
    script = Script(clock, Retry("503"))
    queue, loop = await started(tmp_path, script, clock)
    await queue.put("a", b"{}")
    loop.notify()
    await clock.parked()  # backing off 1 s
    stopping = asyncio.create_task(loop.stop(5.0))
    await clock.parked()  # the loop noticed the stop and sleeps what is left of the 1 s
    await clock.advance(1.0)
    await asyncio.wait_for(stopping, 5)
    assert len(script.attempts) == 2
    assert loop.stats().depth == 0
    assert loop.stats().delivered == 1
    await queue.close()
