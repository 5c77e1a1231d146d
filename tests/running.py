"""The daemon's own loop (`Runner.run`) over one real collector, in the test's process, with a
sink that keeps every event: for tests that need real time to pass (a login probe that times out,
a server that recovers) yet want to look at what each poll read (`runner.pipeline.latest`).

Waits are bounded: an event is awaited under a deadline, a condition polled with one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Reading
from poolwatch.runtime.pipeline import owner_of
from poolwatch.runtime.runner import Runner
from poolwatch.sources import Collector
from tests.eventually import eventually
from tests.recording import RecordingSink


class Running:
    """`async with Running(collector) as daemon`: the runner polls until the block ends."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.sink = RecordingSink()  # validates every event against the schema
        self.runner = Runner([collector], [self.sink], Evaluator("test-host"))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def latest(self, check: str) -> Reading | None:
        """The last reading of an unlabelled check (None while there is none)."""
        found = self.runner.pipeline.latest.get(owner_of(self.collector), {})
        return next((r for r in found.values() if r.check == check and not r.labels), None)

    def reading(self, check: str) -> Reading:
        found = self.latest(check)
        assert found is not None, f"no {check} reading yet"
        return found

    async def until(self, what: str, condition: Callable[[], bool], deadline: float) -> None:
        await eventually(condition, f"{what}; {self.sink.events}", within=deadline, every=0.05)

    async def __aenter__(self) -> Running:
        self._task = asyncio.create_task(self.runner.run(self._stop))
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)
