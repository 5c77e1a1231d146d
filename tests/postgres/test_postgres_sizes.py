"""`size_interval`, against a real PostgreSQL 15: `pg_database_size` (it stats every file of every
database) is read on the first poll and then once per `size_interval`, its last readings
reported between reads; a database created or dropped shows at the next size read.

The size statements are counted by the server itself: `pg_stat_statements` (preloaded in a server
of this module's own) counts each statement the monitor role ran. The collector's clock is a
fake one, so "five minutes later" is a number, not a wait.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.postgres.pgserver import PgServer

from poolwatch.config import load as config
from poolwatch.core.model import Reading
from poolwatch.sources.postgres.collector import PostgresCollector

pytestmark = pytest.mark.integration

SIZE = "database_size_bytes"
SIZE_CALLS = (
    "SELECT coalesce(sum(calls), 0)::int FROM pg_stat_statements"
    " WHERE userid = 'pw_monitor'::regrole AND query LIKE '%pg\\_database\\_size(oid)%'"
)


@pytest.fixture(scope="module")
def pg_counted() -> Iterator[PgServer]:
    """A server of this module's own that counts statements (`pg_stat_statements`)."""
    root = Path(tempfile.mkdtemp(prefix="pw-pg-"))
    server = PgServer(root)
    try:
        server.init()
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write("shared_preload_libraries = 'pg_stat_statements'\n")
        server.start()
        server.setup_roles()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collector(dsn: str, clock: Clock, **settings: object) -> PostgresCollector:
    target = config.load(env={"POOLWATCH_POSTGRES_DSN": dsn}).postgres.targets[0]
    update = {"probe_interval": None, "interval": 10.0, **settings}
    return PostgresCollector(target.model_copy(update=update), clock=clock)


def sizes(readings: list[Reading] | tuple[Reading, ...]) -> dict[str, float]:
    return {r.labels["database"]: r.value for r in readings if r.check == SIZE}


async def test_sizes_are_read_once_per_size_interval_and_kept_between(
    pg_counted: PgServer,
) -> None:
    admin = await pg_counted.admin()
    clock = Clock()
    watched = collector(pg_counted.dsn(), clock)  # size_interval: the default 5 min
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await admin.execute("SELECT pg_stat_statements_reset()")

        first = sizes(await watched.collect())
        assert "postgres" in first
        assert first["postgres"] > 0
        assert await admin.fetchval(SIZE_CALLS) == 1

        await admin.execute("CREATE DATABASE fresh")
        for seconds in (10, 100, 280):  # within 5 min (and earlier than a tenth of a poll)
            clock.now = 1000.0 + seconds
            assert sizes(await watched.collect()) == first  # the last sizes, still present
            assert not watched.last_poll_partial
        assert await admin.fetchval(SIZE_CALLS) == 1

        clock.now = 1000.0 + 299.5  # due at 300 s; a poll's jitter early still takes it
        second = sizes(await watched.collect())
        assert "fresh" in second  # a new database appears at the next size read
        assert await admin.fetchval(SIZE_CALLS) == 2

        await admin.execute("DROP DATABASE fresh")
        clock.now = 1000.0 + 310
        assert "fresh" in sizes(await watched.collect())  # until the next size read ...
        clock.now = 1000.0 + 600
        assert "fresh" not in sizes(await watched.collect())  # ... and no longer
        assert not watched.last_poll_partial
        assert await admin.fetchval(SIZE_CALLS) == 3
        assert watched.size_interval == 300.0
    finally:
        await watched.close()
        await admin.execute("DROP DATABASE IF EXISTS fresh")
        await admin.close()


async def test_size_interval_not_above_interval_reads_every_poll(pg_counted: PgServer) -> None:
    admin = await pg_counted.admin()
    clock = Clock()
    watched = collector(pg_counted.dsn(), clock, size_interval=10.0)
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await admin.execute("SELECT pg_stat_statements_reset()")
        for _ in range(3):  # polls closer together than `interval` (a reload, --once)
            assert "postgres" in sizes(await watched.collect())
        assert await admin.fetchval(SIZE_CALLS) == 3
    finally:
        await watched.close()
        await admin.close()
