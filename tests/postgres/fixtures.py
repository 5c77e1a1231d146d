"""PostgreSQL fixtures, a plugin of tests/conftest.py: the session's server, a private one for
a test that stops it, the load.

The servers and helpers are in pgserver.py (one copy of the module, imported by tests and here).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.postgres.pgserver import Load, PgServer, wait_for_count


def _server(**settings: int) -> Iterator[PgServer]:
    root = Path(tempfile.mkdtemp(prefix="pw-pg-"))
    server = PgServer(root, **settings)
    try:
        server.init()
        server.start()
        server.setup_roles()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    yield from _server()


@pytest.fixture
async def pg(pg_server: PgServer) -> AsyncIterator[PgServer]:
    """The session server, left with no client connection but the test's own when done."""
    yield pg_server
    conn = await pg_server.admin()
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        await wait_for_count(conn, 1)
    finally:
        await conn.close()


@pytest.fixture
def pg_private() -> Iterator[PgServer]:
    """A server of the test's own, for a test that stops and starts it."""
    yield from _server()


@pytest.fixture
def pg_default_limits() -> Iterator[PgServer]:
    """A server left at PostgreSQL's own default `max_connections = 100` (97 usable)."""
    yield from _server(max_connections=100)


@pytest.fixture
async def load(pg: PgServer) -> AsyncIterator[Load]:
    loads = Load(pg)
    yield loads
    await loads.close()
