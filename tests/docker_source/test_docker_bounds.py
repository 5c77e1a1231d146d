"""Every answer of the Docker engine is read under a cap: a wrong or hostile engine that announces
gigabytes, floods a body without a length, or streams an event without end is refused in the
cap's words, and memory stays where it was.

The hostile engine is `tests.hostile.Peer` behind `DOCKER_HOST=tcp://...`: a real dockerd cannot
be made to answer like that, so a small HTTP server stands in for the hostile endpoint. Each
measured run is a fresh process (`--once`, or a few lines driving the event stream), so that its
peak resident memory is its own.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from typing import Any

import pytest
from tests.daemon import BASE_ENV
from tests.hostile import FLOOD_CHUNK, MB, Run, measured, peer, read_until

from poolwatch.sources.docker.engine import ANSWER_MAX_BYTES, EVENT_MAX_BYTES, json_lines

HUGE = 2_000_000_000
FLOOD = 400 * MB
"""How much a hostile answer sends at most: far over the caps, and bounded for the test."""

Body = Callable[[socket.socket], None]


def respond(sock: socket.socket, body: bytes, kind: str = "application/json") -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)


def announcing_huge(sock: socket.socket) -> None:
    sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\n\r\n".encode())
    for _ in range(FLOOD // len(FLOOD_CHUNK)):
        sock.sendall(FLOOD_CHUNK)


def chunked(pieces: Any) -> Body:
    def send(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces():
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")

    return send


def flood_pieces() -> Any:
    for _ in range(FLOOD // len(FLOOD_CHUNK)):
        yield FLOOD_CHUNK


def endless_events() -> Any:
    """A line over the cap, a real event, then a line that never ends."""
    for _ in range(3 * EVENT_MAX_BYTES // len(FLOOD_CHUNK)):
        yield FLOOD_CHUNK
    yield b'\n{"Type": "container", "Action": "start", "Actor": {"ID": "abc"}, "timeNano": 1}\n'
    yield from flood_pieces()


def engine(routes: dict[str, Body]) -> Any:
    """An "engine" answering `/version`, `/_ping` and `/info` truthfully and `routes` (by path
    suffix) as given; one request after another on each connection."""

    def serve(sock: socket.socket) -> None:
        while head := read_until(sock, b"\r\n\r\n"):
            path = head.split(b" ", 2)[1].decode().split("?", 1)[0]
            chosen = next((body for end, body in routes.items() if path.endswith(end)), None)
            if chosen is not None:
                chosen(sock)
                return
            if path.endswith("/_ping"):
                respond(sock, b"OK", "text/plain")
            elif path.endswith("/version"):
                respond(sock, json.dumps({"ApiVersion": "1.41", "Version": "fake"}).encode())
            elif path.endswith("/info"):
                respond(sock, json.dumps({"MemTotal": 1 << 30, "NCPU": 1}).encode())
            else:
                respond(sock, b"[]")

    return peer(serve)


def env(port: int, tmp: str) -> dict[str, str]:
    return {
        **BASE_ENV,
        "POOLWATCH_STATE_DIR": tmp,
        "POOLWATCH_HOST_STATS": "off",
        "POOLWATCH_DOCKER": "on",
        "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
        "POOLWATCH_LOG_FORMAT": "json",
    }


def once(port: int, tmp: str) -> Run:
    argv = [sys.executable, "-m", "poolwatch", "--once", "--format", "json"]
    return measured(argv, env(port, tmp))


def up(run: Run) -> dict[str, Any]:
    found = [json.loads(line) for line in run.stdout.splitlines()]
    return next(r for r in found if r["check"] == "up")


@pytest.fixture
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`--once` against an engine with no containers: what the same process costs normally."""
    with engine({}) as fake:
        run = once(fake.port, str(tmp_path_factory.mktemp("state")))
    assert run.code == 0, run.stderr
    assert up(run)["value"] == 1
    return run


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (announcing_huge, f"(Content-Length {HUGE}): not read"),
        (chunked(flood_pieces), f"(more than {ANSWER_MAX_BYTES} bytes arrived)"),
    ],
    ids=["content-length-2gb", "chunked-flood"],
)
def test_a_container_list_over_the_cap_is_refused_and_memory_stays_put(
    baseline: Run, tmp_path_factory: pytest.TempPathFactory, answer: Body, said: str
) -> None:
    with engine({"/containers/json": answer}) as fake:
        run = once(fake.port, str(tmp_path_factory.mktemp("state")))
    assert run.code == 2, run.stderr
    message = up(run)["message"]
    assert f"cap of {ANSWER_MAX_BYTES // MB} MiB" in message, message
    assert "/containers/json" in message
    assert said in message
    assert run.peak_rss < baseline.peak_rss + 50 * MB, (baseline.peak_rss, run.peak_rss)


