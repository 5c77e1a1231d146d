"""Sessions that ended badly (`pg_stat_database.sessions_*`, PostgreSQL 14+): the pure deltas, then
a real PostgreSQL 15 where a session is killed, one abandoned, one ended by a FATAL timeout, and a
login that fails, which these counters never see (the login probe does)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from tests.eventually import eventually
from tests.postgres.pgserver import LOAD_PASSWORD, Load, PgServer

from poolwatch.config import load as config
from poolwatch.core.model import Reading
from poolwatch.sources.postgres.collector import PostgresCollector
from poolwatch.sources.postgres.readings import CHECKS
from poolwatch.sources.postgres.sessions import (
    SESSION_CHECKS,
    session_counters,
    session_deltas,
)

STARTED = "2026-11-27 12:00:00+00"


def rows(*items: tuple[int, str | None, int | None, int | None, int | None]) -> str:
    return json.dumps([list(item) for item in items])


def test_session_deltas_sum_databases_and_count_resets_and_restarts_from_zero() -> None:
    first = session_counters(rows((1, "r", 5, 1, 0), (2, "r", 0, 0, 2)), STARTED)
    assert session_deltas(None, first) == {}  # the first poll is a baseline
    again = session_counters(rows((1, "r", 7, 1, 0), (2, "r", 1, 3, 2)), STARTED)
    assert session_deltas(first, again) == {
        "sessions_fatal": 3,
        "sessions_abandoned": 3,
        "sessions_killed": 0,
    }
    reset = session_counters(rows((1, "r2", 1, 0, 0), (2, "r", 1, 3, 2)), STARTED)
    assert session_deltas(again, reset)["sessions_fatal"] == 1  # stats reset: from zero
    restarted = session_counters(rows((1, "r2", 1, 0, 0), (2, "r", 1, 3, 2)), "later")
    assert session_deltas(reset, restarted)["sessions_killed"] == 2  # a restart: from zero
    new_database = session_counters(rows((1, "r2", 1, 0, 0), (3, None, 9, 9, 9)), "later")
    assert session_deltas(restarted, new_database)["sessions_fatal"] == 0  # a baseline


def test_a_server_without_the_columns_gives_none() -> None:
    """PostgreSQL 13 and older: `to_jsonb(row)` has no such keys, so the values are null."""
    older = session_counters(rows((1, "r", None, None, None)), STARTED)
    assert older == {}
    assert session_deltas(older, older) == {}
    assert set(SESSION_CHECKS) <= set(CHECKS)


def _target(dsn: str) -> config.PostgresTarget:
    return config.load(env={"POOLWATCH_POSTGRES_DSN": dsn}).postgres.targets[0]


def _sum(readings: list[Reading], check: str) -> float:
    found = [r for r in readings if r.check == check]
    assert len(found) == 1, (check, readings)
    assert found[0].unit == "sessions"
    return found[0].value


async def _accumulate(
    collector: PostgresCollector, done: Callable[[dict[str, float]], bool], deadline: float = 20
) -> dict[str, float]:
    """Poll, summing each delta, until `done`: a backend reports its session's end as it exits."""
    totals = dict.fromkeys(SESSION_CHECKS, 0.0)

    async def polled() -> dict[str, float] | None:
        readings = list(await collector.collect())
        for check in SESSION_CHECKS:
            totals[check] += _sum(readings, check)
        return totals if done(totals) else None

    found: dict[str, float] = await eventually(
        polled, lambda: f"the session counts wanted; totals: {totals}", deadline, 0.1
    )
    return found


@pytest.mark.integration
async def test_killed_abandoned_and_fatal_sessions_and_never_a_failed_login(
    pg: PgServer, load: Load
) -> None:
    collector = PostgresCollector(_target(pg.dsn()))
    admin = await pg.admin()
    try:
        first = list(await collector.collect())
        assert not {r.check for r in first} & set(SESSION_CHECKS)  # a baseline only
        await collector.collect()

        killed = await load.open_one()
        pid = await killed.fetchval("SELECT pg_backend_pid()")
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        abandoned: Any = await asyncpg.connect(pg.dsn("pw_load", LOAD_PASSWORD), timeout=10)
        await abandoned.fetchval("SELECT 1")
        # what a crashed application leaves: the socket closed, no Terminate message (asyncpg's
        # terminate() and close() both send one)
        abandoned._transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        timed_out = await load.open_one()
        await timed_out.execute("SET idle_session_timeout = '100ms'")  # FATAL when idle
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(pg.dsn("pw_load", "wrong"), timeout=10)

        totals = await _accumulate(collector, lambda t: all(v >= 1 for v in t.values()))
        assert totals == {"sessions_fatal": 1, "sessions_abandoned": 1, "sessions_killed": 1}
        abandoned.terminate()
    finally:
        await collector.close()
        await admin.close()
