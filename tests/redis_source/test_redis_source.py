"""The Redis source against real redis-servers, crowded with real client connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs
from tests.eventually import eventually
from tests.fakeclock import FakeClock
from tests.recording import RecordingSink
from tests.redis_source.harness import (
    Crowd,
    Polls,
    RedisServer,
    readme_readings,
    redis_target,
    wait_for,
)

from poolwatch.config import load as config
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Event
from poolwatch.runtime.plan import build_collectors
from poolwatch.runtime.runner import Runner
from poolwatch.runtime.settings import RuntimeSettings
from poolwatch.sources.redis.collector import RedisCollector
from poolwatch.sources.redis.info import UNITS
from poolwatch.sources.redis.readings import CHECKS

pytestmark = pytest.mark.integration

MakeCollector = Callable[..., RedisCollector]
MakePolls = Callable[[RedisCollector], Polls]


def alerts(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.alert, e.status, e.severity) for e in events]


def poolwatch_clients(server: RedisServer) -> list[dict[str, Any]]:
    return [c for c in server.probe.client_list() if c["name"] == "poolwatch"]


async def test_readings_are_the_documented_ones_and_equal_info(
    redis_server: RedisServer, make_collector: MakeCollector, polls: MakePolls
) -> None:
    collector = make_collector(redis_server.url)
    drive = polls(collector)
    redis_server.probe.config_set("maxmemory", "64mb")
    try:
        first, _ = await drive.poll()
        redis_server.probe.set("present", "1")
        # 150 lookups (a hit rate needs 100), each key counted: 2 hits to 1 miss
        redis_server.probe.mget(["present", "present", "absent"] * 50)
        second, _ = await drive.poll()
        stats = redis_server.info()
    finally:
        redis_server.probe.config_set("maxmemory", "0")
    assert set(first) == set(CHECKS) - {
        "rejected_connections",
        "evicted_keys",
        "keyspace_hit_rate_percent",
    }
    assert set(second) == set(CHECKS)
    assert {check: r.unit for check, r in second.items()} == UNITS == readme_readings()
    assert second["connected_clients"].value == stats["connected_clients"]
    assert second["connected_clients"].limit == 1000
    assert second["keyspace_hit_rate_percent"].value == pytest.approx(200 / 3)
    assert second["rejected_connections"].value == 0
    # one connection for every poll, named poolwatch
    assert len(poolwatch_clients(redis_server)) == 1


async def test_crowd_raises_warning_then_critical_then_resolves(
    redis_server: RedisServer, crowd: Crowd, make_collector: MakeCollector, polls: MakePolls
) -> None:
    collector = make_collector(redis_server.url)
    drive = polls(collector)
    await drive.poll()
    held = poolwatch_clients(redis_server)[0]["id"]

    crowd.set_total(810)
    readings, events = await drive.poll()
    assert readings["connected_clients"].value == redis_server.clients() == 810
    assert alerts(events) == [("RedisConnectionsHigh", "firing", "warning")]
    assert events[0].threshold == 800
    assert events[0].limit == 1000

    crowd.set_total(905)
    readings, events = await drive.poll()
    assert readings["connected_clients"].value == redis_server.clients() == 905
    assert alerts(events) == [("RedisConnectionsCritical", "firing", "critical")]

    crowd.set_total(100)
    first, early = await drive.poll()
    readings, events = await drive.poll()  # clear_for: 2 polls
    assert first["connected_clients"].value == readings["connected_clients"].value == 100
    assert early == []
    assert alerts(events) == [("RedisConnectionsCritical", "resolved", "critical")]
    # never a new connection per poll: the same one all along
    assert [c["id"] for c in poolwatch_clients(redis_server)] == [held]


async def test_full_server_true_count_rejections_and_saturation(
    redis_server: RedisServer, crowd: Crowd, make_collector: MakeCollector, polls: MakePolls
) -> None:
    clock = FakeClock()
    collector = make_collector(redis_server.url, clock=clock.monotonic)
    drive = polls(collector)
    await drive.poll()

    crowd.set_total(1000)
    readings, events = await drive.poll()
    assert readings["connected_clients"].value == redis_server.clients() == 1000
    assert readings["up"].value == 1
    # every slot taken while poolwatch is connected: exhausted, whatever the thresholds say
    assert readings["pool_exhausted"].value == 1
    assert "1000 clients of maxclients 1000" in (readings["pool_exhausted"].message or "")
    assert sorted(alerts(events)) == [
        ("RedisConnectionsCritical", "firing", "critical"),
        ("RedisConnectionsExhausted", "firing", "critical"),
    ]

    assert crowd.refused().startswith(b"-ERR max number of clients reached")
    readings, events = await drive.poll()
    assert readings["connected_clients"].value == 1000
    assert readings["rejected_connections"].value == 1
    assert alerts(events) == [("RedisRejectingConnections", "firing", "warning")]

    # poolwatch loses its connection and someone else takes the slot before it can return
    redis_server.probe.client_kill_filter(_id=poolwatch_clients(redis_server)[0]["id"])
    crowd.set_total(1000)
    readings, events = await drive.poll()
    assert readings["up"].value == 1
    assert readings["pool_exhausted"].value == 1
    assert "max number of clients reached" in (readings["pool_exhausted"].message or "")
    # no count the server did not give in this poll: absent, not invented from an old limit
    assert "connected_clients" not in readings
    assert readings["rejected_connections"].value >= 1
    assert alerts(events) == []  # still the same outage: exhausted fires on
    assert {key.check: s.label for key, s, _ in drive.evaluator.firing()} == {
        "connected_clients": "critical",  # absent is not resolved
        "rejected_connections": "warning",
        "pool_exhausted": "critical",
    }

    # a poolwatch that starts now sees the refusal as critical straight away
    fresh = Evaluator("test-host")
    judged = fresh.observe("redis:main", list(readings.values()), collector.rules, drive.now)
    assert alerts(judged) == [
        ("RedisConnectionsExhausted", "firing", "critical"),
        ("RedisRejectingConnections", "firing", "warning"),
    ]
    assert "max number of clients reached" in judged[0].message

    # room again: poolwatch reconnects, reports the true count, and the refusal resolves
    crowd.set_total(500)
    await clock.advance(0.06)  # past the test backoff's cap
    readings, events = await drive.poll()
    assert readings["connected_clients"].value == redis_server.clients() == 501  # with poolwatch
    assert readings["pool_exhausted"].value == 0
    _, more = await drive.poll()  # clear_for: 2 polls
    assert ("RedisConnectionsExhausted", "resolved", "critical") in alerts(events + more)


async def test_config_renamed_limit_from_info_and_percent_thresholds(
    redis_no_config: RedisServer,
    crowd_no_config: Crowd,
    make_collector: MakeCollector,
    polls: MakePolls,
) -> None:
    with pytest.raises(redis.ResponseError, match="unknown command"):
        redis_no_config.probe.config_get("maxclients")
    collector = make_collector(
        redis_no_config.url, REDIS_CONN_WARNING="50%", REDIS_CONN_CRITICAL="90%"
    )
    drive = polls(collector)
    # asked directly, CONFIG GET's absence is an answer, not an error
    await drive.poll()
    assert await collector.maxclients_from_config() is None

    crowd_no_config.set_total(60)
    readings, events = await drive.poll()
    assert readings["connected_clients"].value == 60
    assert readings["connected_clients"].limit == 100
    assert alerts(events) == [("RedisConnectionsHigh", "firing", "warning")]
    assert events[0].threshold == 50
    crowd_no_config.set_total(95)
    _, events = await drive.poll()
    assert alerts(events) == [("RedisConnectionsCritical", "firing", "critical")]
    assert events[0].threshold == 90


async def test_config_get_fallback_on_a_server_that_allows_it(
    redis_server: RedisServer, make_collector: MakeCollector
) -> None:
    collector = make_collector(redis_server.url)
    await collector.collect()
    assert await collector.maxclients_from_config() == 1000


async def test_acl_user_without_config_and_no_secret_in_failures(
    redis_server: RedisServer, make_collector: MakeCollector, polls: MakePolls, tmp_path: Path
) -> None:
    secret = "acl-secret-4711"
    redis_server.probe.acl_setuser(
        "watcher", enabled=True, passwords=[f"+{secret}"], commands=["+info", "+client|setname"]
    )
    try:
        host = f"127.0.0.1:{redis_server.port}"
        collector = make_collector(f"redis://watcher:{secret}@{host}/0")
        assert await collector.maxclients_from_config() is None  # not connected yet
        readings, _ = await polls(collector).poll()
        assert readings["up"].value == 1
        assert readings["connected_clients"].limit == 1000
        assert await collector.maxclients_from_config() is None  # NOPERM is an answer

        # the password from a file (Docker secrets), the user from its own key
        secret_file = tmp_path / "redis_password"
        secret_file.write_text(secret + "\n")
        config_file = tmp_path / "poolwatch.yaml"
        config_file.write_text(
            "redis:\n  targets:\n"
            f"    - {{name: cache, url: 'redis://{host}/0', username: watcher,"
            f" password_file: '{secret_file}'}}\n"
        )
        from_file = RedisCollector(config.load(config_file, env={}).redis.targets[0])
        try:
            readings, _ = await polls(from_file).poll()
            assert readings["up"].value == 1
        finally:
            await from_file.close()

        wrong = make_collector(f"redis://watcher:wrong-{secret}@{host}/0")
        readings, _ = await polls(wrong).poll()
        assert readings["up"].value == 0
        assert host in (readings["up"].message or "")
        assert secret not in (readings["up"].message or "")
    finally:
        redis_server.probe.acl_deluser("watcher")


async def test_stopped_server_is_down_within_two_intervals_and_resolves(
    own_redis: RedisServer, make_collector: MakeCollector, polls: MakePolls
) -> None:
    clock = FakeClock()
    collector = make_collector(own_redis.url, clock=clock.monotonic)
    drive = polls(collector)
    readings, _ = await drive.poll()
    assert readings["up"].value == 1

    own_redis.stop()
    fired: list[Event] = []
    for _ in range(2):
        readings, events = await drive.poll()
        fired += events
    assert alerts(fired) == [("RedisDown", "firing", "critical")]
    assert readings["up"].value == 0
    assert readings["up"].message

    own_redis.start()
    resolved: list[Event] = []
    for _ in range(2):  # reconnected on the first poll, resolved on the second (clear_for)
        await clock.advance(0.06)  # past the test backoff's cap: every poll tries again
        readings, events = await drive.poll()
        resolved += events
    assert alerts(resolved) == [("RedisDown", "resolved", "critical")]
    assert len(poolwatch_clients(own_redis)) == 1


async def test_daemon_path_env_to_event(redis_server: RedisServer) -> None:
    """The seed's variables → assemble → runner → an event, on the real schedule."""
    settings = config.load(
        env={
            "POOLWATCH_REDIS_URL": redis_server.url,
            "POOLWATCH_HOST_STATS": "off",
            "POOLWATCH_DOCKER": "off",
            "POOLWATCH_INTERVAL": "100ms",
            "REDIS_CONN_WARNING": "1",
            "REDIS_CONN_CRITICAL": "900",
        }
    )
    collectors = await build_collectors(settings)
    assert [(c.source, c.instance) for c in collectors] == [("redis", "main")]
    sink = RecordingSink()  # validates every event against the schema
    stop = asyncio.Event()
    runner = Runner(
        collectors, [sink], Evaluator("test-host"), settings=RuntimeSettings(shutdown_timeout=2)
    )
    task = asyncio.create_task(runner.run(stop))
    try:
        await sink.event(lambda _: True, within=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    events = sink.events
    assert alerts(events[:1]) == [("RedisConnectionsHigh", "firing", "warning")]
    assert events[0].source == "redis"
    wait_for(lambda: not poolwatch_clients(redis_server), "poolwatch to close its connection")


async def test_a_server_that_never_answers_times_out_and_holds_nothing(polls: MakePolls) -> None:
    """Every I/O has a timeout: a listener that accepts and stays silent (a hung server, a
    firewall half-open) fails the poll within the collector's timeout, with the socket closed."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        target = redis_target(f"redis://127.0.0.1:{port}/0").model_copy(update={"timeout": 1.0})
        collector = RedisCollector(target)
        readings, events = await polls(collector).poll()
        assert readings["up"].value == 0
        assert "127.0.0.1" in (readings["up"].message or "")
        assert alerts(events) == [("RedisDown", "firing", "critical")]
        assert accepted
        await collector.close()
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_reloaded_timeout_reaches_the_socket(
    redis_server: Any, make_collector: Callable[..., RedisCollector]
) -> None:
    """reconfigure(): the new timeout is the connection's own socket timeout from the next poll
    (redis-py fixes it per connection, so that poll reconnects once)."""
    collector = make_collector(redis_server.url)
    await collector.collect()
    before = collector._conn
    assert before is not None
    assert before.socket_timeout == 2.5
    target = config.load(env={"POOLWATCH_REDIS_URL": redis_server.url}).redis.targets[0]
    collector.reconfigure(target.model_copy(update={"timeout": 8.0, "interval": 3.0}))
    assert (collector.timeout, collector.interval) == (8.0, 3.0)
    await collector.collect()
    assert collector._conn is not None
    assert collector._conn is not before
    assert collector._conn.socket_timeout == 4.0


async def test_replicas_count_against_maxclients(
    own_redis: RedisServer, tmp_path: Path, make_collector: MakeCollector
) -> None:
    """A real replica attached: Redis counts it against `maxclients`, INFO's `connected_clients`
    does not. poolwatch reports what Redis compares with the limit."""
    replica = RedisServer(
        tmp_path / "replica", 100, "--replicaof", "127.0.0.1", str(own_redis.port)
    )
    (tmp_path / "replica").mkdir()
    replica.start()
    try:
        await eventually(
            lambda: own_redis.info().get("connected_slaves") == 1, "the replica attached", 10, 0.1
        )
        readings = {r.check: r for r in await make_collector(own_redis.url).collect()}
        info = own_redis.info()  # the same clients: the probe, poolwatch and the replica
        assert info["connected_slaves"] == 1
        assert readings["connected_clients"].value == info["connected_clients"] + 1
    finally:
        replica.close()


async def test_a_config_get_that_hangs_is_not_redis_down(
    redis_server: RedisServer, make_collector: MakeCollector
) -> None:
    """INFO answers, CONFIG GET never does (a proxy that does not implement it, seen in the
    soak). The stand-in is a real TCP proxy in front of the real server that swallows CONFIG and
    strips `maxclients` from INFO (as Redis before 6.2 does), so poolwatch must ask CONFIG GET."""
    proxy = await HangingConfigProxy.start(redis_server.port)
    try:
        collector = make_collector(f"redis://127.0.0.1:{proxy.port}/0")
        with capture_logs() as logs:
            async with asyncio.timeout(collector.timeout):
                readings = {r.check: r for r in await collector.collect()}
        assert readings["up"].value == 1
        assert readings["connected_clients"].limit is None  # no limit learned, no invented one
        assert any(line["event"] == "redis_config_get_unavailable" for line in logs)
        asked = proxy.configs_swallowed
        assert asked >= 1
        async with asyncio.timeout(collector.timeout):
            again = {r.check: r for r in await collector.collect()}
        assert again["up"].value == 1
        assert proxy.configs_swallowed == asked  # not asked again
    finally:
        await proxy.close()


class HangingConfigProxy:
    """Forwards RESP traffic; swallows `CONFIG` commands; drops `maxclients` from INFO."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.configs_swallowed = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    @classmethod
    async def start(cls, upstream: int) -> HangingConfigProxy:
        proxy = cls(upstream)
        proxy.server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
        proxy.port = proxy.server.sockets[0].getsockname()[1]
        return proxy

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            while data := await reader.read(65536):
                if b"CONFIG" in data.upper():
                    self.configs_swallowed += 1
                    continue  # never forwarded, never answered
                up_writer.write(data)
                await up_writer.drain()
                answer = await read_reply(up_reader)
                if answer.startswith(b"$") and b"maxclients:" in answer:
                    _header, _, body = answer.partition(b"\r\n")
                    lines = [x for x in body.split(b"\r\n") if not x.startswith(b"maxclients:")]
                    payload = b"\r\n".join(lines).removesuffix(b"\r\n")
                    answer = b"$%d\r\n%s\r\n" % (len(payload), payload)
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            up_writer.close()
            writer.close()


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    """One whole RESP2 reply, as bytes (a bulk string may come in several TCP reads)."""
    line = await reader.readuntil(b"\r\n")
    if line[:1] == b"$" and int(line[1:-2]) >= 0:
        return line + await reader.readexactly(int(line[1:-2]) + 2)
    if line[:1] == b"*":
        parts = [await read_reply(reader) for _ in range(max(0, int(line[1:-2])))]
        return line + b"".join(parts)
    return line


def errors_counted(server: RedisServer) -> int:
    return int(server.probe.info("stats")["total_error_replies"])


async def test_connecting_sends_no_client_setinfo(
    own_redis: RedisServer, make_collector: MakeCollector, polls: MakePolls
) -> None:
    """Whether the installed redis-py turns CLIENT SETINFO off with `lib_name` (5.0) or with
    `driver_info` (7.2 on), poolwatch's connection sends none: this Redis (7.0) does not know
    the command and would count each as an error."""
    before = errors_counted(own_redis)  # after the probe's own connect, which may send it
    readings, _ = await polls(make_collector(own_redis.url)).poll()
    assert readings["up"].value == 1
    assert poolwatch_clients(own_redis)
    assert errors_counted(own_redis) == before
