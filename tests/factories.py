"""Events made by hand, for tests of what consumes them (schema, sinks)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from poolwatch.core.model import Event

T0 = datetime(2026, 11, 27, 17, 4, 17, 123456, tzinfo=UTC)


def make_event(**changes: Any) -> Event:
    """A PostgreSQLConnectionPoolHigh firing event; `changes` replace any field."""
    base = Event(
        status="firing",
        alert="PostgreSQLConnectionPoolHigh",
        severity="warning",
        source="postgres",
        instance="main",
        check="connections",
        value=160.0,
        unit="connections",
        threshold=150.0,
        limit=197.0,
        labels={},
        since=T0,
        message="PostgreSQL main: connections 160/197 (81%), above warning 150",
        host="vm",
        time=T0 + timedelta(seconds=5),
    )
    return replace(base, **changes)


HOLDERS_CONTEXT: dict[str, Any] = {
    "holders": [
        {
            "application": "leaky",
            "user": "app",
            "client": "10.0.3.7",
            "count": 40,
            "states": {"idle in transaction": 40},
            "oldest_idle_in_transaction_seconds": 780.0,
            "oldest_transaction_seconds": 790.5,
        },
        {
            "application": "busy",
            "user": "app",
            "client": "local",
            "count": 20,
            "states": {"active": 20},
            "oldest_idle_in_transaction_seconds": None,
            "oldest_transaction_seconds": 12.0,
        },
    ],
    "other_groups": 3,
    "waiting_on_locks": 5,
    "blockers": [
        {
            "pid": 4242,
            "application": "migrate",
            "user": "app",
            "client": "10.0.3.9",
            "state": "idle in transaction",
            "state_seconds": 360.0,
            "blocking": 5,
        }
    ],
}
"""A PostgreSQL `connections` context as the source builds it."""
HOLDERS_LINE = (
    "leaky@10.0.3.7 40 (40 idle in transaction, oldest 13m), busy@local 20, (3 more); "
    "5 waiting on locks behind pid 4242 (migrate, 6m)"
)
