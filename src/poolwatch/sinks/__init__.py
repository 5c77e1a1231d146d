"""Sinks: where events go. `send` is quick (write or enqueue); `close` flushes by a deadline."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from poolwatch.core.model import Event
from poolwatch.core.notices import Notice


class SinkError(Exception):
    """A sink cannot start (its queue or TLS files are unusable); `str()` says which and why."""


class Sink(Protocol):
    name: str

    async def start(self) -> None:
        """Open what the sink needs and resume delivery of what an earlier run left queued."""
        ...

    async def send(self, event: Event) -> None:
        """Accept one event. Durable sinks store it before returning."""
        ...

    async def close(self, grace: float) -> None:
        """Deliver what is due within `grace` seconds, keep the rest, release resources."""
        ...


@runtime_checkable
class AuditTrail(Protocol):
    """A sink that records muted events too, marked as such (stdout): the record of what a
    silence or maintenance window kept from the receivers."""

    records_muted: bool


@runtime_checkable
class Announces(Protocol):
    """A sink that also takes notices (`poolwatch.silence/v1` audit): stdout and webhooks."""

    async def announce(self, notice: Notice) -> None:
        """Accept one notice; durable sinks store it before returning."""
        ...
