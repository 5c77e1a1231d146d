"""The five measurements. Each returns plain numbers (lists of repetitions) or raises
`BenchError` when it could not be taken; nothing here judges a time.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from tests.postgres.pgserver import LOAD_PASSWORD

from bench import procfs
from bench.stack import BenchError, Daemon, Stack, daemon, poolwatch_command

SHELL_POLLER = Path(__file__).with_name("shell_poller.sh")
CONNECTIONS_ALERT = "PostgreSQLConnectionPoolHigh"


# --- PostgreSQL, observed from one persistent superuser connection -----------------------------


class PgProbe:
    """One admin connection kept for the whole run (so that observing creates no sessions), and
    the load connections of the latency trials, on one private event loop."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.loop = asyncio.new_event_loop()
        self.conn: Any = self.run(stack.postgres.admin())
        self.load: list[Any] = []

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def fetch(self, query: str) -> Any:
        return self.run(self.conn.fetch(query))

    def client_backends(self) -> int:
        return int(
            self.fetch(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            )[0][0]
        )

    def sessions(self) -> int:
        """Sessions ever established, summed over databases (PostgreSQL 14+)."""
        self.fetch("SELECT pg_stat_clear_snapshot()")
        return int(self.fetch("SELECT sum(sessions)::bigint FROM pg_stat_database")[0][0] or 0)

    def poolwatch_backends(self) -> set[int]:
        rows = self.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = 'poolwatch'")
        return {int(row[0]) for row in rows}

    def open_load(self, count: int) -> None:
        async def one() -> Any:
            return await asyncpg.connect(
                self.stack.postgres.dsn("pw_load", LOAD_PASSWORD), timeout=20
            )

        async def many() -> list[Any]:
            return list(await asyncio.gather(*(one() for _ in range(count))))

        self.load.extend(self.run(many()))

    def close_load(self) -> None:
        conns, self.load = self.load, []

        async def close() -> None:
            await asyncio.gather(*(c.close(timeout=10) for c in conns), return_exceptions=True)

        self.run(close())

    def close(self) -> None:
        self.close_load()
        self.run(self.conn.close())
        self.loop.close()


# --- 4. --once from a cold start --------------------------------------------------------------


