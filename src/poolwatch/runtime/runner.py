"""The daemon's runtime, assembled from its parts: the pipeline (and its sink set), the
scheduler and the reconciler; `run` takes them through start, polling and a bounded stop.

On stop: polling ends, collectors close, sinks get what is left of `shutdown_timeout`, all at
once, to deliver.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import now_utc
from poolwatch.core.mute import Gate
from poolwatch.logs import get_logger
from poolwatch.runtime.limits import LimitWatch
from poolwatch.runtime.pipeline import Pipeline, SinksOf
from poolwatch.runtime.reconciler import Reconciler
from poolwatch.runtime.scheduler import Scheduler
from poolwatch.runtime.settings import RuntimeSettings
from poolwatch.runtime.sinkset import SinkSet
from poolwatch.runtime.view import RuntimeView
from poolwatch.sinks import Sink
from poolwatch.sources import Collector


class Runner:
    """The parts, built here and never reassigned; a reload goes through `configure` and
    `reconciler.apply`."""

    def __init__(
        self,
        collectors: Sequence[Collector],
        sinks: Sequence[Sink] | SinksOf,
        evaluator: Evaluator,
        *,
        settings: RuntimeSettings | None = None,
        clock: Callable[[], datetime] = now_utc,
        gate: Gate | None = None,
        limits: LimitWatch | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings or RuntimeSettings()
        self._monotonic = monotonic
        self.pipeline = Pipeline(
            evaluator,
            sinks,
            settings=self._settings,
            clock=clock,
            gate=gate,
            limits=limits,
            monotonic=monotonic,
            wall=wall,
        )
        self.view: RuntimeView = self.pipeline
        """What metrics, health and the heartbeat may read."""
        self.sinks: SinkSet = self.pipeline.sinks
        self.scheduler = Scheduler(self.pipeline, monotonic=monotonic, sleep=sleep)
        self.reconciler = Reconciler(self.pipeline, self.scheduler, collectors)
        self._log = get_logger()

    @property
    def collectors(self) -> list[Collector]:
        return self.reconciler.collectors

    def configure(self, settings: RuntimeSettings) -> None:
        """A reload's settings: scrubbing, sampling and origins from the next poll on, the
        shutdown deadline from the next stop."""
        self._settings = settings
        self.pipeline.configure(settings)

    async def run(
        self,
        stop: asyncio.Event,
        prepare: Callable[[], Awaitable[None]] | None = None,
        wind_down: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Poll until `stop` is set, then shut down within `shutdown_timeout`. `prepare` runs
        once the sinks are open and before the first poll (the first mutes are applied),
        `wind_down` on stop before the sinks close (nothing more is announced to them)."""
        started = self._monotonic()
        self.pipeline.begin()
        await self.sinks.start()
        if prepare is not None:
            await prepare()
        self.scheduler.begin(self.reconciler.collectors)
        try:
            await stop.wait()
        finally:
            deadline = self._monotonic() + self._settings.shutdown_timeout
            if wind_down is not None:
                await wind_down()
            await self.scheduler.stop_all()
            await self._close(deadline)
            self._log.info("stopped", uptime_seconds=round(self._monotonic() - started, 3))

    async def shutdown(self) -> None:
        """Close collectors, then give the sinks what is left of `shutdown_timeout`."""
        await self._close(self._monotonic() + self._settings.shutdown_timeout)

    async def _close(self, deadline: float) -> None:
        await self.reconciler.close()
        await self.sinks.close(deadline)
