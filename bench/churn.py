"""The churn soak (issue 6): the daemon with every source while one container is replaced every
few seconds and a PostgreSQL and a Redis alert fire and resolve over and over; its open
descriptors, sockets, threads and resident memory sampled throughout, growth per hour from a
least-squares line.

Why a line and not end minus start: a sample is one instant, and a poll or a resubscription in
flight holds a socket for a moment; the slope over every sample after the warm-up is what a day
of churn would add. The per-hour figure is an extrapolation: a soak of minutes cannot tell a
slow slope from a plateau, which is why the start, end and maximum are printed beside it.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field

from bench import procfs
from bench.measure import PgProbe, expected_collectors
from bench.stack import CONTAINER_PREFIX, IMAGE, RUN_LABEL, BenchError, Stack, daemon, docker

PG_ALERT = "PostgreSQLConnectionPoolHigh"
REDIS_ALERT = "RedisConnectionsHigh"
PG_WARNING = 20
REDIS_WARNING = 20


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """Seconds since the soak started (the warm-up included)."""
    fds: int
    sockets: int
    threads: int
    rss: int


@dataclass
class Churn:
    minutes: float
    warmup: float
    every: float
    samples: list[Sample] = field(default_factory=list)
    replaced: int = 0
    churn_errors: list[str] = field(default_factory=list)
    toggles: int = 0
    alerts: dict[str, dict[str, int]] = field(default_factory=dict)
    """alert → status → webhooks received (firing, resolved)."""

    def fitted(self) -> list[Sample]:
        """The samples the growth is fitted on: after the warm-up."""
        return [s for s in self.samples if s.at >= self.warmup]

    def per_hour(self, value: str) -> float:
        """Least-squares slope of `value` (a Sample field) over the fitted samples, per hour."""
        points = self.fitted()
        if len(points) < 2:
            return float("nan")
        xs = [s.at / 3600 for s in points]
        ys = [float(getattr(s, value)) for s in points]
        if len(set(ys)) == 1:
            return 0.0
        return statistics.linear_regression(xs, ys).slope


def descriptors(pid: int) -> tuple[int, int]:
    """(open descriptors, of which sockets) of a process."""
    base = procfs.PROC / str(pid) / "fd"
    total = sockets = 0
    for entry in os.listdir(base):
        try:
            target = os.readlink(base / entry)
        except FileNotFoundError:
            continue
        total += 1
        sockets += target.startswith("socket:")
    return total, sockets


def threads(pid: int) -> int:
    return len(os.listdir(procfs.PROC / str(pid) / "task"))


def _sample(pid: int, at: float) -> Sample:
    fds, sockets = descriptors(pid)
    return Sample(at, fds, sockets, threads(pid), procfs.rss_bytes(pid))


def bounded(values: list[int]) -> bool:
    """No growth: the second half of the samples never goes above the first half's maximum
    (a poll in flight may hold one more descriptor at any instant, in either half)."""
    half = len(values) // 2
    return max(values[half:]) <= max(values[: max(half, 1)])


class Replacer(threading.Thread):
    """Replaces this run's churn container every `every` seconds: the next one starts, then the
    previous one is removed (`docker rm -f`, as a redeploy does), so the engine always has one."""

    def __init__(self, run: str, every: float, result: Churn) -> None:
        super().__init__(name="bench-churn", daemon=True)
        self.run_id = run
        self.every = every
        self.result = result
        self.stopping = threading.Event()

    def run(self) -> None:
        previous: str | None = None
        n = 0
        while not self.stopping.is_set():
            name = f"{CONTAINER_PREFIX}{self.run_id}-churn-{n:05d}"
            n += 1
            try:
                docker(
                    "run", "-d", "--network", "none", "--label", f"{RUN_LABEL}={self.run_id}",
                    "--name", name, IMAGE, "sleep", "86400",
                )  # fmt: skip
                if previous is not None:
                    docker("rm", "-f", previous)
                    self.result.replaced += 1
                previous = name
            except (BenchError, OSError) as exc:  # kept going: a shared engine has bad moments
                self.result.churn_errors.append(str(exc).splitlines()[0][:200])
            self.stopping.wait(self.every)


class RedisLoad:
    """Idle TCP connections to Redis: each one is a `connected_clients`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: list[socket.socket] = []

    def open(self, count: int) -> None:
        for _ in range(count):
            conn = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            conn.sendall(b"PING\r\n")
            conn.recv(64)
            self.conns.append(conn)

    def close(self) -> None:
        conns, self.conns = self.conns, []
        for conn in conns:
            conn.close()


def _count_alerts(stack: Stack, start: int) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {
        a: {"firing": 0, "resolved": 0} for a in (PG_ALERT, REDIS_ALERT)
    }
    for request in stack.receiver.answered()[start:]:
        try:
            body = request.json()
        except ValueError:
            continue
        alert, status = body.get("alert"), body.get("status")
        if alert in counts and status in counts[alert] and not body.get("reminder"):
            counts[alert][status] += 1
    return counts


def churn_soak(
    stack: Stack,
    probe: PgProbe,
    minutes: float,
    *,
    every: float = 3.0,
    sample_every: float = 30.0,
    warmup: float = 60.0,
    toggle_every: float = 10.0,
) -> Churn:
    """The daemon at 1 s with every source (Docker limited to this run's containers) for
    `warmup` seconds plus `minutes`; a container replaced every `every` s; the PostgreSQL and the
    Redis connection alerts pushed over their warning (20 connections, `clear_for: 1`) and back
    every `toggle_every` s; descriptors, threads and RSS sampled every `sample_every` s."""
    result = Churn(minutes, warmup, every)
    config = stack.root / "churn.yaml"
    config.write_text(
        "postgres:\n  rules:\n    connections:\n"
        f"      warning: {PG_WARNING}\n      critical: 190\n      clear_for: 1\n"
        "redis:\n  rules:\n    connected_clients:\n"
        f"      warning: {REDIS_WARNING}\n      critical: 900\n      clear_for: 1\n"
        f"docker:\n  include: ['{CONTAINER_PREFIX}{stack.containers.run}-*']\n"
    )
    redis = RedisLoad(stack.redis_server.port)
    replacer = Replacer(stack.containers.run, every, result)
    env = stack.poolwatch_env(interval="1s", POOLWATCH_CONFIG=str(config))
    with daemon(stack, "churn", env) as running:
        running.wait_polls(3, expected_collectors(stack))
        mark = len(stack.receiver.answered())
        replacer.start()
        started = time.monotonic()
        end = started + warmup + minutes * 60
        next_sample, next_toggle = started, started + toggle_every
        loaded = False
        try:
            while True:
                now = time.monotonic()
                running.check_alive()
                if now >= next_sample:
                    result.samples.append(_sample(running.pid, now - started))
                    if next_sample >= end:
                        break
                    next_sample = min(next_sample + sample_every, end)
                if now >= next_toggle:
                    if loaded:
                        probe.close_load()
                        redis.close()
                    else:
                        present = probe.client_backends()
                        probe.open_load(max(0, PG_WARNING + 2 - present))
                        redis.open(REDIS_WARNING + 2)
                        result.toggles += 1
                    loaded = not loaded
                    next_toggle += toggle_every
                time.sleep(max(0.0, min(next_sample, next_toggle) - time.monotonic()))
        finally:
            replacer.stopping.set()
            replacer.join(timeout=60)
            probe.close_load()
            redis.close()
        result.alerts = _count_alerts(stack, mark)
    if len(result.fitted()) < 2:
        raise BenchError(f"churn soak: {len(result.fitted())} samples after the warm-up")
    return result
