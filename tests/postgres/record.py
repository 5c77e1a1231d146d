"""Records the real rows of poolwatch's PostgreSQL reads (queries.CORE, NAMES, DEADLOCKS, SIZES)
from the installed PostgreSQL into data/postgres-<major>.json: `python -m tests.postgres.record`.

The scene: 6 sessions of the ordinary role `pw_load` (3 with application_name `app`, 2 `batch`,
1 none; one idle in transaction), a database literally named `(other)`, and two DEADLOCKS
rows with 3 sessions killed between them (pg_terminate_backend), so that the counters grow.
The unit tests (test_postgres_rows.py) map these rows to readings without a server. Run as
root on a provisioned machine (tests/provision).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
from tests.eventually import eventually
from tests.postgres.pgserver import LOAD_PASSWORD, PgServer

from poolwatch.sources.postgres import queries

DATA = Path(__file__).resolve().parent / "data"


async def _record(server: PgServer) -> dict[str, Any]:
    admin = await server.admin()
    await admin.execute('CREATE DATABASE "(other)"')
    load = server.dsn("pw_load", LOAD_PASSWORD)
    held = [
        await asyncpg.connect(load, server_settings={"application_name": app})
        for app in ("app", "app", "app", "batch", "batch", "")
    ]
    await held[0].execute("BEGIN; SELECT 1")  # idle in transaction
    monitor = await asyncpg.connect(server.dsn())
    try:
        version = await monitor.fetchval("SHOW server_version")
        core = dict(await monitor.fetchrow(queries.CORE))
        databases = [int(oid) for oid in json.loads(core["by_database"])]
        users = [int(oid) for oid in json.loads(core["by_user"])]
        names = dict(await monitor.fetchrow(queries.NAMES.sql, databases, users))
        before = dict(await monitor.fetchrow(queries.DEADLOCKS.sql))
        for conn in held[3:]:  # killed (sessions_killed grows), then let go of
            await admin.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
            conn.terminate()

        async def grown() -> dict[str, Any] | None:
            """The counters once they moved: a backend flushes them as it exits, after close()."""
            await monitor.execute("SELECT pg_stat_clear_snapshot()")
            now = dict(await monitor.fetchrow(queries.DEADLOCKS.sql))
            return now if now != before else None

        after = await eventually(grown, "the killed sessions counted", 10, 0.1)
        sizes = dict(await monitor.fetchrow(queries.SIZES.sql))
    finally:
        await monitor.close()
        for conn in held[:3]:
            await conn.close()
        await admin.close()
    return {
        "version": version,
        "core": core,
        "names": names,
        "deadlocks": [before, after],
        "sizes": sizes,
    }


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="pw-pg-"))
    server = PgServer(root)
    server.init()
    server.start()
    try:
        server.setup_roles()
        recorded = asyncio.run(_record(server))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    major = str(recorded["version"]).split(".")[0]
    out = DATA / f"postgres-{major}.json"
    out.write_text(json.dumps(recorded, indent=1, sort_keys=True, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
