"""Fixtures for the PgBouncer source tests: a private PgBouncer per test, in front of the
session's PostgreSQL (`pg`). Fails, never skips, when pgbouncer is missing."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pgbouncer_source.bouncer import Bouncer
from tests.postgres.pgserver import PgServer


def _bouncer(backend: PgServer) -> Iterator[Bouncer]:
    # not pytest's tmp_path: its parents are root's alone, and PgBouncer runs as postgres
    root = Path(tempfile.mkdtemp(prefix="pw-pgb-"))
    running = Bouncer(root, backend)
    try:
        running.write_config()
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def bouncer(pg: PgServer) -> Iterator[Bouncer]:
    yield from _bouncer(pg)


@pytest.fixture
def bouncer_before_private(pg_private: PgServer) -> Iterator[Bouncer]:
    """A PgBouncer in front of a server the test may stop."""
    yield from _bouncer(pg_private)
