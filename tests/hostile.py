"""Hostile peers and a memory meter, for the tests that prove every read from a watched system is
bounded.

`Peer` is a small TCP server on a loopback port that stands in for a wrong or hostile endpoint
(a "Redis", "Docker engine" or "PgBouncer" that announces gigabytes, or floods): no real server
can be made to answer like that, so these are the one place the tests talk to a fake. Each
connection is served by `handler(sock)` on a thread of its own; every socket has a timeout, so a
handler ends when poolwatch hangs up or stops reading.

`measured(argv, env)` runs a process to its end and returns its peak resident memory (the
kernel's `ru_maxrss` from `wait4`), which is what "memory stays bounded" means: not a time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MB = 1024 * 1024
FLOOD_CHUNK = b"x" * (1024 * 1024)


class Peer:
    """A loopback TCP server whose every connection runs `handler(sock)` on its own thread."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self.connections = 0

    def __enter__(self) -> Peer:
        self._accepting.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            sock.settimeout(5)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with sock, contextlib.suppress(OSError):
            self.handler(sock)


def flood(sock: socket.socket, total: int) -> None:
    """Send up to `total` bytes as fast as the reader takes them (ends when it hangs up)."""
    sent = 0
    while sent < total:
        sock.sendall(FLOOD_CHUNK)
        sent += len(FLOOD_CHUNK)


def read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    """Bytes up to and including `marker` (b"" when the peer hung up first)."""
    data = b""
    while marker not in data and len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    peak_rss: int
    """Bytes: the most resident memory the process ever had."""


def measured(argv: list[str], env: dict[str, str], timeout: float = 60) -> Run:
    """Run `argv` to its end; its exit code, output and peak resident memory."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss * 1024,
        )


@contextlib.contextmanager
def peer(handler: Callable[[socket.socket], None]) -> Iterator[Peer]:
    with Peer(handler) as server:
        yield server
