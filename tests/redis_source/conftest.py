"""Fixtures for the Redis source tests: private redis-servers and collectors.

Servers are shared per session where a test can leave them as it found them (the machine is
small and shared): `redis_server` (maxclients 1000) and `redis_no_config` (CONFIG renamed away,
maxclients 100). `own_redis` is a server a test may stop and start. Each fails, never skips,
when redis-server is missing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from tests.redis_source.harness import Crowd, Polls, RedisServer, raise_fd_limit, redis_target

from poolwatch.core.backoff import Backoff
from poolwatch.sources.redis.collector import RedisCollector


def _server(tmp: Path, maxclients: int, *extra: str) -> Iterator[RedisServer]:
    raise_fd_limit()
    server = RedisServer(tmp, maxclients, *extra)
    server.start()
    try:
        maxclients_seen = int(server.info()["maxclients"])
        if maxclients_seen != maxclients:
            pytest.fail(
                f"redis-server lowered maxclients to {maxclients_seen} (ulimit -n too low?)"
            )
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _server(tmp_path_factory.mktemp("redis"), 1000)


@pytest.fixture(scope="session")
def redis_no_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _server(
        tmp_path_factory.mktemp("redis-no-config"), 100, "--rename-command", "CONFIG", ""
    )


@pytest.fixture
def redis_200(tmp_path: Path) -> Iterator[RedisServer]:
    """The seed's issue: a Redis with `maxclients 200`."""
    yield from _server(tmp_path, 200)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from _server(tmp_path, 1000)


@pytest.fixture
async def make_collector() -> AsyncIterator[Callable[..., RedisCollector]]:
    """Collectors with a quick backoff, closed after the test; `clock` (the backoff's, the
    login probe's) is injected where a test moves time past the backoff itself."""
    made: list[RedisCollector] = []

    def make(url: str, clock: Callable[[], float] = time.monotonic, **env: str) -> RedisCollector:
        collector = RedisCollector(
            redis_target(url, **env), backoff=Backoff(0.01, 0.05), clock=clock
        )
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.close()


@pytest.fixture
def polls() -> Callable[[RedisCollector], Polls]:
    return Polls


def _crowd(server: RedisServer) -> Iterator[Crowd]:
    # start calm: only the probe is connected (a previous test's connections have gone)
    server.wait_for_clients(1)
    people = Crowd(server)
    try:
        yield people
    finally:
        people.close()


@pytest.fixture
def crowd(redis_server: RedisServer) -> Iterator[Crowd]:
    """Real client connections on the shared server, dispersed afterwards."""
    yield from _crowd(redis_server)


@pytest.fixture
def crowd_no_config(redis_no_config: RedisServer) -> Iterator[Crowd]:
    yield from _crowd(redis_no_config)
