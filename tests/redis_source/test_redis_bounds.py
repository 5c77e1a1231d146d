"""Every Redis reply is read under a cap: a wrong or hostile endpoint that announces gigabytes is
refused at the announcement, in the words of the cap, and memory stays where it was.

The hostile "Redis" is `tests.hostile.Peer`: no real redis-server answers `INFO` with
`$2000000000`, so a small TCP server stands in for the hostile endpoint.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import pytest
from tests.daemon import BASE_ENV
from tests.hostile import MB, Run, flood, measured, peer
from tests.redis_source.harness import RedisServer

from poolwatch.sources.redis.replies import REPLY_MAX_BYTES

pytestmark = pytest.mark.integration

HUGE = 2_000_000_000


def read_command(sock: socket.socket, pending: bytearray) -> list[bytes] | None:
    """One RESP command (an array of bulk strings) from `sock`; None when it hung up."""

    def line() -> bytes | None:
        while b"\r\n" not in pending:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            pending.extend(chunk)
        end = pending.index(b"\r\n")
        text = bytes(pending[:end])
        del pending[: end + 2]
        return text

    header = line()
    if header is None or not header.startswith(b"*"):
        return None
    words = []
    for _ in range(int(header[1:])):
        size = line()
        if size is None:
            return None
        while len(pending) < int(size[1:]) + 2:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            pending.extend(chunk)
        words.append(bytes(pending[: int(size[1:])]))
        del pending[: int(size[1:]) + 2]
    return words


def hostile_redis(answer: dict[bytes, bytes], *, flood_after: bytes = b"INFO") -> Any:
    """A "Redis" that says OK to everything but the commands in `answer`, answered as given;
    after the answer to `flood_after` it floods with as many bytes as the reader will take."""

    def serve(sock: socket.socket) -> None:
        pending = bytearray()
        while (command := read_command(sock, pending)) is not None:
            name = b" ".join(command[:2]).upper()
            reply = answer.get(name) or answer.get(command[0].upper())
            if reply is None:
                sock.sendall(b"+OK\r\n")
                continue
            sock.sendall(reply)
            if name.startswith(flood_after):
                flood(sock, HUGE)
                return

    return peer(serve)


def once(url: str, tmp: str) -> Run:
    env = {
        **BASE_ENV,
        "POOLWATCH_STATE_DIR": tmp,
        "POOLWATCH_HOST_STATS": "off",
        "POOLWATCH_REDIS_URL": url,
        "POOLWATCH_LOG_FORMAT": "json",
    }
    return measured([sys.executable, "-m", "poolwatch", "--once", "--format", "json"], env)


def result(run: Run, check: str) -> dict[str, Any]:
    found = [json.loads(line) for line in run.stdout.splitlines()]
    return next(r for r in found if r["check"] == check)


def test_info_announcing_2gb_is_refused_unread_and_memory_stays_put(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    baseline = once(redis_server.url, str(tmp_path_factory.mktemp("state")))
    assert baseline.code == 0, baseline.stderr
    with hostile_redis({b"INFO": f"${HUGE}\r\n".encode()}) as fake:
        hostile = once(f"redis://127.0.0.1:{fake.port}/0", str(tmp_path_factory.mktemp("state")))
    up = result(hostile, "up")
    assert hostile.code == 2, hostile.stderr
    assert up["value"] == 0
    # it gave up on the cap, at the announcement: not on the read timeout after reading
    assert f"cap of {REPLY_MAX_BYTES // MB} MiB" in up["message"], up
    assert f"${HUGE}" in up["message"]
    assert "INFO" in up["message"]
    assert hostile.peak_rss < baseline.peak_rss + 50 * MB, (baseline.peak_rss, hostile.peak_rss)
    # and the log line says the same, as JSON
    logged = [json.loads(line) for line in hostile.stderr.splitlines()]
    assert any(
        line["event"] == "collection_failed" and "cap of" in line["reason"] for line in logged
    )


def test_an_array_announcing_a_billion_elements_is_refused_too(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """CONFIG GET is asked when INFO has no `maxclients`: its array header is budgeted too."""
    info = b"# Clients\r\nconnected_clients:3\r\n"
    replies = {
        b"INFO": b"$%d\r\n%s\r\n" % (len(info), info),
        b"CONFIG GET": b"*1000000000\r\n",
    }
    with hostile_redis(replies, flood_after=b"CONFIG") as fake:
        run = once(f"redis://127.0.0.1:{fake.port}/0", str(tmp_path_factory.mktemp("state")))
    logged = [json.loads(line) for line in run.stderr.splitlines()]
    refused = [line for line in logged if line["event"] == "redis_config_get_unavailable"]
    assert refused, run.stderr
    assert "cap of" in refused[0]["reason"]
    assert "*1000000000" in refused[0]["reason"]
    assert result(run, "up")["value"] == 1  # INFO answered: the server is up


def test_a_line_without_end_is_refused_at_64_kib(tmp_path_factory: pytest.TempPathFactory) -> None:
    with hostile_redis({b"INFO": b"+"}) as fake:
        run = once(f"redis://127.0.0.1:{fake.port}/0", str(tmp_path_factory.mktemp("state")))
    assert "longer than 64 KiB" in result(run, "up")["message"]
