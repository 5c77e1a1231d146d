"""The published schema accepts what the model emits."""

from typing import Any

from tests.factories import make_event


def test_event_validates_against_schema(validate_event: Any) -> None:
    data = validate_event(make_event().to_dict())
    assert data["time"] == "2026-11-27T17:04:22.123Z"
    assert data["since"] == "2026-11-27T17:04:17.123Z"
