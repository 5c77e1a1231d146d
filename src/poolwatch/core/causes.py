"""One page per outage: while a parent is down, its dependants' alerts are held from the
notifying sinks, each marked with what caused it. Pure: no I/O; every call takes `now`.

The graph (dependant → parents) comes from `core.dependencies`: a PostgreSQL, Redis or
PgBouncer target depends on the container that serves it, a PgBouncer on the PostgreSQL target
behind it. A parent is down while its readings say so: a container's `running` is 0 (pushed the
moment the engine says `die`, before any alert of its own could fire, so a dependant's poll that
fails in that instant is held too), a target's `up` is 0. Down is transitive: PgBouncer is held
while the container under its PostgreSQL is down.

Per alert the step keeps the latest firing event it held, and whether the receivers were given
its firing. Evaluation never stops; stdout gets every event, a held one marked (`held`,
`caused_by`). A resolve is delivered exactly when its firing was. A dependant still firing once
every parent is up again, for `grace` seconds (one poll), is delivered then as a fresh event, so
nothing real is lost; one that resolved while held sends nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from poolwatch.core.dependencies import Node
from poolwatch.core.model import UP_CHECK, AlertKey, Cause, Event, Reading

RUNNING_CHECK = "running"
"""A container's reading that says whether it runs (the Docker source's)."""
DOWN_CHECKS = frozenset({UP_CHECK, RUNNING_CHECK, "died", "stopped"})
"""The checks whose alert names a parent's outage in `caused_by`."""


@dataclass(frozen=True, slots=True)
class Admitted:
    """One event after this step: what stdout writes, and whether the receivers get it."""

    event: Event
    notify: bool


def _key(event: Event) -> AlertKey:
    return AlertKey(event.source, event.instance, event.check, tuple(event.labels.items()))


def _down_reading(reading: Reading) -> bool | None:
    """Whether this reading says its node is down (True), up (False), or says nothing."""
    if reading.check == RUNNING_CHECK or (reading.check == UP_CHECK and reading.source != "docker"):
        return reading.value < 1
    return None


@dataclass
class Causes:
    grace: float
    """Seconds a held alert must still fire after its parents are up before it is delivered."""
    parents: Mapping[Node, tuple[Node, ...]] = field(default_factory=dict)
    down: dict[Node, datetime] = field(default_factory=dict)
    """Nodes whose readings say they are down, and since when."""
    alerts: dict[Node, tuple[str, datetime]] = field(default_factory=dict)
    """The firing outage alert of each node (its name and since), for `caused_by`."""
    held: dict[AlertKey, Event] = field(default_factory=dict)
    delivered: set[AlertKey] = field(default_factory=set)
    """Alerts whose firing the receivers were given (and not yet its resolve)."""
    free_since: dict[AlertKey, datetime] = field(default_factory=dict)
    """Held alerts whose parents are all up again, since when."""

    def use(self, parents: Mapping[Node, tuple[Node, ...]]) -> None:
        """The graph as found now (the containers and targets change)."""
        self.parents = dict(parents)
        known = set(self.parents) | {p for ps in self.parents.values() for p in ps}
        for table in (self.down, self.alerts):
            for node in [n for n in table if n not in known]:
                del table[node]

    def observe(self, readings: Iterable[Reading], now: datetime) -> None:
        """Readings of a poll or a push: which nodes are down now."""
        watched = {p for ps in self.parents.values() for p in ps}
        for reading in readings:
            down = _down_reading(reading)
            node = (reading.source, reading.instance)
            if down is None or node not in watched:
                continue
            if down:
                self.down.setdefault(node, now)
            else:
                self.down.pop(node, None)
        for key in self.held:
            if self.cause_of((key.source, key.instance)) is None:
                self.free_since.setdefault(key, now)
            else:
                self.free_since.pop(key, None)

    def cause_of(self, node: Node) -> Cause | None:
        """The outage above `node`: the furthest ancestor that is down (the root cause), or
        None when every ancestor is up."""
        found: Cause | None = None
        seen = {node}
        frontier = [node]
        while frontier:
            above: list[Node] = []
            for child in frontier:
                for parent in self.parents.get(child, ()):
                    if parent in seen:
                        continue
                    seen.add(parent)
                    above.append(parent)
                    since = self.down.get(parent)
                    if since is not None:
                        alert, alert_since = self.alerts.get(parent, (None, since))
                        found = Cause(alert, parent[0], parent[1], alert_since)
            frontier = above
        return found

    def admit(self, event: Event, now: datetime) -> Admitted:
        """One event from evaluation → the copy stdout writes and whether receivers get it."""
        node = (event.source, event.instance)
        if event.check in DOWN_CHECKS:
            if event.status == "firing":
                self.alerts[node] = (event.alert, event.since)
            else:
                self.alerts.pop(node, None)
        key = _key(event)
        if event.status == "resolved":
            self.free_since.pop(key, None)
            held = self.held.pop(key, None)
            if held is not None and key not in self.delivered:
                return Admitted(replace(event, caused_by=held.caused_by, held=True), False)
            self.delivered.discard(key)
            return Admitted(event, True)
        cause = None if key in self.delivered else self.cause_of(node)
        if cause is None:
            self.held.pop(key, None)
            self.free_since.pop(key, None)
            self.delivered.add(key)
            return Admitted(event, True)
        marked = replace(event, caused_by=cause, held=True)
        self.held[key] = marked
        return Admitted(marked, False)

    def due(self, now: datetime) -> list[Event]:
        """Held alerts still firing `grace` after their parents came back: fresh firing events
        for every sink (new id and time, the same `since`)."""
        wait = timedelta(seconds=self.grace)
        released = []
        for key, free in list(self.free_since.items()):
            if now - free < wait:
                continue
            held = self.held.pop(key)
            del self.free_since[key]
            self.delivered.add(key)
            released.append(
                replace(
                    held, id=str(uuid.uuid4()), time=now, reminder=False, caused_by=None, held=False
                )
            )
        return released
