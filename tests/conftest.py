"""Fixtures shared by every test: the event JSON Schema validator.

Fixtures that start real servers live beside the tests that need them (tests/<area>/conftest.py)
and fail, never skip, when their server binary is missing: CI must prove every behaviour.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests import recording

# PostgreSQL fixtures serve the source's own tests and the stack tests (reload, Prometheus,
# Alertmanager); one session server for all of them.
pytest_plugins = ("tests.postgres.fixtures",)


@pytest.fixture(scope="session")
def event_validator() -> Any:
    return recording.event_validator()


@pytest.fixture
def validate_event(event_validator: Any) -> Any:
    """Call with an event dict: raises if it breaks schema poolwatch.event/v1."""

    def check(event: dict[str, Any]) -> dict[str, Any]:
        event_validator.validate(event)
        return event

    return check
