"""The daemon's own loop (`Runner.run`) over one real collector, in the test's process, with a
sink that keeps every event: for tests that need real time to pass (a login probe that times out,
a server that recovers) yet want to look at what each poll read (`runner.latest`).

Waits are bounded: an event is awaited under a deadline, a condition polled with one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Event, Reading
from poolwatch.runtime.scheduler import Runner, owner_of
from poolwatch.sources import Collector


class Events:
    """A sink that keeps the events it is sent, schema-validated when given a validator."""

    name = "events"

    def __init__(self, validate: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.events: list[Event] = []
        self.validate = validate
        self._changed = asyncio.Event()

    async def start(self) -> None:
        return None

    async def send(self, event: Event) -> None:
        if self.validate is not None:
            self.validate(event.to_dict())
        self.events.append(event)
        self._changed.set()

    async def close(self, grace: float) -> None:
        return None

    def of(self, alert: str, status: str) -> list[Event]:
        return [e for e in self.events if e.alert == alert and e.status == status]

    async def wait_for(self, alert: str, status: str, deadline: float) -> Event:
        """The first event of `alert` with `status`, waiting at most `deadline` seconds."""
        try:
            async with asyncio.timeout(deadline):
                while not self.of(alert, status):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"no {alert} {status} within {deadline:g}s; events: {self.events}"
            ) from None
        return self.of(alert, status)[0]


class Running:
    """`async with Running(collector) as daemon`: the runner polls until the block ends."""

    def __init__(
        self, collector: Collector, validate: Callable[[dict[str, Any]], Any] | None = None
    ) -> None:
        self.collector = collector
        self.sink = Events(validate)
        self.runner = Runner([collector], [self.sink], Evaluator("test-host"))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def latest(self, check: str) -> Reading | None:
        """The last reading of an unlabelled check (None while there is none)."""
        found = self.runner.latest.get(owner_of(self.collector), {})
        return next((r for r in found.values() if r.check == check and not r.labels), None)

    def reading(self, check: str) -> Reading:
        found = self.latest(check)
        assert found is not None, f"no {check} reading yet"
        return found

    async def until(self, what: str, condition: Callable[[], bool], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while not condition():
            if loop.time() > end:
                raise AssertionError(f"not within {deadline:g}s: {what}; {self.sink.events}")
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> Running:
        self._task = asyncio.create_task(self.runner.run(self._stop))
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)
