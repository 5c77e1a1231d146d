"""Sources: each knows one kind of system and turns what it reads into Readings.

The contract (`Collector`) is one method that is called every interval; a collector owns its
connection, never decides severity, and reports trouble by raising `SourceError` (whose message
must be safe to log) or returning an `up` reading of 0. The runner turns any exception into data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from poolwatch.config.fields import Frozen
from poolwatch.config.rules import Rules
from poolwatch.core.dependencies import ContainerAddress, Endpoint, Node
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

    def reconfigure(self, settings: Any) -> None:
        """Take a reload's settings of the same identity (so the same connection): rules,
        interval and timeout (and a login probe's `probe_interval`), the timeout reaching the
        collector's own I/O from the next poll."""
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


@runtime_checkable
class Intermittent(Protocol):
    """A collector some of whose checks are absent from a poll for want of data, not because
    their thing went away (Redis's hit rate while too few lookups were seen). An absent reading
    of these checks counts toward `clear_for` like a poll at OK, instead of resolving at once as
    "no longer reported"."""

    intermittent_checks: frozenset[str]


@runtime_checkable
class Connects(Protocol):
    """A collector of a server poolwatch connects to (PostgreSQL, Redis, PgBouncer): where, so
    that the container serving it is found (`core.dependencies`)."""

    depends_on: tuple[Node, ...]
    """The target's `depends_on:` (source, instance) pairs; empty: the found parents count."""

    def endpoints(self) -> Sequence[Endpoint]:
        """Where it connects, as its DSN or URL says: one per host (libpq takes several)."""
        ...

    def backends(self) -> Sequence[Endpoint]:
        """The servers behind it (PgBouncer's databases, from its last SHOW DATABASES); empty
        for a server that has none."""
        ...


@runtime_checkable
class Hosts(Protocol):
    """A collector of containers (Docker): how each watched one can be reached."""

    def addresses(self) -> Sequence[ContainerAddress]:
        """The watched containers as of the last poll, stopped ones with the addresses they
        had while they ran."""
        ...


@dataclass(frozen=True)
class Planned:
    """One collector a config asks for: who it is, what needs a new connection when it changes
    (`identity`), what may change under a running collector, and how to build it."""

    owner: str
    identity: object
    settings: Any
    """What the collector is built with; a kept collector is `reconfigure`d with it."""
    build: Callable[[], Collector]

    @property
    def rules(self) -> Rules:
        judged: _Judged = self.settings
        return judged.rules

    @property
    def interval(self) -> float:
        judged: _Judged = self.settings
        return judged.interval

    @property
    def timeout(self) -> float:
        judged: _Judged = self.settings
        return judged.timeout


class _Judged(Protocol):
    rules: Rules
    interval: float
    timeout: float


RETAKEN: dict[str, object] = {
    "rules": {},
    "interval": 0.0,
    "timeout": 0.0,
    "probe_interval": None,
    "size_interval": 0.0,
    "depends_on": [],
}
"""What a running collector takes over from a reload without reconnecting (`reconfigure`), with
the neutral value it has in an identity; `probe_interval`, `size_interval` and `depends_on` only
where the settings have one."""


def planned(owner: str, settings: Frozen, build: Callable[[], Collector]) -> Planned:
    """A `Planned` from a target's settings: its identity is everything but `RETAKEN`."""
    fields = type(settings).model_fields
    identity = settings.model_copy(update={k: v for k, v in RETAKEN.items() if k in fields})
    return Planned(owner, identity, settings, build)
