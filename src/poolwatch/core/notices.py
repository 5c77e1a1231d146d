"""Payloads on the event channels that are not alert events: the audit of silences and
maintenance windows (`poolwatch.silence/v1`) and the dead man's switch (`poolwatch.heartbeat/v1`).

Each carries its own schema name and a unique `id` (receivers de-duplicate on it, a retry
re-sends it), so a receiver tells them from `poolwatch.event/v1` by `schema` alone. JSON Schemas
beside event.v1.json in `poolwatch/schema/`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from poolwatch.core.model import now_utc, rfc3339

SILENCE_SCHEMA = "poolwatch.silence/v1"
HEARTBEAT_SCHEMA = "poolwatch.heartbeat/v1"

Action = Literal["created", "expired", "ended", "started"]
"""created/expired (by hand)/ended (its time ran out) for a silence; started/ended for a
maintenance window."""


class Notice(Protocol):
    """What a sink that takes notices may be handed."""

    @property
    def id(self) -> str: ...

    @property
    def log_name(self) -> str:
        """The `event` of its stdout line."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class SilenceNotice:
    """One change of a silence or a maintenance window: the audit trail of muting."""

    action: Action
    kind: Literal["silence", "maintenance"]
    silence: str
    """The silence's id, or `maintenance:<name>`: what muted events name in `muted_by`."""
    matchers: Sequence[str]
    starts: datetime
    ends: datetime
    author: str | None
    comment: str
    host: str
    time: datetime = field(default_factory=now_utc)
    id: str = field(default_factory=_new_id)

    @property
    def log_name(self) -> str:
        return f"{self.kind}_{self.action}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SILENCE_SCHEMA,
            "id": self.id,
            "time": rfc3339(self.time),
            "host": self.host,
            "action": self.action,
            "kind": self.kind,
            "silence": self.silence,
            "matchers": list(self.matchers),
            "from": rfc3339(self.starts),
            "until": rfc3339(self.ends),
            "author": self.author,
            "comment": self.comment,
        }


@dataclass(frozen=True, slots=True)
class HeartbeatNotice:
    """poolwatch is alive: sent only while every collector's loop turns."""

    host: str
    version: str
    uptime_seconds: float
    firing: int
    last_success: Mapping[str, datetime | None]
    """`source:instance` → the end of its last successful poll (None: none yet)."""
    time: datetime = field(default_factory=now_utc)
    id: str = field(default_factory=_new_id)
    log_name: str = "heartbeat"

    def to_dict(self) -> dict[str, Any]:
        collectors = []
        for owner, moment in sorted(self.last_success.items()):
            source, _, instance = owner.partition(":")
            collectors.append(
                {
                    "source": source,
                    "instance": instance,
                    "last_success": rfc3339(moment) if moment else None,
                }
            )
        return {
            "schema": HEARTBEAT_SCHEMA,
            "id": self.id,
            "time": rfc3339(self.time),
            "host": self.host,
            "version": self.version,
            "uptime_seconds": round(self.uptime_seconds, 3),
            "firing": self.firing,
            "collectors": collectors,
        }
