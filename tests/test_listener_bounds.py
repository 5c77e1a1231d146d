"""A slowloris against a real daemon's /metrics, under a lowered descriptor limit: the listener
serves a bounded number of clients, cuts the slow ones, keeps descriptors for the daemon's own
work (the silences file still opens), and every line it writes stays JSON."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from poolwatch.runtime.listener import reserve_for
from tests.daemon import BASE_ENV
from tests.eventually import eventually_sync
from tests.net import free_port

pytestmark = pytest.mark.integration

LIMIT = 96
"""The daemon's RLIMIT_NOFILE: low enough that the slow sockets alone would exhaust it."""
SLOW = 150
"""Slow clients: more than the daemon can hold, fewer than it may keep waiting in its backlog."""
DEADLINE = 90.0


def lines_of(path: Path) -> list[dict[str, Any]]:
    """Every line of `path` as JSON (a line that is not JSON fails the test, naming it)."""
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{path.name} has a line that is not JSON: {line[:300]!r}")
    return found


def descriptors(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Slowloris:
    """`count` sockets that send a request one byte a second, until the server cuts them."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.socks = []
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            self.socks.append(sock)
        self.cut: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> Slowloris:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self.socks:
            sock.close()

    def _trickle(self) -> None:
        while not self._stop.is_set():
            for index, sock in enumerate(self.socks):
                if index in self.cut:
                    continue
                try:
                    if sock.recv(1, socket.MSG_DONTWAIT) == b"":
                        self.cut.add(index)  # the server closed it
                        continue
                except BlockingIOError:
                    pass
                except OSError as exc:
                    if exc.errno != errno.ENOTCONN:  # not connected yet: still waiting
                        self.cut.add(index)
                        continue
                with contextlib.suppress(OSError):
                    sock.send(b"G")
            self._stop.wait(1.0)

    @property
    def all_cut(self) -> bool:
        return len(self.cut) == len(self.socks)


@pytest.fixture
def own_limit() -> Iterator[None]:
    """This process holds the slow sockets: it needs more descriptors than the daemon gets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def lowered() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, hard))


@pytest.mark.timeout(240)
def test_a_slowloris_neither_exhausts_descriptors_nor_breaks_json(
    tmp_path: Path, own_limit: None
) -> None:
    port = free_port()
    state = tmp_path / "state"
    env = {
        **BASE_ENV,
        "POOLWATCH_STATE_DIR": str(state),
        "POOLWATCH_LISTEN": f"127.0.0.1:{port}",
        "POOLWATCH_INTERVAL": "500ms",
        "POOLWATCH_LOG_FORMAT": "json",
        "CPU_WARNING": "off",
        "CPU_CRITICAL": "off",
        "MEMORY_WARNING": "off",
        "MEMORY_CRITICAL": "off",
    }
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "poolwatch"],
            env=env,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=lowered,  # only setrlimit, before exec
        )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        eventually_sync(
            lambda: any(x["event"] == "started" for x in lines_of(out)), "started", DEADLINE
        )
        assert httpx.get(url, timeout=5).status_code == 200
        peak = 0
        with Slowloris(port, SLOW) as slow:
            # the daemon's own work goes on: a silence added now is read from its file and
            # announced, while the slow clients hold every connection the listener allows
            added = subprocess.run(
                [sys.executable, "-m", "poolwatch", "silence", "add", "--match", "alert=Nope",
                 "--for", "1h", "--comment", "during a slowloris"],
                env=env, capture_output=True, text=True, timeout=60, check=True,
            )  # fmt: skip
            ident = added.stdout.strip()

            def announced() -> bool:
                nonlocal peak
                peak = max(peak, descriptors(daemon.pid))
                return any(
                    x["event"] == "silence_created" and x.get("silence") == ident
                    for x in lines_of(out)
                )

            eventually_sync(announced, "the silence added during the slowloris announced", DEADLINE)

            def cut() -> bool:
                nonlocal peak
                peak = max(peak, descriptors(daemon.pid))
                return slow.all_cut

            eventually_sync(cut, lambda: f"every slow client cut (cut: {len(slow.cut)})", DEADLINE)
        # the slow ones are gone: a fresh client is answered
        assert httpx.get(url, timeout=5).status_code == 200
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
    logged = lines_of(out) + lines_of(err)  # every line JSON, on both streams
    events = [x["event"] for x in logged]
    assert "silences_unreadable" not in events
    assert "listener_accept_failed" not in events  # never out of descriptors
    assert "asyncio_error" not in events
    assert "listener_held_back" in events  # the reserve was what held the clients back
    assert peak < LIMIT, peak
    assert peak <= LIMIT - reserve_for(LIMIT) + 8, peak  # a few transient ones of its own
