"""Fixtures for the webhook tests: a real HTTP receiver, a real poolwatch daemon, signature checks.

The daemon is `python -m poolwatch` in a subprocess with thresholds at 0 and a reminder every
poll, so it produces a steady stream of events (about ten a second) without any server to watch.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks.webhooks import Webhook
from tests.eventually import eventually_sync
from tests.net import free_port
from tests.webhook.receiver import Receiver, Request

SECRET = "whsec_" + base64.b64encode(b"poolwatch-test-signing-key-32byt").decode()
EVENT_SCHEMA = "poolwatch.event/v1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def check_request(validate_event: Any) -> Any:
    """Call with a received request: the signature verifies independently, the body is valid."""
    verifier = Webhook(SECRET)

    def check(request: Request) -> dict[str, Any]:
        body = verifier.verify(request.body, request.headers)
        assert body["id"] == request.id
        return dict(validate_event(body))

    return check


class Daemon:
    """One `python -m poolwatch` process; its stdout (JSON lines) goes to a file we read back."""

    def __init__(self, workdir: Path, webhook: dict[str, Any]) -> None:
        self.workdir = workdir
        self.state_dir = workdir / "state"
        self.config = workdir / "poolwatch.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "interval": "100ms",
                    "shutdown_timeout": "5s",
                    "log_format": "json",
                    "defaults": {"repeat": "50ms"},
                    "webhooks": [{"name": "audit", "secret": SECRET, **webhook}],
                }
            )
        )
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def queue_file(self) -> Path:
        return self.state_dir / "queues" / "webhook-audit.sqlite3"

    def env(self) -> dict[str, str]:
        keep = {"PATH", "HOME", "LANG", "TMPDIR"}
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            POOLWATCH_CONFIG=str(self.config),
            POOLWATCH_STATE_DIR=str(self.state_dir),
            POOLWATCH_DOCKER="off",
            CPU_WARNING="0",
            MEMORY_WARNING="0",
        )
        return env

    def start(self) -> None:
        self.runs += 1
        with self._stdout(self.runs).open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "poolwatch"],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def lines(self, run: int | None = None) -> list[dict[str, Any]]:
        runs = [run] if run else range(1, self.runs + 1)
        out: list[dict[str, Any]] = []
        for index in runs:
            for text in self._stdout(index).read_text().splitlines():
                try:
                    out.append(json.loads(text))
                except json.JSONDecodeError:
                    continue  # a line cut by kill -9, or a traceback: shown on failure below
        return out

    def events(self, run: int | None = None) -> list[str]:
        """Ids of the events the daemon emitted (stdout sink), in order."""
        return [line["id"] for line in self.lines(run) if line.get("schema") == EVENT_SCHEMA]

    def wait_events(self, count: int, timeout: float = 30.0) -> None:
        """Until the daemon has emitted `count` events; at once a failure if it exits first."""

        def emitted() -> bool:
            assert self.process is not None
            if len(self.events()) >= count:
                return True
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited; log:\n{self.log_tail()}")
            return False

        eventually_sync(
            emitted, lambda: f"daemon: {count} events; log:\n{self.log_tail()}", timeout, 0.05
        )

    def log_tail(self) -> str:
        return "\n".join(self._stdout(self.runs).read_text().splitlines()[-20:])

    def queue_depth(self) -> int:
        with sqlite3.connect(f"file:{self.queue_file}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM queue").fetchone()[0])

    def dead_letters(self) -> list[tuple[str, int, str]]:
        with sqlite3.connect(f"file:{self.queue_file}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("SELECT key, status, response FROM dead_letter ORDER BY seq")
            return [(r[0], r[1], r[2]) for r in rows]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def _stdout(self, run: int) -> Path:
        return self.workdir / f"stdout-{run}.log"


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Any]:
    daemons: list[Daemon] = []

    def make(**webhook: Any) -> Daemon:
        daemon = Daemon(tmp_path, webhook)
        daemons.append(daemon)
        return daemon

    yield make
    for daemon in daemons:
        daemon.stop()
