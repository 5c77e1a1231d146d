"""What watching costs the watched: the CPU of poolwatch's own PostgreSQL backend, with many tables
in one database, before and after `size_interval` (issue 25).

`pg_database_size` stats every file of every database; with 20,000 tables (about 80,000 files) a
read costs the server far more than the rest of a poll. The daemon runs at a 1 s interval with
its PostgreSQL source (and the host source) twice: with `size_interval` equal to the interval
(every poll reads the sizes, as before) and with the default `5m`. Its backend is found by
`application_name = 'poolwatch'` in `pg_stat_activity`, and its CPU read from `/proc/<pid>/stat`
(utime + stime) at the start and the end of each window. Nothing is asserted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import procfs
from bench.measure import PgProbe
from bench.stack import BenchError, Stack, daemon

DATABASE = "bench_tables"
BATCH = 1000
"""Tables created per transaction: each takes a lock until commit, and the lock table holds
`max_locks_per_transaction * max_connections` (64 * 200) of them, four a table here."""


@dataclass(frozen=True)
class Cost:
    size_interval: str
    polls: float
    seconds: float
    cpu: float
    """CPU seconds of poolwatch's backend in the window."""

    @property
    def share(self) -> float:
        """Of one core."""
        return self.cpu / self.seconds

    @property
    def per_poll(self) -> float:
        return self.cpu / self.polls


def create_tables(stack: Stack, probe: PgProbe, tables: int) -> None:
    """`tables` empty tables in a database of their own (dropped by `drop_tables`), each with a
    primary key and a TOAST table: four files a table, as an application's tables have."""
    probe.run(probe.conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}"))
    probe.run(probe.conn.execute(f"CREATE DATABASE {DATABASE}"))

    async def create() -> None:
        pg = stack.postgres
        conn: Any = await asyncpg.connect(
            host=pg.socket_dir, port=pg.port, user="postgres", database=DATABASE, timeout=20
        )
        try:
            for start in range(0, tables, BATCH):
                end = min(start + BATCH, tables) - 1
                await conn.execute(
                    f"DO $$ BEGIN FOR i IN {start}..{end} LOOP"
                    " EXECUTE format('CREATE TABLE t_%s (id int PRIMARY KEY, note text)', i);"
                    " END LOOP; END $$",
                    timeout=600,
                )
        finally:
            await conn.close()

    probe.run(create())


def drop_tables(probe: PgProbe) -> None:
    probe.run(probe.conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}", timeout=600))


def files(stack: Stack) -> int:
    """Files below the server's data directory's `base/` (every database's relations)."""
    return sum(1 for path in Path(stack.postgres.data, "base").rglob("*") if path.is_file())


def backend_cost(
    stack: Stack, probe: PgProbe, size_interval: str, seconds: float, warmup: float = 3.0
) -> Cost:
    """The daemon at 1 s with `size_interval`: its backend's CPU over `seconds` after it has
    polled a few times (the first poll reads the sizes in either case)."""
    config = stack.root / f"size-interval-{size_interval}.yaml"
    config.write_text(f"postgres:\n  size_interval: {size_interval}\n")
    env = stack.poolwatch_env(
        interval="1s",
        sources="host",
        POOLWATCH_POSTGRES_DSN=stack.postgres.dsn(),
        POOLWATCH_CONFIG=str(config),
    )
    with daemon(stack, f"watched-{size_interval}", env) as running:
        running.wait_polls(3, 2)
        time.sleep(warmup)
        backends = probe.poolwatch_backends()
        if len(backends) != 1:
            raise BenchError(f"poolwatch holds {len(backends)} PostgreSQL backends, expected 1")
        (pid,) = backends
        before, polls0, started = procfs.stat(pid), running.polls(), time.monotonic()
        time.sleep(seconds)
        after, polls1, elapsed = procfs.stat(pid), running.polls(), time.monotonic() - started
        if before is None or after is None:
            raise BenchError(f"poolwatch's backend {pid} went away during the window")
        polls = polls1["postgres:main"] - polls0["postgres:main"]
        if polls < 1:
            raise BenchError(f"poolwatch polled PostgreSQL {polls} times in {seconds:g}s")
        return Cost(size_interval, polls, elapsed, after.own - before.own)
