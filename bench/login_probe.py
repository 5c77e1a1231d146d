"""What the login probe costs (issue 23); prints two Markdown tables.

    .venv/bin/python -m bench.login_probe                     # 200 probes each, a 2-minute run
    .venv/bin/python -m bench.login_probe --probes 50 --minutes 0.5   # quicker

Run as root from the repository root on a machine provisioned by tests/provision/ (PostgreSQL 15,
Redis, PgBouncer). It starts its own private servers (the test fixtures': a PostgreSQL with
`log_connections` and `log_disconnections` on, a Redis, a PgBouncer in front of the PostgreSQL).

Per probe: the real `LoginProbe` of each source's collector (its attempt, classification and
bookkeeping), made due `--probes` times in a row and awaited one at a time. Wall time per probe
(median and worst), CPU seconds of this process (poolwatch) per probe, and of the server per probe
(PostgreSQL: the postmaster and its children, exited backends included via the postmaster's
`cutime`; Redis: redis-server; PgBouncer: pgbouncer plus the PostgreSQL behind it).

Per minute: the PostgreSQL collector in the daemon's own loop (`Runner.run`) for `--minutes`
with the defaults (interval 10 s, probe_interval 30 s), then with `probe_interval: off`: the
sessions PostgreSQL started per minute (`pg_stat_database.sessions`, PostgreSQL 14+), the probes
started in the window, and the server log lines each probe's backend wrote. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from tests.pgbouncer_source.bouncer import Bouncer
from tests.postgres.pgserver import PgServer
from tests.redis_source.harness import RedisServer, raise_fd_limit

from bench import procfs
from poolwatch.config import load as config
from poolwatch.core.evaluate import Evaluator
from poolwatch.runtime.runner import Runner
from poolwatch.sources.login import LoginProbe
from poolwatch.sources.pgbouncer.collector import PgBouncerCollector
from poolwatch.sources.postgres.collector import PostgresCollector
from poolwatch.sources.redis.collector import RedisCollector

PROBE_NAME = "poolwatch-probe"


class Clock:
    """The probe's clock, moved past `probe_interval` before each probe."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def per_probe(
    probe: LoginProbe, clock: Clock, count: int, server: Callable[[], float]
) -> tuple[float, float, float, float]:
    """`count` probes one after another: wall per probe, poolwatch and server CPU per probe."""
    walls: list[float] = []
    done = probe.completed
    cpu0, server0 = time.process_time(), server()
    for _ in range(count):
        clock.now += 3600.0
        started = time.perf_counter()
        probe.poll()
        await probe.settled()
        walls.append(time.perf_counter() - started)
    cpu, served = time.process_time() - cpu0, server() - server0
    ok = {r.check: r.value for r in probe.readings()}.get("login_ok")
    if ok != 1 or probe.completed - done != count:
        made = probe.completed - done
        raise SystemExit(f"{probe.source}: {made} of {count} probes completed, login_ok {ok}")
    return statistics.median(walls), max(walls), cpu / count, served / count


def postgres_cpu(server: PgServer) -> Callable[[], float]:
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    return lambda: procfs.tree_cpu(pid, procfs.all_stats())


async def sessions(admin: Any) -> int:
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    return int(await admin.fetchval("SELECT sum(sessions)::bigint FROM pg_stat_database") or 0)


PID = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] ")
"""`log_line_prefix = '%m [%p] '`: time (three words with the zone), then the backend's pid."""


def probe_lines(log: Path) -> int:
    """Server log lines of the probes' backends: every line of a pid whose `connection
    authorized` names poolwatch-probe (`connection received` comes before the name is known)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    pids = {match.group(1) for line in lines if PROBE_NAME in line and (match := PID.match(line))}
    return sum(1 for line in lines if (match := PID.match(line)) and match.group(1) in pids)


async def per_minute(
    server: PgServer, minutes: float, probe_interval: float | None
) -> tuple[float, int, int]:
    """The daemon's loop over one PostgreSQL target: sessions and probe log lines per minute."""
    target = config.load(env={"POOLWATCH_POSTGRES_DSN": server.dsn()}).postgres.targets[0]
    target = target.model_copy(update={"probe_interval": probe_interval})
    collector = PostgresCollector(target)
    admin = await server.admin()
    stop = asyncio.Event()
    runner = Runner([collector], [], Evaluator("bench"))
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.sleep(2.0)  # past poolwatch's own first login
        before, lines = await sessions(admin), probe_lines(server.root / "log")
        await asyncio.sleep(minutes * 60)
        started = await sessions(admin) - before
        logged = probe_lines(server.root / "log") - lines
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await admin.close()
    return started / minutes, logged, collector.probe.started


