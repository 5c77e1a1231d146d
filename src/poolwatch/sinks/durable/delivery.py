"""The delivery loop: drain a `DurableQueue` in order through a "deliver one item" callable.

Protocol-agnostic on purpose: the webhook sink plugs in an HTTP POST, the Alertmanager sink
(issue 8) will plug in its own. The callable reports an `Outcome`; the loop does the rest:

    Delivered  -> remove the item, go on with the next
    Retry      -> keep it at the head, wait (backoff, or the server's Retry-After), try again
    Reject     -> move it to the dead-letter table, log an error, go on with the next

An item leaves the queue only on Delivered or Reject, so a crash at any point re-sends at most the
item that was in flight (at-least-once).

Its time is injected (`monotonic`, `wall`, `sleep`): every wait goes through `sleep`, so a test
drives backoffs and the shutdown deadline on a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from poolwatch.core.backoff import Backoff
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.sinks.durable.queue import DurableQueue, Item

_EXPIRE_EVERY = 60.0
"""Seconds between max-age sweeps of the queue while it is being worked on."""


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str
    status: int | None = None
    response: str = ""


Outcome = Delivered | Retry | Reject
DeliverOne = Callable[[Item], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """A snapshot for logs and the metrics endpoint: cheap to take, never touches the disk."""

    sink: str
    depth: int
    oldest_age_seconds: float | None
    delivered: int
    failures: int
    dead_lettered: int
    dropped: int
    last_error: str | None
    last_error_at: float | None
    last_delivered_at: float | None

    def numbers(self) -> dict[str, float]:
        """The counters and gauges, for the metrics endpoint (`poolwatch_sink_<key>{sink}`)."""
        return {
            "queue_depth": self.depth,
            "oldest_age_seconds": self.oldest_age_seconds or 0.0,
            "delivered": self.delivered,
            "failures": self.failures,
            "dead_lettered": self.dead_lettered,
            "dropped": self.dropped,
        }


class DeliveryLoop:
    """One task per sink: head of the queue → deliver → remove / retry / dead-letter."""

    def __init__(
        self,
        queue: DurableQueue,
        deliver: DeliverOne,
        backoff: Backoff,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.queue = queue
        self.deliver = deliver
        self.backoff = backoff
        self._monotonic, self._wall, self._sleep = monotonic, wall, sleep
        self.delivered = 0
        self.failures = 0
        self.dead_lettered = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_delivered_at: float | None = None
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._stopping = asyncio.Event()
        self._deadline: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger(sink=queue.name)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"deliver-{self.queue.name}")

    def notify(self) -> None:
        """A new item is queued: wake the loop if it idles (a backoff wait is not cut short)."""
        self._wake.set()

    def stats(self) -> DeliveryStats:
        age = self.queue.oldest_age()
        return DeliveryStats(
            sink=self.queue.name,
            depth=self.queue.depth,
            oldest_age_seconds=None if age is None else round(age, 3),
            delivered=self.delivered,
            failures=self.failures,
            dead_lettered=self.dead_lettered,
            dropped=self.queue.dropped,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            last_delivered_at=self.last_delivered_at,
        )

    async def stop(self, grace: float) -> None:
        """Deliver within `grace` what can be; give up early if the next retry is past it.

        Whatever is left (including an item whose POST was cut off) stays queued for the next start.
        """
        if self._task is None:
            return
        self._deadline = self._monotonic() + grace
        self._stopping.set()
        self._wake.set()
        await self._until(self._settled, grace)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        stats = self.stats()
        log = self._log.info if stats.depth == 0 else self._log.warning
        log("delivery_stopped", depth=stats.depth, oldest_age_seconds=stats.oldest_age_seconds)

    # --- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        next_expire = self._monotonic() + _EXPIRE_EVERY
        # an answer the queue could not yet record: settled again (with backoff) before anything
        # is sent, never re-POSTed (a full or read-only disk would otherwise turn one 2xx into a
        # storm of duplicates)
        unsettled: tuple[Item, Delivered | Reject] | None = None
        try:
            while True:
                try:
                    if unsettled is not None:
                        await self._settle(*unsettled)
                        unsettled = None
                        self._log.info("delivery_recovered", attempts=failures + 1)
                        failures = 0
                        continue
                    if self._monotonic() >= next_expire:
                        next_expire = self._monotonic() + _EXPIRE_EVERY
                        await self.queue.expire()
                    self._wake.clear()  # before head(): a put during it still wakes _idle
                    item = await self.queue.head()
                    if item is None:
                        if self._deadline is not None:
                            return
                        await self._idle()
                        continue
                    outcome = await self._attempt(item)
                    if isinstance(outcome, Retry):
                        failures += 1
                        delay = self.backoff.delay(failures, outcome.retry_after)
                        self._failed(item.key, outcome.reason, failures, delay)
                        if not await self._pause(delay):
                            return
                        continue
                    unsettled = (item, outcome)
                    await self._settle(item, outcome)
                    unsettled = None
                    if failures:
                        self._log.info(
                            "delivery_recovered", attempts=failures + 1, depth=self.queue.depth
                        )
                    failures = 0
                except Exception as exc:  # the disk failed: items stay queued; try again later
                    failures += 1
                    delay = self.backoff.delay(failures)
                    self._failed(None, f"queue: {one_line(exc, named=True)}", failures, delay)
                    if not await self._pause(delay):
                        return
        finally:
            self._settled.set()

    async def _idle(self) -> None:
        await self._until(self._wake, _EXPIRE_EVERY)

    async def _until(self, event: asyncio.Event, seconds: float) -> None:
        """Wait until `event` is set, or `seconds` of the injected clock have passed."""
        if event.is_set():
            return
        setting = asyncio.ensure_future(event.wait())
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait((setting, sleeping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (setting, sleeping):
                task.cancel()
            await asyncio.gather(setting, sleeping, return_exceptions=True)

    async def _settle(self, item: Item, outcome: Delivered | Reject) -> None:
        if isinstance(outcome, Reject):
            await self._reject(item, outcome)
            return
        await self.queue.remove(item)
        self.delivered += 1
        self.last_delivered_at = self._wall()

    async def _attempt(self, item: Item) -> Outcome:
        try:
            return await self.deliver(item)
        except Exception as exc:  # a bug in a deliver callable must not drop the item
            return Retry(one_line(exc, named=True))

    async def _pause(self, delay: float) -> bool:
        """Sleep before a retry; False when shutting down and the retry would miss the deadline.

        A stop during the sleep is noticed at once, so a long backoff never holds up shutdown.
        """
        until = self._monotonic() + delay
        if self._deadline is None:
            await self._until(self._stopping, delay)
        if self._deadline is not None and until > self._deadline:
            return False
        await self._sleep(max(0.0, until - self._monotonic()))
        return True

    def _failed(self, key: str | None, reason: str, failures: int, delay: float) -> None:
        self.failures += 1
        self.last_error = reason
        self.last_error_at = self._wall()
        age = self.queue.oldest_age()
        self._log.warning(
            "delivery_failed",
            item=key,
            attempt=failures,
            reason=reason,
            retry_in_seconds=round(delay, 3),
            depth=self.queue.depth,
            oldest_age_seconds=None if age is None else round(age, 3),
        )

    async def _reject(self, item: Item, outcome: Reject) -> None:
        await self.queue.dead_letter(item, outcome.status, outcome.reason, outcome.response)
        self.dead_lettered += 1
        self.last_error = outcome.reason
        self.last_error_at = self._wall()
        self._log.error(
            "delivery_rejected",
            item=item.key,
            status=outcome.status,
            reason=outcome.reason,
            response=outcome.response[:200],
            depth=self.queue.depth,
        )
