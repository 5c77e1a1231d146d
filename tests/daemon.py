"""A real `poolwatch` daemon process for end-to-end tests, read line by line as it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

BASE_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "POOLWATCH_DOCKER": "off",  # tests about other parts do not depend on the engine
    # one state dir per test process: a daemon holds its state dir (poolwatch.lock), and test
    # runs of several checkouts may share this machine
    "POOLWATCH_STATE_DIR": tempfile.mkdtemp(prefix="poolwatch-test-state-"),
}


class Daemon:
    """A running `poolwatch` daemon whose stdout JSON lines are read as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "poolwatch"],
            env={**BASE_ENV, "POOLWATCH_LOG_FORMAT": "json", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, wait, close the pipe; the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def wait_for(self, predicate: Any, deadline: float = 60) -> dict[str, Any]:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            line = stdout.readline()
            if not line:
                break
            self.lines.append(json.loads(line))
            if predicate(self.lines[-1]):
                return self.lines[-1]
        raise AssertionError(f"not seen within {deadline}s; lines: {self.lines[-20:]}")


def healthcheck(state: Path) -> subprocess.CompletedProcess[str]:
    """`poolwatch --healthcheck` against a state dir, as Docker's HEALTHCHECK runs it."""
    return subprocess.run(
        [sys.executable, "-m", "poolwatch", "--healthcheck"],
        env={**BASE_ENV, "POOLWATCH_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def poolwatch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """One `poolwatch` command (`--once`, `--check-config`, ...) run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "poolwatch", *args],
        env={**BASE_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
