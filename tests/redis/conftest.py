"""Private redis-server instances, and real client connections to crowd them.

Servers are shared per session where a test can leave them as it found them (the machine is
small and shared): `redis_server` (maxclients 1000) and `redis_no_config` (CONFIG renamed away,
maxclients 100). `own_redis` is a server a test may stop and start. Each fails, never skips,
when redis-server is missing.
"""

from __future__ import annotations

import contextlib
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import redis
from poolwatch.config import RedisTarget, load
from poolwatch.evaluate import Evaluator
from poolwatch.model import Event, Reading
from poolwatch.runner import Runner
from poolwatch.sources.redis import Backoff, RedisCollector

FD_WANTED = 4096
FD_NEEDED = 2300
"""1000 crowd sockets here, 1000 client fds in redis-server (+32 it keeps), and some spare."""

DEADLINE = 15.0


def free_port() -> int:
    # tests/conftest.py has the same helper; a conftest cannot import another conftest
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` until true; fail naming `what` if it is not true by the deadline."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:g}s waiting for {what}")
        time.sleep(0.02)


def raise_fd_limit() -> None:
    """redis-server inherits this limit and lowers maxclients below it; raise it first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FD_WANTED if hard == resource.RLIM_INFINITY else min(FD_WANTED, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < FD_NEEDED:
        pytest.fail(f"file descriptor limit {hard} is too low: the tests need {FD_NEEDED}")


class RedisServer:
    """One redis-server process in its own directory, on a free loopback port."""

    def __init__(self, directory: Path, maxclients: int, *extra: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (tests/provision/10-servers.sh installs it)")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = directory / "redis.log"
        self.argv = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--maxclients", str(maxclients),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--logfile", str(self.log),
            *extra,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.probe = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=5,
            socket_connect_timeout=5,
            decode_responses=True,
            single_connection_client=True,
            client_name="probe",
        )

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL)
        wait_for(self._ready, f"redis-server on port {self.port} to answer PING")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = self.log.read_text() if self.log.exists() else ""
            pytest.fail(f"redis-server exited with {self.process.returncode}:\n{log[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def info(self) -> dict[str, Any]:
        return dict(self.probe.info())

    def clients(self) -> int:
        return int(self.probe.info("clients")["connected_clients"])

    def close(self) -> None:
        self.probe.close()
        self.stop()


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
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from _server(tmp_path, 1000)


class Crowd:
    """Real client connections (plain sockets: a TCP connection is a Redis client) that bring
    a server's `connected_clients` to an exact total."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.sockets: list[socket.socket] = []

    def set_total(self, total: int) -> None:
        current = self.server.clients()
        if total >= current:
            for _ in range(total - current):
                self.sockets.append(socket.create_connection(("127.0.0.1", self.server.port), 5))
        else:
            surplus = current - total
            if surplus > len(self.sockets):
                pytest.fail(f"cannot go down to {total} clients: only {len(self.sockets)} are ours")
            for sock in self.sockets[-surplus:]:
                sock.close()
            del self.sockets[-surplus:]
        wait_for(lambda: self.server.clients() == total, f"connected_clients to reach {total}")

    def refused(self) -> bytes:
        """Open one more connection and return what the server says to it."""
        with socket.create_connection(("127.0.0.1", self.server.port), 5) as sock:
            sock.settimeout(5)
            return sock.recv(256)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()


@pytest.fixture
def crowd(redis_server: RedisServer) -> Iterator[Crowd]:
    """A crowd on the shared server, dispersed afterwards so the next test starts calm."""
    people = Crowd(redis_server)
    try:
        yield people
    finally:
        people.close()


# --- driving a collector the way the runner does, with time injected ---------------------------

START = datetime(2026, 1, 1, tzinfo=UTC)


def redis_target(url: str, **env: str) -> RedisTarget:
    """A target as the seed's environment would configure it (defaults, rules, variables)."""
    return load(env={"POOLWATCH_REDIS_URL": url, **env}).redis.targets[0]


@pytest.fixture
async def make_collector() -> AsyncIterator[Callable[..., RedisCollector]]:
    """Collectors with a quick backoff, closed after the test."""
    made: list[RedisCollector] = []

    def make(url: str, **env: str) -> RedisCollector:
        collector = RedisCollector(redis_target(url, **env), backoff=Backoff(base=0.01, cap=0.05))
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.close()


class CaptureSink:
    name = "capture"

    def __init__(self, validate: Callable[[dict[str, Any]], Any]) -> None:
        self.validate = validate
        self.events: list[Event] = []

    async def send(self, event: Event) -> None:
        self.validate(event.to_dict())
        self.events.append(event)

    async def close(self, grace: float) -> None:
        return None


class Polls:
    """One collector polled through the real runner path (failure → `up` 0, evaluation, sweep);
    the clock advances one interval per poll and every event is schema-validated."""

    def __init__(self, collector: RedisCollector, validate: Callable[..., Any]) -> None:
        self.collector = collector
        self.now = START
        self.sink = CaptureSink(validate)
        self.evaluator = Evaluator("test-host")
        self.runner = Runner([collector], [self.sink], self.evaluator, clock=lambda: self.now)

    async def poll(self) -> tuple[dict[str, Reading], list[Event]]:
        self.now += timedelta(seconds=self.collector.interval)
        seen = len(self.sink.events)
        readings = await self.runner.poll(self.collector)
        await self.runner.handle(self.collector, readings)
        return {r.check: r for r in readings}, self.sink.events[seen:]


@pytest.fixture
def polls(validate_event: Callable[..., Any]) -> Callable[[RedisCollector], Polls]:
    return lambda collector: Polls(collector, validate_event)
