"""The reconnect gate (poolwatch.sources.reconnect) on a fake clock: one wording, one count, one
pair of log lines for every source that keeps a connection, and for the login probe."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from poolwatch.config import load as config
from poolwatch.core.backoff import Backoff
from poolwatch.logs import get_logger
from poolwatch.sources import SourceError
from poolwatch.sources.pgbouncer.collector import PgBouncerCollector
from poolwatch.sources.postgres.collector import PostgresCollector
from poolwatch.sources.reconnect import ReconnectGate
from poolwatch.sources.redis.collector import RedisCollector
from tests.net import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(clock: Clock, backoff: Backoff | None = None) -> ReconnectGate:
    return ReconnectGate.connection(
        "demo",
        get_logger(source="demo", instance="a"),
        backoff if backoff is not None else Backoff(4.0, 30.0, rand=lambda lo, hi: lo),
        clock,
    )


def test_an_attempt_waits_for_the_backoff_and_says_for_how_long() -> None:
    clock = Clock()
    doors = gate(clock)
    assert doors.closed() is None  # never failed: go ahead
    assert doors.failed("refused") == 2.0
    clock.now += 0.75
    assert doors.closed() == "refused; next attempt in 1.2s"
    clock.now += 1.25
    assert doors.closed() is None
    assert doors.failed("refused again") == 4.0  # doubled, with the same jitter
    clock.now += 3.5
    assert doors.closed() == "refused again; next attempt in 0.5s"


def test_the_log_lines_name_the_streak_and_the_recovery_once() -> None:
    clock = Clock()
    doors = gate(clock)
    with capture_logs() as logs:
        doors.failed("refused")
        doors.failed("refused", saturated=True)
        assert doors.saturated
        doors.succeeded()
        doors.succeeded()  # no streak ended: no second line
    events: list[dict[str, Any]] = [dict(line) for line in logs]
    assert [(e["event"], e.get("failures_in_a_row")) for e in events] == [
        ("demo_connect_failed", 1),
        ("demo_connect_failed", 2),
        ("demo_reconnected", None),
    ]
    assert events[0]["retry_in_seconds"] == 2.0
    assert events[2]["after_failures"] == 2
    assert (doors.failures, doors.saturated, doors.closed()) == (0, False, None)


def test_forgive_starts_afresh_without_a_line() -> None:
    clock = Clock()
    doors = gate(clock)
    doors.failed("refused")
    with capture_logs() as logs:
        doors.forgive()
        doors.succeeded()
    assert logs == []
    assert doors.closed() is None


@pytest.mark.parametrize("extra", [{}, {"seconds": 0.5}])
def test_without_a_backoff_the_next_attempt_may_start_at_once(extra: dict[str, Any]) -> None:
    clock = Clock()
    doors = ReconnectGate(
        get_logger(),
        failed_event="probe_failed",
        recovered_event="probe_ok",
        backoff=None,
        clock=clock,
    )
    with capture_logs() as logs:
        assert doors.failed("timed out", **extra) == 0.0
    assert doors.failures == 1
    assert doors.closed() is None
    assert "retry_in_seconds" not in logs[0]
    assert all(logs[0][key] == value for key, value in extra.items())


def _collector(source: str, port: int, clock: Clock) -> Any:
    """A collector of `source` aimed at a port where nothing listens (a refusal is real)."""
    backoff = Backoff(4.0, 30.0, rand=lambda lo, hi: lo)
    if source == "postgres":
        dsn = f"postgresql://pw@127.0.0.1:{port}/postgres"
        target = config.load(env={"POOLWATCH_POSTGRES_DSN": dsn}).postgres.targets[0]
        return PostgresCollector(target, clock=clock, backoff=backoff)
    if source == "pgbouncer":
        dsn = f"postgresql://pw@127.0.0.1:{port}/pgbouncer"
        bouncer = config.load(env={"POOLWATCH_PGBOUNCER_DSN": dsn}).pgbouncer.targets[0]
        return PgBouncerCollector(bouncer, clock=clock, backoff=backoff)
    url = f"redis://127.0.0.1:{port}/0"
    redis = config.load(env={"POOLWATCH_REDIS_URL": url}).redis.targets[0]
    return RedisCollector(redis, clock=clock, backoff=backoff)


@pytest.mark.parametrize("source", ["postgres", "pgbouncer", "redis"])
async def test_every_collector_words_the_wait_alike_and_logs_alike(source: str) -> None:
    """Nothing listens: the first poll fails and is logged; a poll inside the backoff does not
    try, and says when the next attempt comes, in the same words for every source."""
    clock = Clock()
    collector = _collector(source, free_port(), clock)
    try:
        with capture_logs() as logs, pytest.raises(SourceError) as first:
            await collector.collect()
        assert "next attempt" not in str(first.value)
        failed = [line for line in logs if line["event"] == f"{source}_connect_failed"]
        assert [line["failures_in_a_row"] for line in failed] == [1]
        clock.now += 1.0
        with pytest.raises(SourceError, match=r"; next attempt in 1\.0s$"):
            await collector.collect()
    finally:
        await collector.close()