def once_cold_start(stack: Stack, sources: str, reps: int) -> list[float]:
    """Wall seconds of `poolwatch --once` as a fresh process, `reps` times after one warm-up
    (which writes the bytecode caches, as an installed package has them)."""
    env = stack.poolwatch_env(sources=sources)
    expected = {"host"} if sources == "host" else {"host", "postgres", "redis"}
    if sources == "all" and stack.docker_source:
        expected.add("docker")
    walls = []
    for rep in range(reps + 1):
        started = time.perf_counter()
        done = subprocess.run(
            poolwatch_command("--once", "--format", "json"),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        wall = time.perf_counter() - started
        if done.returncode not in (0, 1, 2):
            raise BenchError(f"poolwatch --once exited {done.returncode}: {done.stderr[-500:]}")
        results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        up = {r["source"]: r["value"] for r in results if r["check"] == "up"}
        seen = {r["source"] for r in results}
        down = sorted(s for s, v in up.items() if v < 1)
        if not expected <= seen or down:
            raise BenchError(
                f"poolwatch --once ({sources}): sources seen {sorted(seen)}, down {down}, "
                f"expected {sorted(expected)} up"
            )
        if rep > 0:
            walls.append(wall)
    return walls


# --- 1. CPU and wall time per poll cycle --------------------------------------------------------


@dataclass
class CycleCost:
    process: list[float] = field(default_factory=list)
    """CPU seconds of the poller itself per cycle, one value per repetition."""
    servers: dict[str, list[float]] = field(default_factory=dict)
    """CPU seconds per cycle the poller made each server spend (net of its idle rate)."""
    wall: list[float] = field(default_factory=list)
    sessions: list[float] = field(default_factory=list)
    """New PostgreSQL sessions per cycle."""
    rss: list[int] = field(default_factory=list)
    """poolwatch's resident memory at each window's end, bytes (the shell poller: none)."""
    ran: float = 0.0
    """Seconds the daemon had run at the last window's end."""

    def total(self) -> list[float]:
        return [
            self.process[i] + sum(values[i] for values in self.servers.values())
            for i in range(len(self.process))
        ]

    def add_servers(self, used: dict[str, float]) -> None:
        for name, value in used.items():
            self.servers.setdefault(name, []).append(value)

    def add_all(self, servers: dict[str, list[float]]) -> None:
        """Another run's repetitions, after these."""
        for name, values in servers.items():
            self.servers.setdefault(name, []).extend(values)


def idle_rates(stack: Stack, seconds: float) -> dict[str, float]:
    """CPU seconds per second each server spends with no poller running."""
    servers = stack.servers()
    before, started = servers.sample(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = servers.sample(), time.monotonic() - started
    return {name: value / elapsed for name, value in procfs.delta(after, before).items()}


def _net(used: dict[str, float], rates: dict[str, float], elapsed: float) -> dict[str, float]:
    return {name: used[name] - rates[name] * elapsed for name in used}


def shell_cycles(
    stack: Stack, probe: PgProbe, rates: dict[str, float], reps: int, containers: int
) -> CycleCost:
    """`reps` single polls of the shell poller, each a fresh process, one second apart."""
    cost = CycleCost()
    servers = stack.servers()
    for _ in range(reps):
        time.sleep(1.0)
        sessions0 = probe.sessions()
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        servers0, started = servers.sample(), time.monotonic()
        done = subprocess.run(
            ["bash", str(SHELL_POLLER)],
            env=stack.shell_env(CYCLES="1"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        elapsed = time.monotonic() - started
        servers1 = servers.sample()
        usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0 or "cycle=1" not in done.stdout:
            raise BenchError(f"shell poller exited {done.returncode}: {done.stderr[-500:]}")
        line = dict(part.split("=", 1) for part in done.stdout.split())
        if int(line["pg"]) < 0 or int(line["redis"]) < 0:
            raise BenchError(f"shell poller could not read PostgreSQL or Redis: {line}")
        if int(line["containers"]) < containers:
            raise BenchError(f"shell poller saw {line['containers']} containers, not {containers}")
        cost.process.append(
            (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        )
        cost.add_servers(_net(procfs.delta(servers1, servers0), rates, elapsed))
        cost.wall.append(elapsed)
        time.sleep(0.5)  # let the psql backend's exit reach the statistics
        cost.sessions.append(probe.sessions() - sessions0)
    return cost


def expected_collectors(stack: Stack, sources: str = "all") -> int:
    if sources == "host":
        return 1
    return 4 if stack.docker_source else 3


def poolwatch_cycles(
    stack: Stack,
    probe: PgProbe,
    rates: dict[str, float],
    reps: int,
    window: float,
    wall_seconds: float,
    env: dict[str, str] | None = None,
) -> CycleCost:
    """The daemon at 1 s with every source: CPU over `reps` windows of `window` seconds, divided
    by the polls in each, and its RSS at each window's end; then, for `wall_seconds`, the
    per-cycle wall time from /metrics (the longest poll of the cycle: collectors poll
    concurrently). `env` replaces the daemon's environment (`Stack.poolwatch_env`'s)."""
    cost = CycleCost()
    servers = stack.servers()
    collectors = expected_collectors(stack)
    env = stack.poolwatch_env(interval="1s") if env is None else env
    with daemon(stack, "cpu", env) as running:
        running.wait_polls(3, collectors)
        for _ in range(reps):
            polls0, cpu0 = running.polls(), procfs.process_cpu(running.pid)
            sessions0 = probe.sessions()
            servers0, started = servers.sample(), time.monotonic()
            time.sleep(window)
            servers1, elapsed = servers.sample(), time.monotonic() - started
            cpu1, polls1 = procfs.process_cpu(running.pid), running.polls()
            sessions1 = probe.sessions()
            cycles = min(polls1[k] - polls0.get(k, 0) for k in polls1)
            if cycles < 1:
                raise BenchError(f"poolwatch polled {cycles} times in {window:g}s")
            cost.process.append((cpu1 - cpu0) / cycles)
            used = _net(procfs.delta(servers1, servers0), rates, elapsed)
            cost.add_servers({name: value / cycles for name, value in used.items()})
            cost.sessions.append((sessions1 - sessions0) / cycles)
            cost.rss.append(procfs.rss_bytes(running.pid))
            cost.ran = time.monotonic() - running.started
        if wall_seconds > 0:
            cost.wall = cycle_walls(running, wall_seconds)
    return cost


def cycle_walls(running: Daemon, seconds: float) -> list[float]:
    """Scrape /metrics every 0.5 s; a cycle's wall time is the longest poll duration among the
    collectors (they poll concurrently), counted once per new set of poll timestamps."""
    walls: list[float] = []
    seen: set[tuple[float, ...]] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        durations = running.durations()
        stamp = tuple(sorted(ts for _, ts in durations.values()))
        if stamp not in seen:
            seen.add(stamp)
            walls.append(max(d for d, _ in durations.values()))
        time.sleep(0.5)
    if not walls:
        raise BenchError("no poll durations on /metrics")
    return walls


# --- 2. detection latency ---------------------------------------------------------------------


def _events(stack: Stack, start: int, status: str) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for request in stack.receiver.answered()[start:]:
        try:
            body = request.json()
        except ValueError:
            continue
        if (
            body.get("alert") == CONNECTIONS_ALERT
            and body.get("status") == status
            and not body.get("reminder")
        ):
            out.append((request.at, body))
    return out


def _wait_event(
    stack: Stack, start: int, status: str, after: float, deadline: float
) -> tuple[float, dict[str, Any]]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = [e for e in _events(stack, start, status) if e[0] >= after]
        if found:
            return found[0]
        time.sleep(0.005)
    raise BenchError(f"no {status} {CONNECTIONS_ALERT} webhook within {deadline:g}s")


def detection_latency(
    stack: Stack, probe: PgProbe, interval: float, trials: int, threshold: int = 20
) -> list[float]:
    """Seconds from opening the connection that brings PostgreSQL to the warning threshold to
    the webhook receiving the firing event. Each trial starts at a random phase of the poll
    cycle; between trials the connections close and the alert resolves (clear_for 1, so
    trials need not wait two polls; detection itself is unchanged)."""
    config = stack.root / f"latency-{interval:g}.yaml"
    config.write_text(
        "postgres:\n  rules:\n    connections:\n"
        f"      warning: {threshold}\n      critical: 190\n      clear_for: 1\n"
    )
    env = stack.poolwatch_env(interval=f"{interval:g}s", POOLWATCH_CONFIG=str(config))
    latencies = []
    rng = random.Random(9)  # noqa: S311 (a phase, not a secret)
    with daemon(stack, f"latency-{interval:g}s", env) as running:
        running.wait_polls(2, expected_collectors(stack))
        for _ in range(trials):
            present = probe.client_backends()
            if present >= threshold - 1:
                raise BenchError(f"{present} connections before a trial: cannot stay below")
            probe.open_load(threshold - present - 1)
            time.sleep(interval * 0.5 + rng.uniform(0, interval))
            mark = len(stack.receiver.answered())
            crossed = time.monotonic()
            probe.open_load(1)
            received, _ = _wait_event(stack, mark, "firing", crossed, interval * 2 + 15)
            latencies.append(received - crossed)
            probe.close_load()
            _wait_event(stack, mark, "resolved", received, interval * 3 + 15)
            running.check_alive()
    return latencies


# --- 3 and 5. memory over a soak, PostgreSQL connections in steady state ---------------------


@dataclass
class Soak:
    minutes: float
    rss_start: int = 0
    rss_end: int = 0
    rss_max: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    """poolwatch's PostgreSQL backends at each sample."""
    pids: set[int] = field(default_factory=set)
    sessions: int = 0
    """Sessions established on the server during the soak (the probe's is older)."""


def soak(stack: Stack, probe: PgProbe, minutes: float, every: float = 10.0) -> Soak:
    """The daemon at 1 s with every source for `minutes`: RSS after its first 5 polls and at
    the end; its PostgreSQL backends (application_name = 'poolwatch') and new sessions."""
    result = Soak(minutes)
    with daemon(stack, "soak", stack.poolwatch_env(interval="1s")) as running:
        running.wait_polls(5, expected_collectors(stack))
        result.rss_start = procfs.rss_bytes(running.pid)
        sessions0 = probe.sessions()
        started = time.monotonic()
        end = started + minutes * 60
        while True:
            now = time.monotonic()
            running.check_alive()
            rss = procfs.rss_bytes(running.pid)
            result.samples.append((now - started, rss))
            backends = probe.poolwatch_backends()
            result.held.append(len(backends))
            result.pids |= backends
            if now >= end:
                break
            time.sleep(min(every, end - now))
        result.rss_end = rss
        result.rss_max = max(r for _, r in result.samples)
        result.sessions = probe.sessions() - sessions0
    return result
