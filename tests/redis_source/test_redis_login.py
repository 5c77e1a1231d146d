"""The Redis login probe against a real redis-server: what the kept connection cannot see.

A changed `requirepass` and a full server (`maxclients`): poolwatch's own connection stays
authenticated and keeps answering `INFO` in both, so `up` and `connected_clients` stay as they
were, while every new client is refused. RedisLoginFailing must fire after two failed probes in a
row, with the class of failure in its message, and resolve when clients get in again. The
daemon's loop (`Runner.run`) runs in this process (tests/running.py); waits are bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.redis_source.harness import Crowd, RedisServer, raise_fd_limit, redis_target
from tests.running import Running

from poolwatch.sources.redis.collector import RedisCollector

pytestmark = pytest.mark.integration

INTERVAL = 0.3
TIMEOUT = 1.0
PROBE_INTERVAL = 1.0
ALERT = "RedisLoginFailing"
BOUND = PROBE_INTERVAL + 2 * TIMEOUT + 3 * INTERVAL + 20.0
"""The worst case of docs/sources/redis.md, plus slack for a shared machine: a bound."""
MAXCLIENTS = 20


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[RedisServer]:
    raise_fd_limit()
    server = RedisServer(tmp_path, MAXCLIENTS)
    server.start()
    try:
        yield server
    finally:
        server.close()


def collector_for(url: str) -> RedisCollector:
    fast = {"interval": INTERVAL, "timeout": TIMEOUT, "probe_interval": PROBE_INTERVAL}
    return RedisCollector(redis_target(url).model_copy(update=fast))


async def logged_in(daemon: Running) -> None:
    await daemon.until("a first login_ok", lambda: daemon.latest("login_ok") is not None, 20)


@pytest.mark.parametrize(
    ("before", "said"),
    [
        ("", "authentication rejected: Authentication required."),  # NOAUTH: none was sent
        ("old-password", "authentication rejected: invalid username-password pair"),  # WRONGPASS
    ],
    ids=["requirepass-set", "requirepass-changed"],
)
async def test_a_changed_password_fires_while_the_kept_connection_works(
    small_redis: RedisServer, before: str, said: str
) -> None:
    admin = small_redis.probe  # the test's own connection: it stays authenticated throughout
    admin.config_set("requirepass", before)
    try:
        url = small_redis.url.replace("redis://", f"redis://:{before}@", 1) if before else ""
        collector = collector_for(url or small_redis.url)
        async with Running(collector) as daemon:
            await logged_in(daemon)
            admin.config_set("requirepass", "now-another")
            fired = await daemon.sink.wait_for(ALERT, "firing", BOUND)
            assert daemon.reading("up").value == 1
            assert daemon.reading("connected_clients").value >= 2
            assert fired.severity == "critical"
            assert fired.check == "login_ok"
            assert said in fired.message, fired.message
            assert "now-another" not in fired.message
            assert not before or before not in fired.message
            assert not daemon.sink.of("RedisDown", "firing")

            admin.config_set("requirepass", before)
            await daemon.sink.wait_for(ALERT, "resolved", BOUND)
    finally:
        admin.config_set("requirepass", "")


async def test_a_full_server_refuses_the_probe_as_full(small_redis: RedisServer) -> None:
    crowd = Crowd(small_redis)
    try:
        async with Running(collector_for(small_redis.url)) as daemon:
            await logged_in(daemon)
            crowd.set_total(MAXCLIENTS)  # poolwatch, the test's own, and 18 sockets
            assert b"max number of clients reached" in crowd.refused()
            fired = await daemon.sink.wait_for(ALERT, "firing", BOUND)
            assert fired.severity == "critical"
            assert "refused because full: max number of clients reached" in fired.message
            # the kept connection still reads the true count
            clients = daemon.reading("connected_clients")
            assert (clients.value, clients.limit) == (MAXCLIENTS, MAXCLIENTS)
            assert daemon.reading("up").value == 1

            crowd.set_total(MAXCLIENTS - 5)
            await daemon.sink.wait_for(ALERT, "resolved", BOUND)
    finally:
        crowd.close()
