"""RedisKeyspaceHitRateLow against a real redis-server: judged only over enough lookups, and an
absent hit rate resolves through `clear_for` like any other reading, not at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.redis_source.harness import START, Polls, RedisServer, redis_target

from poolwatch.core.backoff import Backoff
from poolwatch.core.model import Event
from poolwatch.sources.redis.collector import RedisCollector

pytestmark = pytest.mark.integration

ALERT = "RedisKeyspaceHitRateLow"


def hit_rate_events(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.status, e.message) for e in events if e.alert == ALERT]


@pytest.fixture
async def driven(redis_server: RedisServer) -> Any:
    """A collector whose clock is the runner's: each poll one interval later."""
    drive: Polls | None = None

    def clock() -> float:
        # the login probe reads the clock while the collector is built, before `drive` is
        return (drive.now if drive is not None else START).timestamp()

    collector = RedisCollector(
        redis_target(redis_server.url), backoff=Backoff(0.01, 0.05), clock=clock
    )
    drive = Polls(collector)
    yield drive
    await collector.close()


async def test_one_miss_of_an_idle_cache_never_fires(
    redis_server: RedisServer, driven: Polls
) -> None:
    await driven.poll()
    redis_server.probe.get("poolwatch-test-absent")  # the only lookup: a miss, 0 % of one
    for _ in range(4):
        readings, events = await driven.poll()
        assert "keyspace_hit_rate_percent" not in readings
        assert hit_rate_events(events) == []


async def test_a_slow_cache_is_judged_once_enough_lookups_are_seen(
    redis_server: RedisServer, driven: Polls
) -> None:
    await driven.poll()
    seen = []
    for _ in range(3):
        redis_server.probe.mget(["poolwatch-test-absent"] * 40)  # 40 misses a poll
        readings, events = await driven.poll()
        seen.append(readings.get("keyspace_hit_rate_percent"))
        fired = hit_rate_events(events)
    assert seen[:2] == [None, None]
    assert seen[2] is not None
    assert seen[2].value == 0
    assert seen[2].message == "over the last 120 lookups, 3 polls"
    assert [status for status, _ in fired] == ["firing"]


async def test_an_absent_hit_rate_resolves_after_clear_for_polls(
    redis_server: RedisServer, driven: Polls
) -> None:
    await driven.poll()
    redis_server.probe.mget(["poolwatch-test-absent"] * 150)
    _, events = await driven.poll()
    assert [status for status, _ in hit_rate_events(events)] == ["firing"]
    # no traffic: within the window the last 150 lookups are still the judgement
    readings, events = await driven.poll()
    assert readings["keyspace_hit_rate_percent"].value == 0
    assert hit_rate_events(events) == []
    # past the window there is nothing to judge: absent, which is not "gone" at once ...
    driven.now += timedelta(minutes=10)
    readings, events = await driven.poll()
    assert "keyspace_hit_rate_percent" not in readings
    assert hit_rate_events(events) == []
    # ... but a poll toward OK: resolved after clear_for (2) such polls
    _, events = await driven.poll()
    assert hit_rate_events(events) == [
        (
            "resolved",
            "Redis main: keyspace hit rate percent not reported for 2 polls (last 0.0%); resolved",
        )
    ]
    _, events = await driven.poll()
    assert hit_rate_events(events) == []
