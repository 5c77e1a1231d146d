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


@pytest.fixture
def bouncer(pg: PgServer) -> Iterator[Bouncer]:
    # not pytest's tmp_path: its parents are root's alone, and PgBouncer runs as postgres
    root = Path(tempfile.mkdtemp(prefix="pw-pgb-"))
    running = Bouncer(root, pg)
    try:
        running.write_config()
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)
