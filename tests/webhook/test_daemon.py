"""Fault tests: the real daemon (`python -m poolwatch`) against the real receiver.

Waits are bounded deadlines, never asserted durations, except the one lower bound that *is* the
behaviour under test (Retry-After: the retry must not come sooner).
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from tests.eventually import eventually_sync
from tests.webhook.receiver import Answer, Receiver

pytestmark = pytest.mark.integration

FAST_RETRY = {"retry_initial": "100ms", "retry_max": "1s", "timeout": "1s"}


def first_occurrences(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in ids if not (i in seen or seen.add(i))]


def test_outage_and_kill_9_lose_nothing_and_keep_order(
    receiver: Receiver, daemon_factory: Any, check_request: Any
) -> None:
    receiver.stop()  # down from the start: connection refused
    daemon = daemon_factory(url=receiver.url, **FAST_RETRY)
    daemon.start()
    daemon.wait_events(30)
    daemon.signal(signal.SIGKILL)
    daemon.wait()
    first_run = daemon.events(1)

    daemon.start()
    daemon.wait_events(len(first_run) + 25)
    assert daemon.queue_depth() > 0
    receiver.start()
    produced = daemon.events()
    assert len(produced) >= 50
    due = set(produced) - {first_run[-1]}
    eventually_sync(
        lambda: due <= {q.id for q in receiver.answered()}, "every due event answered", 30, 0.05
    )
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert daemon.queue_depth() == 0

    # the run killed mid-poll may have printed its last event without having queued it
    expected = daemon.events()
    maybe_lost = {first_run[-1]}
    received = [r.id for r in receiver.answered()]
    assert set(expected) - set(received) <= maybe_lost
    assert first_occurrences(received) == [i for i in expected if i in set(received)]
    assert len(received) - len(set(received)) <= 1
    for request in receiver.answered():
        check_request(request)


def test_retry_after_is_honoured_with_the_same_id_and_body(
    receiver: Receiver, daemon_factory: Any, check_request: Any
) -> None:
    receiver.script.append(Answer(429, {"Retry-After": "2"}))
    daemon = daemon_factory(url=receiver.url, **FAST_RETRY)
    daemon.start()
    eventually_sync(lambda: len(receiver.answered()) >= 3, "3 requests answered", 30, 0.05)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    refused, retried = receiver.requests[:2]
    assert refused.status == 429
    assert (retried.id, retried.body, retried.status) == (refused.id, refused.body, 200)
    assert retried.at - refused.at >= 1.9  # not sooner than the server asked
    check_request(retried)


def test_400_is_dead_lettered_and_does_not_block_the_rest(
    receiver: Receiver, daemon_factory: Any, check_request: Any
) -> None:
    receiver.script.append(Answer(400, body=b'{"error": "unknown alert"}'))
    daemon = daemon_factory(url=receiver.url, **FAST_RETRY)
    daemon.start()
    eventually_sync(lambda: len(receiver.answered()) >= 3, "3 requests answered", 30, 0.05)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    rejected = receiver.requests[0]
    assert rejected.status == 400
    assert [r.id for r in receiver.requests].count(rejected.id) == 1
    assert daemon.dead_letters() == [(rejected.id, 400, '{"error": "unknown alert"}')]
    assert daemon.queue_depth() == 0
    errors = [line for line in daemon.lines() if line.get("event") == "delivery_rejected"]
    assert [(e["item"], e["status"], e["level"]) for e in errors] == [(rejected.id, 400, "error")]
    for request in receiver.answered():
        check_request(request)


def test_a_receiver_that_never_answers_is_timed_out_and_retried(
    receiver: Receiver, daemon_factory: Any, check_request: Any
) -> None:
    receiver.script.append(Answer(hang=True))
    daemon = daemon_factory(url=receiver.url, **FAST_RETRY)
    daemon.start()
    eventually_sync(lambda: len(receiver.answered()) >= 2, "2 requests answered", 30, 0.05)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    hung, retried = receiver.requests[:2]
    assert (hung.status, retried.status, retried.id) == (0, 200, hung.id)
    failed = [line for line in daemon.lines() if line.get("event") == "delivery_failed"]
    assert failed[0]["item"] == hung.id
    assert "1s" in failed[0]["reason"] or "Timeout" in failed[0]["reason"]
    check_request(retried)


def test_sigterm_with_a_healthy_receiver_drains_and_exits_0(
    receiver: Receiver, daemon_factory: Any, check_request: Any
) -> None:
    daemon = daemon_factory(url=receiver.url)
    daemon.start()
    daemon.wait_events(10)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert daemon.queue_depth() == 0
    received = [r.id for r in receiver.requests]
    assert received == daemon.events()  # each exactly once, in order
    for request in receiver.requests:
        check_request(request)
