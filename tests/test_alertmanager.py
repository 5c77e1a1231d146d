"""The Alertmanager sink in-process: event → alert mapping, the book, re-send timing (injected
clock), durability across a restart, config. The real servers are in tests/stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from poolwatch.config.load import ConfigError, load
from poolwatch.config.secrets import redacted
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Event
from poolwatch.runtime.metrics import registry_for
from poolwatch.runtime.plan import build_sinks
from poolwatch.runtime.runner import Runner
from poolwatch.sinks.alertmanager.alertbook import MAX_EXTRA_LABELS, AlertBook, stamp, to_alert
from poolwatch.sinks.alertmanager.settings import AlertmanagerSettings
from poolwatch.sinks.alertmanager.sink import AlertmanagerSink
from tests.eventually import eventually
from tests.factories import HOLDERS_CONTEXT, HOLDERS_LINE, make_event

T0 = datetime(2026, 11, 27, 17, 4, 17, tzinfo=UTC)
TEAMS = {"postgres": "database", "host": "infrastructure"}


def event(**changes: Any) -> Event:
    moments = {"time": T0 + timedelta(seconds=5), "since": T0}
    message = "PostgreSQL main: 160/197 client connections (81%), above warning 150"
    return make_event(**{**moments, "message": message, **changes})


def critical(**changes: Any) -> Event:
    return event(alert="PostgreSQLConnectionPoolCritical", severity="critical", **changes)


def test_firing_event_maps_to_an_alert() -> None:
    alert = to_alert(
        event(), TEAMS, "https://grafana.example/d/pool?var-instance={instance}&a={alert}"
    )
    assert alert == {
        "labels": {
            "alertname": "PostgreSQLConnectionPoolHigh",
            "severity": "warning",
            "instance": "main",
            "source": "postgres",
            "check": "connections",
            "team": "database",
        },
        "annotations": {
            "summary": "PostgreSQLConnectionPoolHigh on postgres main (connections)",
            "description": "PostgreSQL main: 160/197 client connections (81%), above warning 150",
        },
        "startsAt": "2026-11-27T17:04:17.000Z",
        "generatorURL": "https://grafana.example/d/pool?var-instance=main&a=PostgreSQLConnectionPoolHigh",
    }


def test_resolved_event_carries_ends_at_and_no_generator_url_by_default() -> None:
    alert = to_alert(event(status="resolved", message="back"), TEAMS)
    assert alert["endsAt"] == "2026-11-27T17:04:22.000Z"
    assert alert["startsAt"] == "2026-11-27T17:04:17.000Z"
    assert alert["annotations"]["description"] == "back"
    assert "generatorURL" not in alert


def test_event_labels_are_sanitised_bounded_and_cannot_override() -> None:
    labels = {"mount-point": "/", "9lives": "x", "severity": "none", "empty": "", "long": "v" * 999}
    labels.update({f"z{n:02d}": str(n) for n in range(40)})
    mapped = to_alert(event(source="docker", labels=labels), TEAMS)["labels"]
    assert mapped["severity"] == "warning"
    assert "team" not in mapped  # docker is not in this mapping
    assert mapped["mount_point"] == "/"
    assert mapped["_9lives"] == "x"
    assert "empty" not in mapped
    assert len(mapped["long"]) == 256
    assert len(mapped) == 5 + MAX_EXTRA_LABELS
    assert all(name.replace("_", "a").isalnum() for name in mapped)


def names(alerts: list[dict[str, Any]]) -> dict[str, bool]:
    """alertname → resolved?"""
    return {a["labels"]["alertname"]: "endsAt" in a for a in alerts}


def test_escalation_keeps_warning_deescalation_and_resolution_end_the_rest() -> None:
    book = AlertBook(TEAMS, resolved_resend=300)
    assert names(book.record(event())) == {"PostgreSQLConnectionPoolHigh": False}
    assert names(book.record(critical())) == {"PostgreSQLConnectionPoolCritical": False}
    assert book.counts() == (2, 0)  # the warning stays; the seed's inhibit rule silences it
    assert names(book.record(event(time=T0 + timedelta(seconds=9)))) == {
        "PostgreSQLConnectionPoolCritical": True,
        "PostgreSQLConnectionPoolHigh": False,
    }
    book.record(critical())
    resolved = book.record(critical(status="resolved", time=T0 + timedelta(seconds=30)))
    assert names(resolved) == {
        "PostgreSQLConnectionPoolHigh": True,
        "PostgreSQLConnectionPoolCritical": True,
    }
    assert all(a["endsAt"] == "2026-11-27T17:04:47.000Z" for a in resolved)
    assert book.counts() == (0, 2)


def test_resolved_alerts_are_resent_for_the_window_then_forgotten() -> None:
    book = AlertBook(TEAMS, resolved_resend=300)
    book.record(event(instance="other"))
    resolved_at = T0 + timedelta(seconds=10)
    book.record(event(status="resolved", time=resolved_at))
    assert len(book.snapshot(resolved_at + timedelta(seconds=299))) == 2
    assert [
        a["labels"]["instance"] for a in book.snapshot(resolved_at + timedelta(seconds=300))
    ] == ["other"]


def test_firing_alerts_are_valid_until_four_resends_from_when_they_are_sent() -> None:
    firing, done = to_alert(event(), TEAMS), to_alert(event(status="resolved"), TEAMS)
    sent = stamp([firing, done], T0 + timedelta(hours=1), 240)
    assert sent[0]["endsAt"] == "2026-11-27T18:08:17.000Z"
    assert sent[1]["endsAt"] == done["endsAt"]
    assert "endsAt" not in firing  # the stored payload is not changed


# --- the sink, against an in-process transport -------------------------------------------------


class Recorder:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[list[dict[str, Any]]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v2/alerts"
        if self.status == 200:
            self.bodies.append(json.loads(request.content))
        body = b"" if self.status == 200 else b"down"
        return httpx.Response(self.status, stream=httpx.ByteStream(body))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def config(**changes: Any) -> AlertmanagerSettings:
    base = {"urls": ["http://am:9093"], "teams": TEAMS, "retry_initial": 0.01, "retry_max": 0.05}
    return AlertmanagerSettings.model_validate({**base, **changes})


async def wait_until(predicate: Any) -> None:
    await eventually(predicate, "the delivery loop to get there", within=10, every=0.01)


def sink_for(tmp_path: Path, recorder: Recorder, clock: Clock) -> AlertmanagerSink:
    return AlertmanagerSink(
        config(), "http://am:9093/", tmp_path, clock=clock, transport=httpx.MockTransport(recorder)
    )


async def test_resend_sends_the_book_as_it_is_when_delivered(tmp_path: Path) -> None:
    recorder, clock = Recorder(), Clock()
    sink = sink_for(tmp_path, recorder, clock)
    await sink.start()
    try:
        assert not await sink.resend()  # nothing to re-send yet
        await sink.send(event())
        # a re-send is queued only once the queue is empty: the recorder sees a body before the
        # sink has taken it off the queue, so wait for the delivered count, bounded
        await wait_until(lambda: sink.metrics()["delivered"] == 1)
        assert recorder.bodies[0][0]["endsAt"] == "2026-11-27T17:08:17.000Z"  # T0 + 4 x 1m
        clock.now = T0 + timedelta(minutes=1)
        assert await sink.resend()
        await wait_until(lambda: len(recorder.bodies) == 2)
        assert [a["endsAt"] for a in recorder.bodies[1]] == ["2026-11-27T17:09:17.000Z"]
        await sink.send(event(status="resolved", time=clock.now))
        await wait_until(lambda: sink.metrics()["delivered"] == 3)
        clock.now += timedelta(minutes=4, seconds=59)
        assert await sink.resend()
        await wait_until(lambda: len(recorder.bodies) == 4)
        assert recorder.bodies[3] == recorder.bodies[2]  # resolved, re-sent unchanged
        assert recorder.bodies[3][0]["endsAt"] == "2026-11-27T17:05:17.000Z"
        clock.now += timedelta(seconds=1)
        assert not await sink.resend()  # the window is over: the book is empty
        # the recorder sees a body before the sink has counted its answer: wait, bounded
        await wait_until(lambda: sink.metrics()["delivered"] == 4)
    finally:
        await sink.close(1)


async def test_a_peer_that_is_away_gets_one_marker_not_one_per_interval(tmp_path: Path) -> None:
    recorder, clock = Recorder(status=503), Clock()
    sink = sink_for(tmp_path, recorder, clock)
    await sink.start()
    try:
        await sink.send(event())
        await wait_until(lambda: sink.metrics()["failures"] >= 1)
        assert not await sink.resend()  # the event is still waiting
        assert sink.metrics()["queue_depth"] == 1
    finally:
        await sink.close(0)


async def test_a_resolved_alert_survives_a_restart_before_delivery(tmp_path: Path) -> None:
    down, clock = Recorder(status=503), Clock()
    first = sink_for(tmp_path, down, clock)
    await first.start()
    await first.send(event())
    await first.send(event(status="resolved", time=T0 + timedelta(seconds=20)))
    await first.close(0)

    up = Recorder()
    clock.now = T0 + timedelta(minutes=30)
    second = sink_for(tmp_path, up, clock)
    await second.start()
    try:
        await wait_until(lambda: len(up.bodies) == 2)
    finally:
        await second.close(1)
    firing, resolved = (body[0] for body in up.bodies)
    assert firing["endsAt"] == "2026-11-27T17:38:17.000Z"  # stamped when sent, not when queued
    assert resolved["endsAt"] == "2026-11-27T17:04:37.000Z"
    assert resolved["labels"]["alertname"] == "PostgreSQLConnectionPoolHigh"


async def test_an_invalid_alert_is_dead_lettered_not_retried(tmp_path: Path) -> None:
    clock = Clock()
    sink = sink_for(tmp_path, Recorder(status=400), clock)
    await sink.start()
    try:
        await sink.send(event())
        await wait_until(lambda: sink.metrics()["dead_lettered"] == 1)
        assert sink.metrics()["queue_depth"] == 0
    finally:
        await sink.close(0)


# --- config and assembly ------------------------------------------------------------------------


def test_environment_enables_one_sink_per_peer(tmp_path: Path) -> None:
    env = {
        "POOLWATCH_ALERTMANAGER_URL": "http://am1:9093, https://u:pw-s3cret@am2:9093/",
        "POOLWATCH_STATE_DIR": str(tmp_path),
    }
    loaded = load(None, env)
    assert loaded.alertmanager.urls == ["http://am1:9093", "https://u:pw-s3cret@am2:9093"]
    assert loaded.alertmanager.teams == {
        "postgres": "database",
        "redis": "database",
        "host": "infrastructure",
        "docker": "infrastructure",
        "pgbouncer": "database",
    }
    assert "pw-s3cret" not in json.dumps(redacted(loaded))
    sinks = [s for s in build_sinks(loaded, stdout=False) if isinstance(s, AlertmanagerSink)]
    assert [s.name for s in sinks] == ["alertmanager:am1:9093", "alertmanager:am2:9093"]
    assert len({s.queue.path for s in sinks}) == 2
    assert not [s for s in build_sinks(load(None, {})) if isinstance(s, AlertmanagerSink)]


def test_a_peer_listed_twice_is_refused() -> None:
    env = {"POOLWATCH_ALERTMANAGER_URL": "http://am:9093,http://am:9093/"}
    with pytest.raises(
        ConfigError, match=r"alertmanager\.urls \(from POOLWATCH_ALERTMANAGER_URL\)"
    ):
        load(None, env)


def test_stats_reach_the_metrics_endpoint(tmp_path: Path) -> None:
    sink = sink_for(tmp_path, Recorder(), Clock())
    runner = Runner([], [sink], Evaluator("test"))
    text = generate_latest(registry_for(runner.view, lambda: list(runner.sinks))).decode()
    assert 'poolwatch_sink_queue_depth{sink="alertmanager:am:9093"} 0.0' in text
    assert 'poolwatch_sink_alerts_firing{sink="alertmanager:am:9093"} 0.0' in text


def test_context_becomes_one_holders_annotation_and_never_a_label() -> None:
    plain = to_alert(critical(), TEAMS)
    held = to_alert(critical(context=HOLDERS_CONTEXT), TEAMS)
    assert held["labels"] == plain["labels"]
    assert held["annotations"] == {**plain["annotations"], "holders": HOLDERS_LINE}
    assert "holders" not in plain["annotations"]
