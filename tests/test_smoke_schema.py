"""The published schema accepts what the model emits."""

from datetime import UTC, datetime
from typing import Any

from poolwatch.model import Event


def test_event_validates_against_schema(validate_event: Any) -> None:
    moment = datetime(2026, 11, 27, 17, 4, 17, 123456, tzinfo=UTC)
    event = Event(
        status="firing",
        alert="HighCPUUsage",
        severity="warning",
        source="host",
        instance="vm",
        check="cpu_percent",
        value=91.0,
        unit="percent",
        threshold=80.0,
        limit=100.0,
        labels={},
        since=moment,
        message="Host vm: cpu 91%",
        host="vm",
        time=moment,
    )
    data = validate_event(event.to_dict())
    assert data["time"] == "2026-11-27T17:04:17.123Z"
