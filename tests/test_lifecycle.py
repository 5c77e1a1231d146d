"""Lifecycle (issue 24): a full state volume is named, not called "stuck"; `queue_dropped` names
the events it dropped; a second SIGTERM after the first always ends poolwatch by that signal.
"""

from __future__ import annotations

import errno
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from poolwatch.runtime import heartbeat
from poolwatch.sinks.durable.queue import DROPPED_IDS_PER_LINE, DurableQueue
from tests.daemon import Daemon, healthcheck
from tests.eventually import eventually_sync
from tests.test_heartbeat import ticking


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB filesystem (tmpfs, as root) to fill."""
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(state)], check=True)
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def fill(volume: Path) -> None:
    """Write zeros to `volume` until it refuses: it is full."""
    refused = None
    with (volume / "ballast").open("wb", buffering=0) as ballast:
        while refused is None:
            try:
                ballast.write(b"\0" * 4096)
            except OSError as exc:
                refused = exc.errno
    assert refused == errno.ENOSPC


# --- a full state volume ---------------------------------------------------------------------


@pytest.mark.integration
def test_a_full_state_volume_is_named_not_called_stuck(small_volume: Path) -> None:
    """Reproduced: "heartbeat is 17s old (written every 5s): poolwatch is stuck", so a liveness
    probe restarted a monitor whose loops were turning, for a volume a restart cannot empty."""
    env = {"POOLWATCH_STATE_DIR": str(small_volume), "POOLWATCH_INTERVAL": "1s"}
    with Daemon(env) as daemon:
        daemon.wait_for(lambda line: line.get("event") == "started")
        eventually_sync(lambda: healthcheck(small_volume).returncode == 0, "healthy first", 40, 0.5)
        fill(small_volume)
        daemon.wait_for(lambda line: line.get("event") == "heartbeat_unwritable")
        done: list[subprocess.CompletedProcess[str]] = []
        eventually_sync(
            lambda: (done.append(healthcheck(small_volume)) or done[-1].returncode) == 1,
            "unhealthy once the heartbeat is three periods old",
            40,
            0.5,
        )
        said = done[-1].stdout
        assert said.startswith("unhealthy: heartbeat is ")
        assert f"state_dir {small_volume} cannot be written (No space left on device" in said
        assert "the volume is full; free space on it" in said
        assert "stuck" not in said
        (small_volume / "ballast").unlink()  # space again: alive again, by the same rule
        eventually_sync(lambda: healthcheck(small_volume).returncode == 0, "healthy again", 40, 0.5)
        assert daemon.stop() == 0


@pytest.mark.integration
def test_the_heartbeat_check_names_a_full_volume_and_a_read_only_one(small_volume: Path) -> None:
    path = small_volume / heartbeat.FILE_NAME
    heartbeat.Heartbeat(path, ticking(last_turn=999.0).view, clock=lambda: 1000.0).write()
    fill(small_volume)
    healthy, reason = heartbeat.check(path, now=1030.0)
    assert not healthy
    assert reason.startswith("heartbeat is 30s old (written every 5s): state_dir ")
    assert "(No space left on device, 0 bytes free): the volume is full" in reason
    (small_volume / "ballast").unlink()
    healthy, reason = heartbeat.check(path, now=1030.0)
    assert (healthy, reason) == (
        False,
        "heartbeat is 30s old (written every 5s): poolwatch is stuck",
    )
    subprocess.run(["mount", "-o", "remount,ro", str(small_volume)], check=True)
    healthy, reason = heartbeat.check(path, now=1030.0)
    assert "(Read-only file system" in reason
    assert "mount it read-write" in reason


# --- queue_dropped names the ids -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_queue_dropped_names_every_id_it_dropped(tmp_path: Path) -> None:
    """Reproduced: "queue_dropped count=1": which event a receiver will never get was unsaid."""
    clock = Clock()
    queue = DurableQueue(tmp_path / "q.sqlite3", "test", max_items=3, max_age=50, clock=clock)
    await queue.open()
    with capture_logs() as logs:
        for n in range(4):
            await queue.put(f"id{n}", b"{}")
        clock.now += 60
        await queue.put("late", b"{}")
        assert await queue.expire() == 2
    dropped = [(e["reason"], e["count"], e["ids"]) for e in logs if e["event"] == "queue_dropped"]
    assert dropped == [
        ("max_queue", 1, ["id0"]),
        ("max_queue", 1, ["id1"]),
        ("max_age", 2, ["id2", "id3"]),
    ]
    assert queue.dropped == 4
    head = await queue.head()
    assert head is not None
    assert head.key == "late"
    await queue.close()


async def test_a_large_drop_is_named_in_bounded_lines(tmp_path: Path) -> None:
    clock = Clock()
    count = 2 * DROPPED_IDS_PER_LINE + 50
    queue = DurableQueue(tmp_path / "q.sqlite3", "test", max_items=10**6, max_age=50, clock=clock)
    await queue.open()
    for n in range(count):
        await queue.put(f"id{n:04d}", b"{}")
    clock.now += 60
    with capture_logs() as logs:
        assert await queue.expire() == count
    lines = [e for e in logs if e["event"] == "queue_dropped"]
    assert [len(line["ids"]) for line in lines] == [100, 100, 50]
    assert [line["count"] for line in lines] == [100, 100, 50]
    assert [i for line in lines for i in line["ids"]] == [f"id{n:04d}" for n in range(count)]
    await queue.close()


# --- a second SIGTERM ----------------------------------------------------------------------------


def caught_signals(pid: int) -> int:
    """The mask of signals the process catches (/proc/<pid>/status SigCgt)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigCgt")


