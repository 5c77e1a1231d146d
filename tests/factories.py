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
