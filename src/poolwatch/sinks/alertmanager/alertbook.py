"""What one Alertmanager should currently know: events mapped to API v2 alerts, kept while firing
and for a while after they resolve, so that they can be sent again.

Alertmanager keeps no promise to remember an alert: a restarted peer has forgotten all of them,
and one that hears nothing resolves the alert at its `endsAt`. So the book holds every firing
alert (re-sent until it resolves) and every resolved one for `resolved_resend` (re-sent with its
`endsAt`, for a peer that missed the first). Pure: no I/O, every call takes `now`.

One alert key (source, instance, check, labels) has one severity in poolwatch, but two names in
the seed (PostgreSQLConnectionPoolHigh / ...Critical). On escalation the warning alert stays
firing, as it would with the seed's Prometheus rules (both hold) and the seed's inhibit rule
silences it; on de-escalation the critical one resolves; on resolution both do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from poolwatch.core.describe import describe_context
from poolwatch.core.labels import label_name
from poolwatch.core.model import AlertKey, Event, rfc3339

RESERVED = ("alertname", "severity", "instance", "source", "check", "team")
"""Labels poolwatch sets itself; an event label of the same name cannot override them."""
MAX_EXTRA_LABELS = 16
"""Event labels beyond these (sorted by name) are left off: bounded alert identity."""
MAX_VALUE_CHARS = 256
VALIDITY_RESENDS = 4
"""A firing alert's `endsAt` is this many re-send intervals ahead (as Prometheus does)."""

Alert = dict[str, Any]
"""One alert of the API v2 body (`labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL`)."""


def labels_of(event: Event, teams: Mapping[str, str]) -> dict[str, str]:
    labels = {
        "alertname": event.alert,
        "severity": event.severity,
        "instance": event.instance,
        "source": event.source,
        "check": event.check,
        "team": teams.get(event.source, ""),
    }
    extra = 0
    for name, value in sorted(event.labels.items()):
        key = label_name(name)
        if key in labels or key in RESERVED or not value:
            continue
        if extra == MAX_EXTRA_LABELS:
            break
        labels[key] = value[:MAX_VALUE_CHARS]
        extra += 1
    return {key: value[:MAX_VALUE_CHARS] for key, value in labels.items() if value}


def generator_url(template: str | None, event: Event) -> str | None:
    if template is None:
        return None
    fields = {
        "alert": event.alert,
        "source": event.source,
        "instance": event.instance,
        "check": event.check,
    }
    url = template
    for name, value in fields.items():
        url = url.replace(f"{{{name}}}", quote(value, safe=""))
    return url


def to_alert(event: Event, teams: Mapping[str, str], url_template: str | None = None) -> Alert:
    """The API v2 alert for one event; a resolved one carries `endsAt` (the event's time).

    A firing alert gets its `endsAt` only when it is sent (`stamp`): a payload that waited in a
    queue must not arrive already expired. An event's `context` becomes the `holders` annotation.
    """
    alert: Alert = {
        "labels": labels_of(event, teams),
        "annotations": {
            "summary": f"{event.alert} on {event.source} {event.instance} ({event.check})",
            "description": event.message,
        },
        "startsAt": rfc3339(event.since),
    }
    # who holds the pool, as one line: an annotation, never a label (labels are the alert's
    # identity and stay low-cardinality)
    holders = describe_context(event.context)
    if holders:
        alert["annotations"]["holders"] = holders
    url = generator_url(url_template, event)
    if url:
        alert["generatorURL"] = url
    if event.status == "resolved":
        alert["endsAt"] = rfc3339(event.time)
    return alert


WATCHDOG = "PoolwatchWatchdog"


def watchdog(host: str, since: datetime) -> Alert:
    """The always-firing alert that says poolwatch's pipeline to Alertmanager works (as
    kube-prometheus's `Watchdog`): route it to a dead man's switch service, which alerts when
    it stops arriving."""
    return {
        "labels": {
            "alertname": WATCHDOG,
            "severity": "none",
            "source": "poolwatch",
            "instance": host,
        },
        "annotations": {
            "summary": f"poolwatch on {host} is alive",
            "description": "Always firing while poolwatch runs and its collectors' loops turn; "
            "its absence means poolwatch is down, hung or cut off.",
        },
        "startsAt": rfc3339(since),
    }


def stamp(alerts: list[Alert], now: datetime, validity: float) -> list[Alert]:
    """Copies, each firing one valid until `now + validity`: Alertmanager resolves it by itself
    then, unless poolwatch sends it again first."""
    until = rfc3339(now + timedelta(seconds=validity))
    return [alert if "endsAt" in alert else {**alert, "endsAt": until} for alert in alerts]


@dataclass(slots=True)
class Entry:
    key: AlertKey
    alert: Alert
    resolved_at: datetime | None = None


def _identity(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Alertmanager's identity of an alert: its label set."""
    return tuple(sorted(labels.items()))


class AlertBook:
    """Firing alerts, and resolved ones for `resolved_resend` seconds, by label set."""

    def __init__(
        self,
        teams: Mapping[str, str],
        resolved_resend: float,
        url_template: str | None = None,
    ) -> None:
        self.teams = dict(teams)
        self.resolved_resend = resolved_resend
        self.url_template = url_template
        self.entries: dict[tuple[tuple[str, str], ...], Entry] = {}

    def record(self, event: Event) -> list[Alert]:
        """Take one event in; return the alerts it changes (what to send now)."""
        key = AlertKey(event.source, event.instance, event.check, tuple(event.labels.items()))
        alert = to_alert(event, self.teams, self.url_template)
        identity = _identity(alert["labels"])
        changed: list[Alert] = []
        for other_id, entry in self.entries.items():
            if other_id == identity or entry.key != key or entry.resolved_at is not None:
                continue
            ends = event.status == "resolved" or (
                event.severity == "warning" and entry.alert["labels"].get("severity") == "critical"
            )
            if ends:
                entry.alert = {**entry.alert, "endsAt": rfc3339(event.time)}
                entry.resolved_at = event.time
                changed.append(entry.alert)
        self.entries[identity] = Entry(
            key, alert, event.time if event.status == "resolved" else None
        )
        changed.append(alert)
        return changed

    def snapshot(self, now: datetime) -> list[Alert]:
        """Everything to re-send at `now`; resolved alerts past `resolved_resend` are forgotten."""
        self.forget(now)
        return [entry.alert for entry in self.entries.values()]

    def forget(self, now: datetime) -> None:
        horizon = now - timedelta(seconds=self.resolved_resend)
        self.entries = {
            identity: entry
            for identity, entry in self.entries.items()
            if entry.resolved_at is None or entry.resolved_at > horizon
        }

    def counts(self) -> tuple[int, int]:
        """(firing, resolved still being re-sent)."""
        resolved = sum(1 for entry in self.entries.values() if entry.resolved_at is not None)
        return len(self.entries) - resolved, resolved