def test_after_the_first_sigterm_a_second_one_always_ends_poolwatch_by_that_signal() -> None:
    """Reproduced: a second SIGTERM just after the stop was swallowed and poolwatch exited 0
    (the loop that read it was already gone), or exited 3 during the stop. Now, from the first
    signal on, SIGTERM and SIGINT have their default meaning: the status is SIGTERM's (143)."""
    with Daemon({"POOLWATCH_INTERVAL": "1s", "POOLWATCH_HOST_STATS": "off"}) as daemon:
        daemon.wait_for(lambda line: line.get("event") == "started")
        pid = daemon.proc.pid
        assert caught_signals(pid) & (1 << (signal.SIGTERM - 1))
        daemon.proc.send_signal(signal.SIGTERM)
        stopping = daemon.wait_for(lambda line: line.get("event") == "stopping")
        # from here on, nothing in poolwatch catches SIGTERM or SIGINT any more
        mask = caught_signals(pid)
        assert not mask & (1 << (signal.SIGTERM - 1))
        assert not mask & (1 << (signal.SIGINT - 1))
        assert stopping["again"] == "a second signal ends poolwatch at once"
    codes = []
    for delay in (0.0, 0.001, 0.002, 0.005, 0.01):
        with Daemon({"POOLWATCH_INTERVAL": "1s", "POOLWATCH_HOST_STATS": "off"}) as daemon:
            daemon.wait_for(lambda line: line.get("event") == "started")
            daemon.proc.send_signal(signal.SIGTERM)
            daemon.wait_for(lambda line: line.get("event") == "stopped")
            time.sleep(delay)  # a sweep of when the second signal lands, not a wait for a state
            state = Path(f"/proc/{daemon.proc.pid}/stat").read_text().split(") ")[1][0]
            daemon.proc.send_signal(signal.SIGTERM)
            code = daemon.proc.wait(timeout=10)
            if state != "Z":  # still alive when it was sent: it must have ended by it
                codes.append(code)
    assert codes
    assert set(codes) == {-signal.SIGTERM}, codes


def test_a_second_sigterm_during_a_long_stop_ends_it_at_once(tmp_path: Path) -> None:
    """A webhook that never answers holds the stop for shutdown_timeout; the second SIGTERM
    ends it then and there, by the signal."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, never answers
        port = silent.getsockname()[1]
        config = tmp_path / "poolwatch.yaml"
        config.write_text(
            json.dumps(
                {
                    "interval": "200ms",
                    "shutdown_timeout": "30s",
                    "host": {"rules": {"cpu_percent": {"warning": 0, "critical": None}}},
                    "webhooks": [
                        {"name": "audit", "url": f"http://127.0.0.1:{port}/x", "timeout": "60s"}
                    ],
                }
            )
        )
        with Daemon({"POOLWATCH_CONFIG": str(config)}) as daemon:
            daemon.wait_for(lambda line: line.get("alert") == "HighCPUUsage")
            daemon.proc.send_signal(signal.SIGTERM)
            daemon.wait_for(lambda line: line.get("event") == "stopping")
            assert daemon.proc.poll() is None  # the webhook holds the stop
            daemon.proc.send_signal(signal.SIGTERM)
            # within 10 s, where the stop would have waited 30 for the webhook
            assert daemon.proc.wait(timeout=10) == -signal.SIGTERM
