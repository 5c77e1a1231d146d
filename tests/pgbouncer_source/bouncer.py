"""A private PgBouncer for the tests, in front of the session's private PostgreSQL.

PgBouncer refuses to run as root, so it runs as `postgres` (`runuser`), daemonised (`-d`) with
its config, auth file, log and pid file in a temp dir that user owns; it is stopped by the pid
in its pid file, never by name. Transaction pooling, `default_pool_size=2` and
`max_client_conn=30`: small enough that a dozen clients queue and thirty fill it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.eventually import eventually_sync
from tests.net import free_port
from tests.postgres.pgserver import LOAD_PASSWORD, PgServer

STATS_USER = "pw_stats"
STATS_PASSWORD = "stats-s3cret-pw"
POOL_SIZE = 2
MAX_CLIENT_CONN = 30


def executable() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if not found:
        pytest.fail("pgbouncer is missing: run tests/provision/15-pgbouncer.sh")
    return found


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@dataclass
class Bouncer:
    root: Path
    backend: PgServer
    port: int = field(default_factory=free_port)

    @property
    def pidfile(self) -> Path:
        return self.root / "pgbouncer.pid"

    @property
    def log(self) -> Path:
        return self.root / "pgbouncer.log"

    def admin_dsn(self, user: str = STATS_USER, password: str | None = STATS_PASSWORD) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/pgbouncer"

    def client_dsn(self) -> str:
        """The ordinary role `pw_load`, through PgBouncer, to the database `postgres`."""
        return f"postgresql://pw_load:{LOAD_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "userlist.txt").write_text(
            f'"pw_load" "{LOAD_PASSWORD}"\n"{STATS_USER}" "{STATS_PASSWORD}"\n'
        )
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256",
            "auth_file": self.root / "userlist.txt",
            "pool_mode": "transaction",
            "default_pool_size": POOL_SIZE,
            "reserve_pool_size": 0,
            "max_client_conn": MAX_CLIENT_CONN,
            "stats_users": STATS_USER,
            "logfile": self.log,
            "pidfile": self.pidfile,
            "server_login_retry": 1,
        }
        lines = [
            "[databases]",
            f"postgres = host=127.0.0.1 port={self.backend.port} dbname=postgres",
            "[pgbouncer]",
            *(f"{key} = {value}" for key, value in settings.items()),
        ]
        (self.root / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            for path in (self.root, *self.root.iterdir()):
                shutil.chown(path, "postgres", "postgres")

    def start(self) -> None:
        """Start it and wait (bounded) until it accepts connections."""
        self.pidfile.unlink(missing_ok=True)
        command = _as_postgres(executable(), "-d", str(self.root / "pgbouncer.ini"))
        subprocess.run(command, check=True, capture_output=True, timeout=30)

        def accepting() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self.pid() is not None
            return False

        def log() -> str:
            text = self.log.read_text() if self.log.exists() else "(no log)"
            return f"pgbouncer started:\n{text[-2000:]}"

        eventually_sync(accepting, log, 20, 0.05)

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM in 1.18) of the process in the pid file; waits for it."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            eventually_sync(lambda: not _alive(pid), "pgbouncer gone on SIGTERM", 20, 0.05)
        except AssertionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            eventually_sync(lambda: not _alive(pid), "pgbouncer gone on SIGKILL", 20, 0.05)
        self.pidfile.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose; pgbouncer -d is not our child, so it is reaped by init
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
        return state != "Z"
    return False


def pgbench(
    bouncer: Bouncer, clients: int, transactions: int, sleep: float
) -> subprocess.Popen[str]:
    """`pgbench` through PgBouncer: `clients` clients, each running `transactions` transactions
    of `SELECT pg_sleep(sleep)` (no tables needed, no vacuum)."""
    script = bouncer.root / "sleep.sql"
    script.write_text(f"SELECT pg_sleep({sleep});\n")
    command = [
        str(Path("/usr/lib/postgresql/15/bin/pgbench")),
        "-n",
        "-f",
        str(script),
        "-c",
        str(clients),
        "-j",
        "2",
        "-t",
        str(transactions),
        "-h",
        "127.0.0.1",
        "-p",
        str(bouncer.port),
        "-U",
        "pw_load",
        "postgres",
    ]
    env = {**os.environ, "PGPASSWORD": LOAD_PASSWORD}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
