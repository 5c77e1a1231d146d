"""One state dir, one daemon, one rule for "alive": a second poolwatch refused at start leaves the
running one's heartbeat alone, and an unwritable state dir is unhealthy for `--healthcheck` and
`/healthz` alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.daemon import BASE_ENV, Daemon, healthcheck
from tests.eventually import eventually_sync
from tests.net import free_port


def test_a_second_daemon_is_refused_and_leaves_the_heartbeat_alone(tmp_path: Path) -> None:
    """Reproduced: the refused second poolwatch deleted the running one's heartbeat on its way
    out, so `--healthcheck` called a live daemon dead."""
    env = {"POOLWATCH_STATE_DIR": str(tmp_path), "POOLWATCH_INTERVAL": "1s"}
    with Daemon(env) as first:
        first.wait_for(lambda line: line.get("event") == "started")
        heartbeat = tmp_path / "heartbeat"
        eventually_sync(heartbeat.exists, "the first heartbeat written", 20)
        assert healthcheck(tmp_path).returncode == 0
        second = subprocess.run(
            [sys.executable, "-m", "poolwatch"],
            env={**BASE_ENV, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert second.returncode == 3
        assert f"state_dir {tmp_path} is in use by another poolwatch" in second.stderr
        assert heartbeat.exists()
        done = healthcheck(tmp_path)
        assert done.returncode == 0, done.stdout
        assert first.stop() == 0


@pytest.mark.integration
def test_an_unwritable_state_dir_is_unhealthy_everywhere(tmp_path: Path) -> None:
    """A read-only state dir (a real read-only mount: root ignores file modes): the daemon keeps
    monitoring, but it cannot prove it is alive, so `/healthz` says 503 exactly when
    `--healthcheck` says unhealthy (it used to say 200)."""
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(state)], check=True)
    try:
        port = free_port()
        env = {
            "POOLWATCH_STATE_DIR": str(state),
            "POOLWATCH_INTERVAL": "1s",
            "POOLWATCH_LISTEN": f"127.0.0.1:{port}",
        }
        with Daemon(env) as daemon:
            error = daemon.wait_for(lambda line: line.get("event") == "heartbeat_unwritable")
            assert error["level"] == "error"
            assert healthcheck(state).returncode == 1
            eventually_sync(  # three heartbeat periods of 5 s, and some
                lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 503,
                "/healthz unhealthy",
                40,
                0.5,
            )
            body = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
            assert "unwritable" in str(body)
            assert daemon.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)
