"""The values that flow through poolwatch: Reading (sources → evaluation) and Event (→ sinks).

Both are frozen so that a value handed to a sink can never change under it; dicts appear only at
the edges (`Event.to_dict` for JSON out).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from poolwatch.core.context import Context, freeze, thaw

EVENT_SCHEMA = "poolwatch.event/v1"

UP_CHECK = "up"
"""Every source emits an `up` reading per instance: 1 when the collection worked, 0 when not."""


class Severity(enum.IntEnum):
    """Ordered so that `max()` gives the worst; the int is the Nagios exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


def _frozen_labels(labels: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted((labels or {}).items())))


@dataclass(frozen=True, slots=True)
class Cause:
    """The outage an alert is part of: the parent's alert (None while the parent is down but
    its own alert has not fired, e.g. a container its policy is restarting), source, instance,
    and since when."""

    alert: str | None
    source: str
    instance: str
    since: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "source": self.source,
            "instance": self.instance,
            "since": rfc3339(self.since),
        }


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value. A source never decides severity; it only says what it saw.

    `limit` is the ceiling the value is measured against when the system has one (the server's
    usable `max_connections`, Redis `maxclients`, 100 for a percentage); a threshold written as a
    percentage is a percentage of it. `message` is an optional sentence from the source (the reason
    a collection failed, say); it must never hold a secret. `context` says who or what is behind
    the value (the holders of a pool); it is never part of the alert key, and equal readings
    stay equal whatever their context.
    """

    source: str
    instance: str
    check: str
    value: float
    unit: str
    limit: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None
    context: Context | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen_labels(self.labels))
        object.__setattr__(self, "value", float(self.value))
        if self.context is not None:
            object.__setattr__(self, "context", freeze(self.context))
        if self.limit is not None:
            object.__setattr__(self, "limit", float(self.limit))

    @property
    def key(self) -> AlertKey:
        return AlertKey(self.source, self.instance, self.check, tuple(self.labels.items()))


@dataclass(frozen=True, slots=True)
class AlertKey:
    """Identity of one alert state machine: the same check on the same thing."""

    source: str
    instance: str
    check: str
    labels: tuple[tuple[str, str], ...] = ()


def now_utc() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """RFC 3339, UTC, milliseconds: `2026-11-27T17:04:17.123Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    """A change worth telling someone about: an alert firing, escalating, resolving, or a reminder.

    The same object is written to stdout and POSTed to webhooks (schema `poolwatch.event/v1`,
    published as JSON Schema in `poolwatch/schema/event.v1.json`). `id` is stable across retries.
    """

    status: Literal["firing", "resolved"]
    alert: str
    severity: Literal["warning", "critical"]
    source: str
    instance: str
    check: str
    value: float
    unit: str
    threshold: float | None
    limit: float | None
    labels: Mapping[str, str]
    since: datetime
    message: str
    host: str
    time: datetime = field(default_factory=now_utc)
    reminder: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    context: Context | None = None
    """Who holds the pool, what blocks it: only on firing events and reminders, when the source
    read it in the same poll (an additive field: absent from the JSON when None)."""
    muted_by: str | None = None
    """The silence or maintenance window that kept this event from the notifying sinks; set only
    on the copy stdout writes (the audit trail), never sent to a receiver."""
    caused_by: Cause | None = None
    """The parent outage (a container not running, a server down) this alert is part of."""
    held: bool = False
    """Kept from the notifying sinks because of `caused_by` (stdout's copy only)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen_labels(self.labels))
        if self.context is not None:
            object.__setattr__(self, "context", freeze(self.context))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": EVENT_SCHEMA,
            "id": self.id,
            "time": rfc3339(self.time),
            "host": self.host,
            "status": self.status,
            "alert": self.alert,
            "severity": self.severity,
            "source": self.source,
            "instance": self.instance,
            "check": self.check,
            "value": self.value,
            "unit": self.unit,
            "threshold": self.threshold,
            "limit": self.limit,
            "labels": dict(self.labels),
            "since": rfc3339(self.since),
            "message": self.message,
            "reminder": self.reminder,
        }
        if self.context is not None:
            data["context"] = thaw(self.context)
        if self.muted_by is not None:
            data = {**data, "muted": True, "muted_by": self.muted_by}
        if self.caused_by is not None:
            data["caused_by"] = self.caused_by.to_dict()
        if self.held:
            data["held"] = True
        return data
