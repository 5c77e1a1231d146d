"""Test harness for the Redis source: private redis-servers, crowds of real client connections,
and a collector driven through the runner with time injected.

A plain module (conftest.py holds the fixtures), because test modules cannot import a conftest.
"""

from __future__ import annotations

import contextlib
import resource
import shutil
import socket
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from tests import readme
from tests.eventually import eventually_sync
from tests.net import free_port
from tests.recording import RecordingSink

from poolwatch.config.load import load
from poolwatch.core.evaluate import Evaluator
from poolwatch.core.model import Event, Reading
from poolwatch.runtime.runner import Runner
from poolwatch.sources.redis.collector import RedisCollector
from poolwatch.sources.redis.settings import RedisTarget

FD_WANTED = 4096
FD_NEEDED = 2300
"""1000 crowd sockets here, 1000 client fds in redis-server (+32 it keeps), and some spare."""

DEADLINE = 15.0


def wait_for(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` until true; fail naming `what` if it is not true by the deadline."""
    eventually_sync(condition, what, within=deadline, every=0.02)


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
        self._probe: redis.Redis | None = None

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
        if self._probe is not None:  # its connection dies with the server; the next use reopens
            self._probe.close()
            self._probe = None
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    @property
    def probe(self) -> redis.Redis:
        """The tests' own connection (client name `probe`), opened on first use and kept."""
        if self._probe is None:
            self._probe = redis.Redis(
                host="127.0.0.1",
                port=self.port,
                socket_timeout=5,
                socket_connect_timeout=5,
                decode_responses=True,
                single_connection_client=True,
                client_name="probe",
            )
        return self._probe

    def info(self) -> dict[str, Any]:
        return dict(self.probe.info())

    def clients(self) -> int:
        return int(self.probe.info("clients")["connected_clients"])

    def wait_for_clients(self, total: int) -> None:
        wait_for(lambda: self.clients() == total, f"connected_clients to be {total}")

    def close(self) -> None:
        self.stop()


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
        self.server.wait_for_clients(total)

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


# --- driving a collector the way the runner does, with time injected ---------------------------

START = datetime(2026, 1, 1, tzinfo=UTC)


def redis_target(url: str, **env: str) -> RedisTarget:
    """A target as the seed's environment would configure it (defaults, rules, variables)."""
    return load(env={"POOLWATCH_REDIS_URL": url, **env}).redis.targets[0]


class Polls:
    """One collector polled through the real runner path (failure → `up` 0, evaluation, sweep);
    the clock advances one interval per poll and every event is schema-validated."""

    def __init__(self, collector: RedisCollector) -> None:
        self.collector = collector
        self.now = START
        self.sink = RecordingSink()
        self.evaluator = Evaluator("test-host")
        self.runner = Runner([collector], [self.sink], self.evaluator, clock=lambda: self.now)

    async def poll(self) -> tuple[dict[str, Reading], list[Event]]:
        self.now += timedelta(seconds=self.collector.interval)
        seen = len(self.sink.events)
        readings = await self.runner.pipeline.poll(self.collector)
        await self.runner.pipeline.handle(self.collector, readings)
        return {r.check: r for r in readings}, self.sink.events[seen:]


def readme_readings() -> dict[str, str]:
    """check → unit, from the readings table of docs/sources/redis.md."""
    rows = readme.table("docs/sources/redis.md", "Readings")
    checks = readme.documented_checks("docs/sources/redis.md")
    return {check: row["unit"].strip("`") for check, row in zip(checks, rows, strict=True)}
