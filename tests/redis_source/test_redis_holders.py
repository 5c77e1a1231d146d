"""Who holds a Redis server's client slots, against a real redis-server: CLIENT LIST is read only
while `connected_clients` is at or above warning, and its groups ride on the event."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs
from tests.redis_source.harness import Polls, RedisServer

from poolwatch.sources.redis.collector import RedisCollector

pytestmark = pytest.mark.integration

MakeCollector = Callable[..., RedisCollector]
MakePolls = Callable[[RedisCollector], Polls]
WARNING = {"REDIS_CONN_WARNING": "300", "REDIS_CONN_CRITICAL": "900"}


@pytest.fixture
def named(redis_server: RedisServer) -> Iterator[Callable[[str, int], None]]:
    """Open `count` real clients that call themselves `name`; all closed afterwards."""
    redis_server.wait_for_clients(1)  # calm: only the probe (earlier tests' clients have gone)
    sockets: list[socket.socket] = []

    def open_named(name: str, count: int) -> None:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", redis_server.port), 5)
            sockets.append(sock)
            sock.sendall(f"CLIENT SETNAME {name}\r\n".encode())
            assert sock.recv(16) == b"+OK\r\n"

    yield open_named
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()


def client_list_calls(server: RedisServer) -> int:
    stats: dict[str, Any] = server.probe.info("commandstats")
    return int(stats.get("cmdstat_client|list", {}).get("calls", 0))


async def test_top_holder_is_leaky_cache_and_only_read_when_warning(
    redis_server: RedisServer,
    make_collector: MakeCollector,
    polls: MakePolls,
    named: Callable[[str, int], None],
) -> None:
    drive = polls(make_collector(redis_server.url, **WARNING))
    named("worker", 50)
    before = client_list_calls(redis_server)
    readings, events = await drive.poll()
    assert readings["connected_clients"].value == 52  # + the probe and poolwatch
    assert readings["connected_clients"].context is None
    assert events == []
    assert client_list_calls(redis_server) == before  # below warning: CLIENT LIST not sent

    named("leaky-cache", 300)
    readings, events = await drive.poll()
    assert [(e.alert, e.status) for e in events] == [("RedisConnectionsHigh", "firing")]
    context = events[0].to_dict()["context"]
    assert context["holders"][0] == {
        "name": "leaky-cache",
        "address": "127.0.0.1",
        "count": 300,
        "blocked": 0,
        "idle_over_60s": 0,
        "max_idle_seconds": context["holders"][0]["max_idle_seconds"],
    }
    assert (context["holders"][1]["name"], context["holders"][1]["count"]) == ("worker", 50)
    assert context["total_listed"] == 352
    assert "— leaky-cache@127.0.0.1 300, worker@127.0.0.1 50" in events[0].message
    assert client_list_calls(redis_server) == before + 1


async def test_an_acl_user_without_client_list_logs_once_and_gets_no_context(
    redis_server: RedisServer,
    make_collector: MakeCollector,
    polls: MakePolls,
    named: Callable[[str, int], None],
) -> None:
    redis_server.probe.acl_setuser(
        "holders", enabled=True, passwords=["+holders-pw"], commands=["+info", "+client|setname"]
    )
    try:
        url = f"redis://holders:holders-pw@127.0.0.1:{redis_server.port}/0"
        drive = polls(make_collector(url, **WARNING))
        named("leaky-cache", 300)
        with capture_logs() as logs:
            first, events = await drive.poll()
            second, _ = await drive.poll()
        assert [e.alert for e in events] == ["RedisConnectionsHigh"]
        assert events[0].context is None
        assert second["connected_clients"].value == first["connected_clients"].value == 302
        assert second["up"].value == 1
        refused = [line for line in logs if line["event"] == "redis_client_list_unavailable"]
        assert len(refused) == 1
        assert "NOPERM" in refused[0]["reason"] or "permission" in refused[0]["reason"]
    finally:
        redis_server.probe.acl_deluser("holders")
