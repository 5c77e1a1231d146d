"""Fixtures shared by every test: the event JSON Schema validator.

Fixtures that start real servers live beside the tests that need them (tests/<area>/conftest.py)
and fail, never skip, when their server binary is missing: CI must prove every behaviour.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

# PostgreSQL fixtures serve the source's own tests and the stack tests (reload, Prometheus,
# Alertmanager); one session server for all of them.
pytest_plugins = ("tests.postgres.fixtures",)


@pytest.fixture(scope="session")
def event_validator() -> jsonschema.protocols.Validator:
    text = resources.files("poolwatch").joinpath("schema/event.v1.json").read_text()
    schema = json.loads(text)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


@pytest.fixture
def validate_event(event_validator: Any) -> Any:
    """Call with an event dict: raises if it breaks schema poolwatch.event/v1."""

    def check(event: dict[str, Any]) -> dict[str, Any]:
        event_validator.validate(event)
        return event

    return check
