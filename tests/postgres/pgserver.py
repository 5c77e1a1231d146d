"""A private PostgreSQL 15 server for the tests (initdb in a temp dir, run as `postgres`) and
the helpers that drive it.

One server lives for the whole session (`pg`); a test that stops its server asks for its own
(`pg_private`). Roles: the superuser `postgres` (admin work over the unix socket, and so in the
superuser-reserved slots), `pw_monitor` (what poolwatch connects as: pg_monitor, no superuser, so
it meets 53300 like any ordinary role) and `pw_load` (the connections that fill the pool).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tests.eventually import eventually
from tests.net import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
MONITOR_PASSWORD = "monitor-s3cret-pw"
LOAD_PASSWORD = "load-pw"
MAX_CONNECTIONS = 200


def _as_postgres(*argv: str, timeout: float = 120) -> None:
    command = ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)
    subprocess.run(command, check=True, capture_output=True, timeout=timeout)


@dataclass
class PgServer:
    root: Path
    port: int = field(default_factory=free_port)
    max_connections: int = MAX_CONNECTIONS

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> str:
        return str(self.root)

    def dsn(self, user: str = "pw_monitor", password: str | None = MONITOR_PASSWORD) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        for tool in ("initdb", "pg_ctl"):
            if not (BIN / tool).exists():
                pytest.fail(f"{BIN / tool} is missing: run tests/provision/10-servers.sh")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        _as_postgres(
            str(BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
        )
        settings = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": self.max_connections,
            "shared_buffers": "'32MB'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "deadlock_timeout": "'100ms'",
            "autovacuum": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        _as_postgres(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    async def admin(self) -> Any:
        """A superuser connection over the socket (it may use the superuser-reserved slots)."""
        return await asyncpg.connect(
            host=self.socket_dir, port=self.port, user="postgres", database="postgres", timeout=10
        )

    def setup_roles(self) -> None:
        async def create() -> None:
            conn = await self.admin()
            try:
                # DDL takes no parameters; the passwords are this module's constants
                await conn.execute(
                    f"CREATE ROLE pw_monitor LOGIN PASSWORD '{MONITOR_PASSWORD}'"  # noqa: S608
                    " IN ROLE pg_monitor;"
                    f"CREATE ROLE pw_load LOGIN PASSWORD '{LOAD_PASSWORD}';"
                    "CREATE TABLE deadlock_demo (id int PRIMARY KEY, n int);"
                    "INSERT INTO deadlock_demo VALUES (1, 0), (2, 0);"
                    "GRANT SELECT, UPDATE ON deadlock_demo TO pw_load;"
                )
            finally:
                await conn.close()

        asyncio.run(create())


async def client_backends(conn: Any) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        )
    )


async def poolwatch_sessions(conn: Any) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'poolwatch'"
        )
    )


async def wait_for_count(conn: Any, expected: int, deadline: float = 20.0) -> None:
    """Backends exit asynchronously after a close or a terminate: wait, bounded."""
    counted: list[int] = []

    async def reached() -> bool:
        counted.append(await client_backends(conn))
        return counted[-1] == expected

    await eventually(
        reached, lambda: f"{expected} client backends (last: {counted[-1:]})", deadline, 0.05
    )


class Load:
    """Real connections as the ordinary role `pw_load`, to drive the pool to a given size."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.conns: list[Any] = []

    async def open_one(self) -> Any:
        conn = await asyncpg.connect(
            self.server.dsn("pw_load", LOAD_PASSWORD), timeout=20, server_settings={}
        )
        self.conns.append(conn)
        return conn

    async def open(self, count: int) -> None:
        gate = asyncio.Semaphore(16)

        async def one() -> None:
            async with gate:
                await self.open_one()

        await asyncio.gather(*(one() for _ in range(count)))

    async def close(self, count: int | None = None) -> None:
        count = len(self.conns) if count is None else count
        victims, self.conns = self.conns[:count], self.conns[count:]
        await asyncio.gather(*(c.close(timeout=10) for c in victims), return_exceptions=True)

    async def fill(self) -> None:
        """Open connections until the server refuses with SQLSTATE 53300."""
        while True:
            try:
                await self.open_one()
            except asyncpg.TooManyConnectionsError:
                return
