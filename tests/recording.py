"""The tests' one recording sink: keeps every event it is sent, each validated first against
the published schema poolwatch.event/v1, so that every test that looks at events also proves
them valid.

It is a real `Sink` (start, send, close), not a mock: the runtime's contract is with that
protocol. `close_delay` makes a sink that is slow to close, for the shutdown deadline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from poolwatch.core.model import Event


@cache
def event_validator() -> Any:
    """The validator of schema poolwatch.event/v1, formats checked."""
    text = resources.files("poolwatch").joinpath("schema/event.v1.json").read_text()
    schema = json.loads(text)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


class RecordingSink:
    """Records events (schema-valid, or `send` raises) and the grace its `close` was given."""

    def __init__(self, name: str = "recording", *, close_delay: float = 0.0) -> None:
        self.name = name
        self.events: list[Event] = []
        self.invalid: list[tuple[Event, str]] = []
        """Events that broke the schema: not recorded, and every wait fails on them (the
        runtime swallows a sink's error, so `send` raising alone would go unseen)."""
        self.grace: float | None = None
        self.close_delay = close_delay
        self.changed = asyncio.Event()
        """Set on every event (clear it before waiting again)."""

    async def start(self) -> None:
        return None

    async def send(self, event: Event) -> None:
        try:
            event_validator().validate(event.to_dict())
        except jsonschema.ValidationError as exc:
            self.invalid.append((event, exc.message))
            self.changed.set()
            raise
        self.events.append(event)
        self.changed.set()

    def assert_valid(self) -> None:
        assert not self.invalid, f"events that break poolwatch.event/v1: {self.invalid}"

    async def close(self, grace: float) -> None:
        self.grace = grace
        await asyncio.sleep(self.close_delay)

    def of(self, alert: str, status: str) -> list[Event]:
        return [e for e in self.events if e.alert == alert and e.status == status]

    def take(self) -> list[Event]:
        """The events recorded since the last `take`."""
        taken, self.events = self.events, []
        return taken

    async def event(self, matches: Callable[[Event], bool], within: float = 30) -> Event:
        """The first recorded event that `matches`, waiting at most `within` seconds."""
        try:
            async with asyncio.timeout(within):
                while True:
                    self.assert_valid()
                    found = next((e for e in self.events if matches(e)), None)
                    if found is not None:
                        return found
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"no such event within {within:g}s: {self.events}") from None

    async def wait_for(self, alert: str, status: str, deadline: float) -> Event:
        """The first event of `alert` with `status`, waiting at most `deadline` seconds."""
        return await self.event(lambda e: e.alert == alert and e.status == status, deadline)
