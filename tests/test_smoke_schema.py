"""The published schema accepts what the model emits."""

from typing import Any

import jsonschema
import pytest

from tests.factories import HOLDERS_CONTEXT, make_event


def test_event_validates_against_schema(validate_event: Any) -> None:
    data = validate_event(make_event().to_dict())
    assert data["time"] == "2026-11-27T17:04:22.123Z"
    assert data["since"] == "2026-11-27T17:04:17.123Z"


def test_an_event_with_context_validates_and_a_malformed_one_does_not(
    validate_event: Any,
) -> None:
    data = validate_event(make_event(context=HOLDERS_CONTEXT).to_dict())
    assert data["context"] == HOLDERS_CONTEXT
    assert "context" not in make_event().to_dict()  # additive: absent when there is none
    broken = make_event(context={**HOLDERS_CONTEXT, "holders": [{"count": "forty"}]}).to_dict()
    with pytest.raises(jsonschema.ValidationError):
        validate_event(broken)


def test_the_context_is_frozen() -> None:
    event = make_event(context=HOLDERS_CONTEXT)
    assert event.context is not None
    with pytest.raises(TypeError):
        event.context["holders"][0]["count"] = 1  # type: ignore[index]
    assert event.to_dict()["context"]["holders"][0]["count"] == 40
