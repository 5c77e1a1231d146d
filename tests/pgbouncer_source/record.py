"""Records real SHOW output of the installed PgBouncer into data/pgbouncer-<version>.json, with
clients queueing (pgbench, 12 clients on a pool of 2): `python -m tests.pgbouncer_source.record`.

The unit tests parse these files, so that a version's column set is proved without that version
installed. Run as root on a provisioned machine (tests/provision).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from tests.pgbouncer_source.bouncer import Bouncer, pgbench
from tests.postgres.pgserver import PgServer

from poolwatch.sources.pgbouncer.show import COMMANDS

DATA = Path(__file__).resolve().parent / "data"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    return value


async def _record(bouncer: Bouncer) -> dict[str, Any]:
    conn = await psycopg.AsyncConnection.connect(
        bouncer.admin_dsn(), autocommit=True, cursor_factory=psycopg.AsyncClientCursor
    )
    recorded: dict[str, Any] = {}
    try:
        async with conn.cursor() as cursor:
            for command in ("SHOW VERSION", *COMMANDS.values()):
                await cursor.execute(command)
                columns = [c.name for c in cursor.description or ()]
                rows = [[_plain(v) for v in row] for row in await cursor.fetchall()]
                recorded[command] = {"columns": columns, "rows": rows}
    finally:
        await conn.close()
    return recorded


def main() -> None:
    pg_root = Path(tempfile.mkdtemp(prefix="pw-pg-"))
    bouncer_root = Path(tempfile.mkdtemp(prefix="pw-pgb-"))
    server = PgServer(pg_root)
    server.init()
    server.start()
    bouncer = Bouncer(bouncer_root, server)
    try:
        server.setup_roles()
        bouncer.write_config()
        bouncer.start()
        load = pgbench(bouncer, 12, 5, 0.2)
        time.sleep(2)  # let the queue form; a recording, not a test
        recorded = asyncio.run(_record(bouncer))
        load.wait(timeout=60)
        version = recorded["SHOW VERSION"]["rows"][0][0].split()[-1]
        for row in recorded["SHOW CONFIG"]["rows"]:  # temp paths and ports of this run
            if row[0] in ("auth_file", "conffile", "logfile", "pidfile", "listen_port"):
                row[1] = "(recorded)"
        for row in recorded["SHOW DATABASES"]["rows"]:
            row[2] = 5432 if row[0] != "pgbouncer" else 6432
        path = DATA / f"pgbouncer-{version}.json"
        path.write_text(json.dumps(recorded, indent=1) + "\n")
        print(path)
    finally:
        bouncer.stop()
        server.stop("immediate")
        shutil.rmtree(bouncer_root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)


if __name__ == "__main__":
    main()
