"""A Redis at `maxclients 200`, filled with real clients while poolwatch is connected.

New clients get "max number of clients reached" for as long as it lasts, so the exhausted alert
must fire and hold for as long as it lasts too, and resolve only when a slot is free again, even
though RedisRejectingConnections (a per-poll delta) resolves as soon as nobody knocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.redis_source.harness import Crowd, Polls, RedisServer

from poolwatch.core.model import Event
from poolwatch.sources.redis.collector import RedisCollector

pytestmark = pytest.mark.integration

MAXCLIENTS = 200


def alerts(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.alert, e.status, e.severity) for e in events]


async def test_full_redis_stays_critical_while_full_and_resolves_when_drained(
    redis_200: RedisServer,
    make_collector: Callable[..., RedisCollector],
    polls: Callable[[RedisCollector], Polls],
) -> None:
    # the seed's absolute 800/900 could never fire here: the full server must page by itself
    collector = make_collector(redis_200.url, REDIS_CONN_WARNING="800", REDIS_CONN_CRITICAL="900")
    drive = polls(collector)
    crowd = Crowd(redis_200)
    try:
        readings, _ = await drive.poll()
        assert readings["pool_exhausted"].value == 0
        crowd.set_total(MAXCLIENTS)  # poolwatch, the tests' probe and the crowd
        assert crowd.refused().startswith(b"-ERR max number of clients reached")

        seen: list[Event] = []
        for _ in range(5):
            readings, events = await drive.poll()
            seen += events
            assert readings["pool_exhausted"].value == 1
            assert readings["connected_clients"].value == MAXCLIENTS
        # one page for the whole time it was full, never resolved while full; the rejection
        # delta fired and resolved on its own
        exhausted = [e for e in seen if e.alert == "RedisConnectionsExhausted"]
        assert alerts(exhausted) == [("RedisConnectionsExhausted", "firing", "critical")]
        assert exhausted[0].context is not None
        holders: Any = exhausted[0].context["holders"]
        assert sum(h["count"] for h in holders) + int(exhausted[0].context["other_groups"]) > 0
        assert "200 clients of maxclients 200" in exhausted[0].message
        assert ("RedisRejectingConnections", "firing", "warning") in alerts(seen)
        assert ("RedisRejectingConnections", "resolved", "warning") in alerts(seen)
        assert not [
            e for e in seen if e.alert.startswith("RedisConnections") and e.severity != "critical"
        ]

        crowd.set_total(MAXCLIENTS // 2)
        drained: list[Event] = []
        for _ in range(2):  # clear_for: 2 polls
            readings, events = await drive.poll()
            drained += events
            assert readings["pool_exhausted"].value == 0
        assert alerts(drained) == [("RedisConnectionsExhausted", "resolved", "critical")]
    finally:
        crowd.close()
