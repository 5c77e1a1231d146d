"""A pool with holders, built on the real server: who holds it and who waits behind whom.

40 `leaky` sessions idle in transaction, 20 `busy` ones in `pg_sleep`, 10 `worker` ones idle,
one `migrate` session holding a row lock and 5 `waiter` sessions queued behind it (the first
waits for `migrate`'s transaction, the other four for the tuple lock the first holds: a chain).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from tests.eventually import eventually
from tests.postgres.pgserver import LOAD_PASSWORD, PgServer

SESSIONS = {"leaky": 40, "busy": 20, "worker": 10, "migrate": 1, "waiter": 5}
TOTAL = sum(SESSIONS.values())
SECRET_LITERAL = "alice@example.com"
"""A value in `migrate`'s query that a scrubbed query text must not show."""


@dataclass
class Scene:
    server: PgServer
    conns: list[Any] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    migrate_pid: int = 0

    async def connect(self, application: str) -> Any:
        conn = await asyncpg.connect(
            self.server.dsn("pw_load", LOAD_PASSWORD),
            timeout=20,
            server_settings={"application_name": application},
        )
        self.conns.append(conn)
        return conn

    async def open(self) -> None:
        admin = await self.server.admin()
        try:
            await admin.execute(
                "CREATE TABLE IF NOT EXISTS holders_demo (id int PRIMARY KEY, n int);"
                "INSERT INTO holders_demo VALUES (1, 0) ON CONFLICT DO NOTHING;"
                "GRANT SELECT, UPDATE ON holders_demo TO pw_load;"
            )
            gate = asyncio.Semaphore(16)

            async def one(application: str) -> Any:
                async with gate:
                    return await self.connect(application)

            for application in ("leaky", "busy", "worker"):
                opened = await asyncio.gather(
                    *(one(application) for _ in range(SESSIONS[application]))
                )
                for conn in opened:
                    if application == "leaky":
                        await conn.execute("BEGIN; SELECT 1")
                    elif application == "busy":
                        self.tasks.append(asyncio.create_task(conn.execute("SELECT pg_sleep(600)")))
            migrate = await self.connect("migrate")
            self.migrate_pid = int(await migrate.fetchval("SELECT pg_backend_pid()"))
            await migrate.execute(
                "BEGIN; SELECT n FROM holders_demo"  # noqa: S608 (a constant)
                f" WHERE id = 1 AND '{SECRET_LITERAL}' <> '' FOR UPDATE"
            )
            for _ in range(SESSIONS["waiter"]):
                waiter = await self.connect("waiter")
                self.tasks.append(
                    asyncio.create_task(
                        waiter.execute("UPDATE holders_demo SET n = n + 1 WHERE id = 1")
                    )
                )
                await _until(admin, "wait_event_type = 'Lock'", len(self.conns) - 71)
            await _until(admin, "application_name = 'busy' AND state = 'active'", 20)
        finally:
            await admin.close()

    async def close(self) -> None:
        """Ends every scene session on the server too (a backend in pg_sleep would not notice its
        client going away)."""
        admin = await self.server.admin()
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pw_load'"
            )
        finally:
            await admin.close()
        for conn in self.conns:
            conn.terminate()
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.tasks, return_exceptions=True)


async def _until(admin: Any, where: str, count: int, deadline: float = 30.0) -> None:
    """Sessions reach a state asynchronously: wait, bounded."""
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE {where}"  # noqa: S608 (constants)
    found: list[int] = []

    async def reached() -> bool:
        found.append(int(await admin.fetchval(sql)))
        return found[-1] >= count

    await eventually(
        reached, lambda: f"{count} sessions where {where} (last: {found[-1:]})", deadline, 0.05
    )
