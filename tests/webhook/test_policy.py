"""Pure parts of delivery: backoff curve, Retry-After, status classification, signatures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook
from tests.webhook.conftest import SECRET

from poolwatch.core.backoff import Backoff
from poolwatch.sinks.durable.answers import classify
from poolwatch.sinks.durable.delivery import Delivered, Reject, Retry
from poolwatch.sinks.durable.retry import parse_retry_after
from poolwatch.sinks.webhook import signing
from poolwatch.sinks.webhook.signing import signing_key


def test_backoff_doubles_from_initial_to_the_cap_with_jitter_in_the_upper_half() -> None:
    top = Backoff(0.5, 300, rand=lambda low, high: high)
    bottom = Backoff(0.5, 300, rand=lambda low, high: low)
    assert [top.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 4]
    assert top.delay(10) == 256
    assert top.delay(11) == top.delay(1000) == 300
    assert bottom.delay(1) == 0.25


def test_retry_after_wins_when_longer_and_is_capped() -> None:
    backoff = Backoff(0.5, 1, rand=lambda low, high: high)
    assert backoff.delay(1, retry_after=2) == 2
    assert backoff.delay(1, retry_after=0) == 0.5
    assert backoff.delay(1, retry_after=86400) == 300


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 27, 17, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2
    assert parse_retry_after("Fri, 27 Nov 2026 17:00:30 GMT", now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, Delivered),
        (204, Delivered),
        (408, Retry),
        (429, Retry),
        (500, Retry),
        (503, Retry),
        (301, Reject),
        (400, Reject),
        (401, Reject),
        (410, Reject),
        (422, Reject),
    ],
)
def test_status_classes(status: int, kind: type) -> None:
    assert isinstance(classify(status, None, ""), kind)


def test_signature_verifies_with_the_reference_implementation() -> None:
    body = b'{"id":"msg_1","message":"caf\xc3\xa9"}'
    timestamp = int(datetime.now(UTC).timestamp())
    headers = signing.headers(signing_key(SECRET), "msg_1", timestamp, body)
    assert Webhook(SECRET).verify(body, headers) == {"id": "msg_1", "message": "café"}


def test_unsigned_without_a_secret() -> None:
    assert "webhook-signature" not in signing.headers(None, "msg_1", 1, b"{}")


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_c2hvcnQ=", ""])
def test_bad_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        signing_key(secret)
