"""State files are 0600 in 0700 directories, whatever the umask: the delivery queue (whole event
bodies, holders' names and addresses) with its `-wal` and `-shm`, the silence store, the
heartbeat and the lock files, and every directory poolwatch creates for them.

Reproduced: under the usual umask 022 they were 0644 in 0755 directories, readable by every
local user; under umask 000, world-writable. Every run here is a real `poolwatch` process
started with umask 000, and the modes are read from the disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.daemon import BASE_ENV
from tests.eventually import eventually_sync
from tests.net import free_port
from tests.webhook.receiver import Receiver


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port())
    server.start()
    yield server
    server.stop()


def daemon(state: Path, config: Path, stdout: Path) -> subprocess.Popen[bytes]:
    with stdout.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "poolwatch"],
            env={
                **BASE_ENV,
                "POOLWATCH_CONFIG": str(config),
                "POOLWATCH_STATE_DIR": str(state),
                "POOLWATCH_LOG_FORMAT": "json",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            umask=0,
        )


def expected_files(state: Path) -> list[Path]:
    queue = state / "queues" / "webhook-audit.sqlite3"
    return [
        state / "heartbeat",
        state / "poolwatch.lock",
        state / "silences.sqlite3",  # its -wal and -shm last only while it is open
        queue,
        Path(f"{queue}-wal"),
        Path(f"{queue}-shm"),
        Path(f"{queue}.lock"),
    ]


def run_until_written(
    state: Path, tmp_path: Path, receiver: Receiver, run: int
) -> list[dict[str, Any]]:
    config = tmp_path / "poolwatch.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "interval": "200ms",
                "defaults": {"repeat": "100ms"},  # events all the time: the queue is written
                "host": {"rules": {"cpu_percent": {"warning": 0, "critical": None}}},
                "webhooks": [{"name": "audit", "url": receiver.url}],
            }
        )
    )
    stdout = tmp_path / f"stdout-{run}.log"
    process = daemon(state, config, stdout)
    try:
        before = len(receiver.requests)
        eventually_sync(lambda: len(receiver.requests) > before + 2, "events delivered")
        eventually_sync(
            lambda: all(path.exists() for path in expected_files(state)),
            lambda: f"every state file, among {sorted(str(p) for p in state.rglob('*'))}",
        )
        return [
            json.loads(line) for line in stdout.read_text().splitlines() if line.startswith("{")
        ]
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


@pytest.mark.integration
def test_every_state_file_is_0600_and_every_directory_0700(
    tmp_path: Path, receiver: Receiver
) -> None:
    state = tmp_path / "made" / "by" / "poolwatch"
    lines = run_until_written(state, tmp_path, receiver, 1)
    assert not [line for line in lines if line.get("event") == "state_dir_open"]
    for directory in (tmp_path / "made", tmp_path / "made" / "by", state, state / "queues"):
        assert mode(directory) == 0o700, directory
    for path in expected_files(state):
        if path.exists():  # the heartbeat and the -wal/-shm come and go
            assert mode(path) == 0o600, path
    for path in state.rglob("*"):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


@pytest.mark.integration
def test_files_of_an_older_poolwatch_are_tightened_and_an_open_state_dir_is_named(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The state dir the operator made is left as it is (it may be `/var/lib`), and said;
    the files and the `queues` directory, which are poolwatch's own, are made private."""
    state = tmp_path / "state"
    run_until_written(state, tmp_path, receiver, 1)
    state.chmod(0o755)
    (state / "queues").chmod(0o755)
    for path in state.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    lines = run_until_written(state, tmp_path, receiver, 2)
    (said,) = [line for line in lines if line.get("event") == "state_dir_open"]
    assert (said["path"], said["mode"], said["level"]) == (str(state), "0755", "warning")
    assert mode(state) == 0o755
    assert mode(state / "queues") == 0o700
    for path in expected_files(state):
        if path.exists():
            assert mode(path) == 0o600, path


def test_the_silence_command_makes_its_store_private(tmp_path: Path) -> None:
    state = tmp_path / "fresh"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "poolwatch",
            "silence",
            "add",
            "--match",
            "source=redis",
            "--for",
            "1h",
            "--comment",
            "upgrade",
        ],
        env={**BASE_ENV, "POOLWATCH_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        umask=0,
    )
    assert done.returncode == 0, done.stderr
    assert mode(state) == 0o700
    files = list(state.iterdir())
    assert state / "silences.sqlite3" in files
    for path in files:
        assert mode(path) == 0o600, path
    # the -wal and -shm exist while a connection is open; sqlite gives them the database's mode
    previous = os.umask(0)
    try:
        with contextlib.closing(sqlite3.connect(state / "silences.sqlite3")) as db:
            db.execute("SELECT count(*) FROM silences").fetchone()
            for suffix in ("-wal", "-shm"):
                assert mode(state / f"silences.sqlite3{suffix}") == 0o600
    finally:
        os.umask(previous)
