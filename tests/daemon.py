"""A real `poolwatch` daemon process for end-to-end tests, read line by line as it writes."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
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
    """A running `poolwatch` daemon whose stdout JSON lines are read as they come.

    A thread of its own reads the pipe, so a wait's deadline holds even when the daemon falls
    silent (a blocking read would outlast it, and only the test's timeout would end it, without
    the lines seen)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "poolwatch"],
            env={**BASE_ENV, "POOLWATCH_LOG_FORMAT": "json", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        """The lines `wait_for` has taken so far, in order."""
        self._unread: queue.Queue[str | None] = queue.Queue()
        """Lines read from the pipe and not yet taken; None once the pipe has ended."""
        self._reader = threading.Thread(target=self._read, name="daemon-stdout", daemon=True)
        self._reader.start()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, wait, close the pipe; the exit code. A daemon that does not stop within
        `timeout` is killed (never left running) and the wait's TimeoutExpired raised."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join()  # the pipe ends with the process
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def wait_for(self, predicate: Any, deadline: float = 60) -> dict[str, Any]:
        """The first line from here on that `predicate` accepts, within `deadline` seconds."""
        end = time.monotonic() + deadline
        while (text := self._take(end - time.monotonic())) is not None:
            self.lines.append(json.loads(text))
            if predicate(self.lines[-1]):
                return self.lines[-1]
        raise AssertionError(f"not seen within {deadline}s; lines: {self.lines[-20:]}")

    def _take(self, seconds: float) -> str | None:
        """The next line within `seconds`; None at the deadline or once the pipe has ended."""
        try:
            text = self._unread.get(timeout=max(0.0, seconds))
        except queue.Empty:
            return None
        if text is None:
            self._unread.put(None)  # the end stays the end for the next wait
        return text

    def _read(self) -> None:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        with contextlib.suppress(OSError, ValueError):  # closed under it: an end as well
            for text in stdout:
                self._unread.put(text)
        self._unread.put(None)


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
