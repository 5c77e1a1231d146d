"""Names that are not UTF-8, against a real PostgreSQL: a `SQL_ASCII` database takes any bytes,
so a role or database may be named with bytes such as `\\xff`, and it lands in the shared
catalogs every database reads. Such a name costs at most its own row (read with U+FFFD in it),
never the other databases' sizes or the per-database and per-user counts, whichever database
poolwatch connects to; a session's query text in such bytes costs nothing either."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tests.eventually import eventually
from tests.postgres.pgserver import BIN, PgServer
from tests.postgres.test_postgres_pool import make_target

from poolwatch.core.model import Reading
from poolwatch.sources.postgres.collector import PostgresCollector

pytestmark = pytest.mark.integration

BAD_DATABASE = b"sizes\xffhidden"
BAD_ROLE = b"role\xfe\xfdx"
SECRET = b"s3cret-\xff-literal"
QUERY = b"SELECT pg_sleep(60) WHERE '" + SECRET + b"' <> ''"


@dataclass
class BadNames:
    database: str
    role: str
    """The names as poolwatch reads them: each byte that is not UTF-8 as U+FFFD."""


def psql(pg: PgServer, database: str, user: bytes = b"postgres") -> list[bytes]:
    """psql over the socket in the `SQL_ASCII` client encoding: bytes in, bytes out, as is."""
    return [
        str(BIN / "psql").encode(),
        b"-X", b"-q", b"-v", b"ON_ERROR_STOP=1",
        b"-h", pg.socket_dir.encode(), b"-p", str(pg.port).encode(),
        b"-U", user, b"-d", database.encode(),
    ]  # fmt: skip


def run_sql(pg: PgServer, database: str, sql: bytes) -> None:
    env = {**os.environ, "PGCLIENTENCODING": "SQL_ASCII"}
    done = subprocess.run(psql(pg, database), input=sql, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def bad_names(pg_private: PgServer) -> Iterator[BadNames]:
    """A `SQL_ASCII` database `latin`, and from it a `SQL_ASCII` database and a login role named
    with bytes that are not UTF-8; one session of that role in that database runs a query whose
    literal is not UTF-8 either."""
    pg = pg_private
    run_sql(
        pg,
        "postgres",
        b"CREATE DATABASE latin ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'"
        b" TEMPLATE template0;",
    )
    run_sql(
        pg,
        "latin",
        b'CREATE DATABASE "' + BAD_DATABASE + b"\" ENCODING 'SQL_ASCII' LC_COLLATE 'C'"
        b" LC_CTYPE 'C' TEMPLATE template0;"
        b'CREATE ROLE "' + BAD_ROLE + b'" LOGIN;',
    )
    env = {**os.environ, "PGCLIENTENCODING": "SQL_ASCII"}
    command = [*psql(pg, "postgres", BAD_ROLE), b"-c", QUERY]
    command[command.index(b"-d") + 1] = BAD_DATABASE
    session = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        asyncio.run(_wait_for_session(pg, session))
        yield BadNames(BAD_DATABASE.decode("utf-8", "replace"), BAD_ROLE.decode("utf-8", "replace"))
    finally:
        session.kill()
        session.communicate(timeout=30)


async def _wait_for_session(
    pg: PgServer, session: subprocess.Popen[bytes], deadline: float = 30.0
) -> None:
    """Until the bad role's query runs (psql connects asynchronously), bounded."""
    conn = await pg.admin()

    async def running() -> bool:
        if session.poll() is not None:
            raise AssertionError(f"psql exited: {session.communicate()}")
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_get_activity(NULL)"
                " WHERE state = 'active' AND wait_event = 'PgSleep'"
            )
        )

    try:
        await eventually(running, "the bad role's query running", deadline, 0.05)
    finally:
        await conn.close()


def labelled(readings: list[Reading], check: str, label: str) -> dict[str, float]:
    return {r.labels[label]: r.value for r in readings if r.check == check}


@pytest.mark.parametrize("database", ["postgres", "latin"])
async def test_a_name_that_is_not_utf8_costs_only_its_own_row(
    pg_private: PgServer, bad_names: BadNames, database: str
) -> None:
    """Connected to a UTF-8 database (the driver would fail to decode the name) and to the
    `SQL_ASCII` one (the server would fail to convert it to UTF-8): every reading is there."""
    dsn = pg_private.dsn().rsplit("/", 1)[0] + f"/{database}"
    env = {"POSTGRES_CONN_WARNING": "1", "POSTGRES_CONN_CRITICAL": "150"}  # holders read too
    target = make_target(dsn, env).model_copy(update={"include_query_text": True})
    collector = PostgresCollector(target)
    try:
        readings = list(await collector.collect())
    finally:
        await collector.close()
    assert not collector.last_poll_partial, [r.message for r in readings if r.check == "up"]

    sizes = labelled(readings, "database_size_bytes", "database")
    assert {"postgres", "latin", bad_names.database} <= set(sizes)
    assert all(size > 1_000_000 for size in sizes.values())
    by_database = labelled(readings, "connections_by_database", "database")
    assert by_database[database] >= 1  # poolwatch's own session (the fixture's may be leaving)
    assert by_database[bad_names.database] == 1  # the bad role's
    by_user = labelled(readings, "connections_by_user", "user")
    assert (by_user["pw_monitor"], by_user[bad_names.role]) == (1, 1)

    connections = next(r for r in readings if r.check == "connections")
    assert connections.context is not None, connections.message  # the holders were read
    (holder,) = connections.context["holders"]
    assert holder["user"] == bad_names.role
    assert holder["query"] == "SELECT pg_sleep(?) WHERE ? <> ?"
    assert "s3cret" not in str(connections.context)
