"""Sinks: where events go. `send` is quick (write or enqueue); `close` flushes by a deadline."""

from __future__ import annotations

from typing import Protocol

from poolwatch.model import Event


class Sink(Protocol):
    name: str

    async def send(self, event: Event) -> None:
        """Accept one event. Durable sinks store it before returning."""
        ...

    async def close(self, grace: float) -> None:
        """Deliver what is due within `grace` seconds, keep the rest, release resources."""
        ...
