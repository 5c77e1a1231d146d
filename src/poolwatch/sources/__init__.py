"""Sources: each knows one kind of system and turns what it reads into Readings.

The contract (`Collector`) is one method that is called every interval; a collector owns its
connection, never decides severity, and reports trouble by raising `SourceError` (whose message
must be safe to log) or returning an `up` reading of 0. The runner turns any exception into data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from poolwatch.config.load import Rules
from poolwatch.core.model import Reading

Publish = Callable[[Sequence[Reading]], Awaitable[None]]
"""How a collector that is told things (Docker's event stream) hands readings over between polls."""


class SourceError(Exception):
    """A collection failed for a reason worth one readable line (the server refused, timed out)."""


@runtime_checkable
class Collector(Protocol):
    """One target of one source: `source`/`instance` name it, `rules` judge its readings."""

    source: str
    instance: str
    interval: float
    timeout: float
    rules: Rules

    async def collect(self) -> Sequence[Reading]:
        """Read everything once. Called every `interval`, under a `timeout`."""
        ...

    async def close(self) -> None:
        """Release connections; called once at shutdown."""
        ...


@runtime_checkable
class Watcher(Protocol):
    """A collector that also listens between polls (pushed events) calls `publish` itself."""

    async def watch(self, publish: Publish) -> None:
        """Run until cancelled; reconnect on errors by itself."""
        ...


@runtime_checkable
class Partial(Protocol):
    """A collector whose last poll may have seen only part of its target (PostgreSQL with a full
    pool: the count is known, the rest is not). The runner then resolves nothing as "gone"."""

    last_poll_partial: bool
