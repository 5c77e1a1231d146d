"""What one item of the engine's event stream says, and which items are new. Pure.

The stream (`engine.EventStream`) yields the engine's JSON objects; `follow` (watch.py) turns
each into a `ContainerEvent` and hands on only those `Resume` has not seen: after a reconnect
the subscription resumes at the last event's time (`since`), and the engine replays the events
of that same nanosecond, which must not count a restart twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ContainerEvent:
    """One container event: `die`, `start`, `oom`, `health_status: healthy`, `destroy`, ..."""

    container_id: str
    """Empty when the item named no container (the stream is filtered to containers, but an
    engine may still send one without an actor)."""
    action: str
    nano: int
    """The engine's time of the event, in nanoseconds since the epoch."""
    attributes: Mapping[str, str] = field(default_factory=dict)
    """The actor's attributes: name, image, the container's labels, `exitCode` on `die`."""

    @classmethod
    def parse(cls, item: Mapping[str, Any]) -> ContainerEvent:
        """From the engine's JSON, old field names (`id`, `status`) included."""
        actor = item.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        return cls(
            container_id=str(actor.get("ID") or item.get("id") or ""),
            action=str(item.get("Action") or item.get("status") or ""),
            nano=_int(item.get("timeNano")),
            attributes={str(k): str(v) for k, v in attributes.items()},
        )

    @property
    def exit_code(self) -> int | None:
        """What a `die` event says the process exited with."""
        code = self.attributes.get("exitCode", "")
        return int(code) if code.lstrip("-").isdigit() else None

    @property
    def health(self) -> str | None:
        """`healthy` or `unhealthy` for a health status event (`starting` is no verdict)."""
        if not self.action.startswith("health_status"):
            return None
        status = self.action.partition(":")[2].strip()
        return status if status in ("healthy", "unhealthy") else None


def _int(value: object) -> int:
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else 0


@dataclass
class Resume:
    """Where a new subscription resumes, and which events it replays that were already seen."""

    last_nano: int = 0
    _seen_at_last: set[tuple[str, str]] = field(default_factory=set)
    """The (container, action) pairs already handed on at `last_nano`."""

    def since(self) -> str | None:
        """The engine's `since` for the next subscription (None: from now)."""
        if not self.last_nano:
            return None
        seconds, nanos = divmod(self.last_nano, 1_000_000_000)
        return f"{seconds}.{nanos:09d}"

    def fresh(self, event: ContainerEvent) -> bool:
        """True the first time an event is met; False for one older than the last, or replayed
        at the same nanosecond. Memory: the pairs of one nanosecond."""
        key = (event.container_id, event.action)
        if event.nano < self.last_nano or (
            event.nano == self.last_nano and key in self._seen_at_last
        ):
            return False
        if event.nano > self.last_nano:
            self.last_nano, self._seen_at_last = event.nano, set()
        self._seen_at_last.add(key)
        return True