EVENTS = """
import asyncio, sys
from poolwatch.sources.docker.engine import EventStream, StreamEnded

async def main():
    stream = EventStream({"DOCKER_HOST": sys.argv[1]}, 5.0)
    stream.open(None)
    seen = []
    async with asyncio.timeout(60):
        async for item in stream.items():
            if isinstance(item, dict):
                seen.append(item.get("Action"))
            else:
                seen.append(type(item).__name__)
            if isinstance(item, StreamEnded) or seen.count("EventSkipped") == 2:
                break
    stream.close()
    print(seen)

asyncio.run(main())
"""


def events(port: int, tmp: str) -> Run:
    return measured([sys.executable, "-c", EVENTS, f"tcp://127.0.0.1:{port}"], env(port, tmp))


def test_an_event_without_end_is_skipped_and_the_stream_goes_on(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    quiet = chunked(lambda: iter([b'{"Action": "start", "timeNano": 1}\n']))
    with engine({"/events": quiet}) as fake:
        normal = events(fake.port, str(tmp_path_factory.mktemp("state")))
    assert normal.code == 0, normal.stderr
    # CONNECTED is a plain object: its type name is `object`
    assert normal.stdout.strip() == "['object', 'start', 'StreamEnded']"
    with engine({"/events": chunked(endless_events)}) as fake:
        run = events(fake.port, str(tmp_path_factory.mktemp("state")))
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == "['object', 'EventSkipped', 'start', 'EventSkipped']"
    assert run.peak_rss < normal.peak_rss + 50 * MB, (normal.peak_rss, run.peak_rss)


def test_json_lines_holds_at_most_the_cap_of_one_line() -> None:
    pieces = [b'{"a": 1}\n{"b"', b": 2}\n", b"x" * 10, b"y" * 10, b'\n{"c": 3}\nnot json\n']
    found = list(json_lines(pieces, limit=15))
    assert found[:2] == [{"a": 1}, {"b": 2}]
    assert [type(f).__name__ for f in found[2:]] == ["EventSkipped", "dict", "EventSkipped"]
    assert found[3] == {"c": 3}


def not_found(sock: socket.socket) -> None:
    body = b'{"message": "no such container"}'
    sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def test_one_containers_inspect_over_the_cap_costs_only_that_container(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    good, bad = "a" * 64, "b" * 64
    listing = [
        {"Id": cid, "Names": [f"/{name}"], "Image": "busybox", "State": "running", "Labels": {}}
        for cid, name in ((good, "good"), (bad, "bad"))
    ]
    inspected = {"State": {"Status": "running"}, "HostConfig": {}, "RestartCount": 0}
    routes: dict[str, Body] = {
        "/containers/json": lambda sock: respond(sock, json.dumps(listing).encode()),
        f"/containers/{good}/json": lambda sock: respond(sock, json.dumps(inspected).encode()),
        f"/containers/{bad}/json": announcing_huge,
        "/stats": not_found,
    }
    with engine(routes) as fake:
        run = once(fake.port, str(tmp_path_factory.mktemp("state")))
    assert up(run)["value"] == 1, run.stdout
    instances = {json.loads(line)["instance"] for line in run.stdout.splitlines()}
    assert {"good", "bad"} <= instances
    logged = [json.loads(line) for line in run.stderr.splitlines()]
    (said,) = [line for line in logged if line["event"] == "docker_answer_too_large"]
    assert said["container"] == "bad"
    assert f"/containers/{bad}/json" in said["reason"]
