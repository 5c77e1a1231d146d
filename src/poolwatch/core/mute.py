"""The mute step between evaluation and the notifying sinks: silences and maintenance windows.

Evaluation goes on unchanged; this step only decides, per event, whether the notifying sinks
(webhooks, Alertmanager) get it. stdout gets every event, a muted one marked with the id of what
muted it. Per alert key (source, instance, check, labels) it holds the latest firing event a mute
kept back, and whether the receivers were given its firing. When no mute covers a held alert
any more and it still fires, it is delivered then (a fresh event: new id and time, same
`since`), so nothing is lost; a resolve inside the mute drops it, so an alert that fired and
resolved entirely inside a mute sends nothing. A resolve is delivered exactly when its firing
was: also inside a mute, so that no receiver is left with an alert that never ends.

Pure: no I/O; every call takes `now`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

from poolwatch.core.matchers import Matcher, alert_fields, event_fields, matches_all
from poolwatch.core.model import AlertKey, Event


@dataclass(frozen=True, slots=True)
class Mute:
    """One silence or one open maintenance window: what it mutes, and from when until when."""

    id: str
    """A silence's id, or `maintenance:<name>` for a window."""
    matchers: tuple[Matcher, ...]
    starts: datetime
    ends: datetime

    def active(self, now: datetime) -> bool:
        return self.starts <= now < self.ends

    def covers(self, fields: dict[str, str], now: datetime) -> bool:
        return self.active(now) and matches_all(self.matchers, fields)


class Admitted(NamedTuple):
    """One event after the mute step: the copy stdout writes, and whether the notifying sinks
    get it."""

    event: Event
    notify: bool


def _key(event: Event) -> AlertKey:
    return AlertKey(event.source, event.instance, event.check, tuple(event.labels.items()))


@dataclass
class Gate:
    mutes: tuple[Mute, ...] = ()
    held: dict[AlertKey, Event] = field(default_factory=dict)
    delivered: set[AlertKey] = field(default_factory=set)
    """Alerts whose firing the receivers were given (and not yet its resolve)."""

    def muting(self, fields: dict[str, str], now: datetime) -> Mute | None:
        """The first mute covering an alert with these fields at `now`."""
        return next((m for m in self.mutes if m.covers(fields, now)), None)

    def muted_by(self, alert: str, severity: str, key: AlertKey, now: datetime) -> str | None:
        """The id of what mutes this firing alert now (for `/metrics`), or None."""
        mute = self.muting(alert_fields(alert, severity, key), now)
        return None if mute is None else mute.id

    def admit(self, event: Event, now: datetime) -> list[Admitted]:
        """One event from evaluation → what stdout writes and what the receivers get (a resolve
        just after a mute ended, before `update` saw it end, first releases the firing)."""
        key = _key(event)
        if event.status == "resolved":
            held = self.held.pop(key, None)
            if held is None or key in self.delivered:
                self.delivered.discard(key)
                return [Admitted(event, True)]
            if self.muting(event_fields(held), now) is None:
                released = self._release(key, held, now)
                self.delivered.discard(key)
                return [Admitted(released, True), Admitted(event, True)]
            # fired and resolved inside the mute: the receivers never hear of it
            return [Admitted(replace(event, muted_by=held.muted_by), False)]
        mute = self.muting(event_fields(event), now)
        if mute is None:
            self.held.pop(key, None)
            self.delivered.add(key)
            return [Admitted(event, True)]
        muted = replace(event, muted_by=mute.id)
        self.held[key] = muted
        return [Admitted(muted, False)]

    def _release(self, key: AlertKey, held: Event, now: datetime) -> Event:
        self.held.pop(key, None)
        self.delivered.add(key)
        return replace(held, id=str(uuid.uuid4()), time=now, reminder=False, muted_by=None)

    def update(self, mutes: Sequence[Mute], now: datetime) -> list[Event]:
        """Take the mutes in force now; return the held alerts no mute covers any more, as
        fresh firing events to deliver."""
        self.mutes = tuple(mutes)
        return [
            self._release(key, event, now)
            for key, event in list(self.held.items())
            if self.muting(event_fields(event), now) is None
        ]