async def measure(
    args: argparse.Namespace, pg: PgServer, redis_server: RedisServer, bouncer: Bouncer
) -> None:
    assert redis_server.process is not None
    redis_pid = redis_server.process.pid
    bouncer_pid = bouncer.pid()
    assert bouncer_pid is not None
    pg_cpu = postgres_cpu(pg)

    print(f"{args.probes} probes each, one at a time, {os.cpu_count()} CPUs, load average "
          f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)  # fmt: skip
    print("| source | wall per probe, median (ms) | worst (ms) | poolwatch CPU per probe (ms) "
          "| server CPU per probe (ms) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    clock = Clock()
    pg_target = config.load(env={"POOLWATCH_POSTGRES_DSN": pg.dsn()}).postgres.targets[0]
    redis_target = config.load(env={"POOLWATCH_REDIS_URL": redis_server.url}).redis.targets[0]
    bouncer_target = (
        config.load(env={"POOLWATCH_PGBOUNCER_DSN": bouncer.admin_dsn()})
        .pgbouncer.targets[0]
        .model_copy(update={"probe_dsn": bouncer.client_dsn()})
    )
    collectors: list[tuple[str, Any, Callable[[], float]]] = [
        ("PostgreSQL (SCRAM)", PostgresCollector(pg_target, clock=clock), pg_cpu),
        ("Redis (no AUTH)", RedisCollector(redis_target, clock=clock),
         lambda: procfs.process_cpu(redis_pid)),
        ("PgBouncer → PostgreSQL", PgBouncerCollector(bouncer_target, clock=clock),
         lambda: procfs.process_cpu(bouncer_pid) + pg_cpu()),
    ]  # fmt: skip
    for name, collector, server_cpu in collectors:
        try:
            await per_probe(collector.probe, clock, 3, server_cpu)  # warm-up: imports, caches
            wall, worst, cpu, served = await per_probe(
                collector.probe, clock, args.probes, server_cpu
            )
        finally:
            await collector.close()
        print(f"| {name} | {wall * 1000:.1f} | {worst * 1000:.1f} | {cpu * 1000:.2f} "
              f"| {served * 1000:.2f} |", flush=True)  # fmt: skip

    print(f"\nPostgreSQL collector in the daemon's loop for {args.minutes:g} min, "
          "interval 10 s:", file=sys.stderr)  # fmt: skip
    print("\n| probe_interval | PostgreSQL sessions started per minute | probes started "
          "| server log lines per probe |")  # fmt: skip
    print("|---|---:|---:|---:|")
    for label, interval in (("30s (default)", 30.0), ("off", None)):
        started, logged, probes = await per_minute(pg, args.minutes, interval)
        per = f"{logged / probes:.1f}" if probes else "—"
        print(f"| {label} | {started:.1f} | {probes} | {per} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=2.0)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # the table
    raise_fd_limit()
    root = Path(tempfile.mkdtemp(prefix="poolwatch-bench-login-"))
    root.chmod(0o755)  # PostgreSQL and PgBouncer run as the postgres user below it
    (root / "pg").mkdir()
    (root / "redis").mkdir()
    pg = PgServer(root / "pg")
    redis_server = RedisServer(root / "redis", 1000)
    bouncer = Bouncer(root / "pgbouncer", pg)
    try:
        pg.init()
        with (pg.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "log_connections = on\nlog_disconnections = on\nlog_line_prefix = '%m [%p] '\n"
            )
        pg.start()
        pg.setup_roles()
        redis_server.start()
        bouncer.write_config()
        bouncer.start()
        asyncio.run(measure(args, pg, redis_server, bouncer))
    finally:
        bouncer.stop()
        redis_server.close()
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
