"""The poll loops: one asyncio task per collector on its own interval (and one more for a
collector that also watches), with the clock and `sleep` injected so tests run them on a fake
clock.

A slow collector only delays itself: its overrun ticks are skipped with a warning. What a tick
does (collect, evaluate, deliver) is the pipeline's; this part only keeps time and tasks.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from poolwatch.core.model import Reading
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.runtime.pipeline import owner_of
from poolwatch.sources import Collector, Watcher


class Ticks(Protocol):
    """What one tick of a loop does (the pipeline)."""

    async def poll(self, collector: Collector) -> list[Reading]: ...

    async def handle(self, collector: Collector, readings: Sequence[Reading]) -> None: ...

    async def publish(self, collector: Collector, readings: Sequence[Reading]) -> None: ...

    def turned(self, owner: str) -> None: ...

    def overran(self, owner: str, skipped: int) -> None: ...


class Scheduler:
    """Starts and stops the loops of the collectors it is given; `running` once `begin` ran."""

    def __init__(
        self,
        ticks: Ticks,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._ticks = ticks
        self._monotonic = monotonic
        self._sleep = sleep
        self._tasks: dict[str, list[asyncio.Task[Any]]] = {}
        self.running = False
        self._log = get_logger()

    def begin(self, collectors: Sequence[Collector]) -> None:
        """Start every loop; collectors added later (a reload) start at once."""
        self.running = True
        for collector in collectors:
            self.start(collector)

    def start(self, collector: Collector) -> None:
        owner = owner_of(collector)
        tasks = [asyncio.create_task(self._poll_loop(collector), name=owner)]
        if isinstance(collector, Watcher):
            tasks.append(asyncio.create_task(self._watch(collector, collector), name=owner))
        for task in tasks:
            task.add_done_callback(self._report_crash)
        self._tasks[owner] = tasks

    async def stop(self, owner: str) -> None:
        """End one collector's loops (a reload retired it)."""
        await _cancel(self._tasks.pop(owner, []))

    async def stop_all(self) -> None:
        tasks = [task for group in self._tasks.values() for task in group]
        self._tasks.clear()
        self.running = False
        await _cancel(tasks)

    async def _poll_loop(self, collector: Collector) -> None:
        owner = owner_of(collector)
        next_tick = self._monotonic()
        while True:
            readings = await self._ticks.poll(collector)
            await self._ticks.handle(collector, readings)
            self._ticks.turned(owner)
            next_tick += collector.interval
            now = self._monotonic()
            if now > next_tick:
                skipped = math.ceil((now - next_tick) / collector.interval)
                next_tick += skipped * collector.interval
                self._ticks.overran(owner, skipped)
                self._log.warning(
                    "poll_overrun",
                    source=collector.source,
                    instance=collector.instance,
                    skipped_ticks=skipped,
                    interval=collector.interval,
                )
            await self._sleep(next_tick - now)

    async def _watch(self, collector: Collector, watcher: Watcher) -> None:
        async def publish(readings: Sequence[Reading]) -> None:
            await self._ticks.publish(collector, readings)

        await watcher.watch(publish)

    def _report_crash(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.error(
                "task_crashed",
                task=task.get_name(),
                reason=one_line(task.exception() or Exception(), timeout=0, named=True),
            )


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
