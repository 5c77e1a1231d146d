"""Every SHOW is read under a cap: a wrong or hostile "PgBouncer" that answers with rows without
end is given up on at the cap, in its words, and memory stays where it was.

The hostile console is `tests.hostile.Peer` speaking the PostgreSQL protocol (v3) just far
enough: a real PgBouncer cannot be made to answer like that, so a small TCP server stands in for
the hostile endpoint. Each run is a fresh `--once` process, so its peak memory is its own.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
from typing import Any

import pytest
from tests.daemon import BASE_ENV
from tests.hostile import MB, Run, measured, peer

from poolwatch.sources.pgbouncer.collector import SHOW_MAX_ROWS

pytestmark = pytest.mark.integration

FLOOD_ROWS = 4_000_000
"""How many rows the hostile answer sends at most: far over the cap, bounded for the test."""


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def row_description(*names: str) -> bytes:
    fields = b"".join(
        name.encode() + b"\0" + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0) for name in names
    )
    return message(b"T", struct.pack("!h", len(names)) + fields)


def data_row(*values: str) -> bytes:
    cells = b"".join(struct.pack("!i", len(v.encode())) + v.encode() for v in values)
    return message(b"D", struct.pack("!h", len(values)) + cells)


READY = message(b"Z", b"I")


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("hung up")
        data += chunk
    return data


def console(hostile: str | None) -> Any:
    """A "PgBouncer admin console": trust authentication, empty answers to every SHOW but
    `hostile`, which gets rows (`list`, `items`) until the reader hangs up."""

    def serve(sock: socket.socket) -> None:
        while True:  # SSLRequest / GSSENCRequest: refused; then the startup message
            (length,) = struct.unpack("!I", recv_exactly(sock, 4))
            body = recv_exactly(sock, length - 4)
            if struct.unpack("!I", body[:4])[0] in (80877103, 80877104):
                sock.sendall(b"N")
                continue
            break
        sock.sendall(
            message(b"R", struct.pack("!I", 0))
            + message(b"S", b"client_encoding\0UTF8\0")
            + message(b"S", b"server_version\x001.24.1/bouncer\0")
            + message(b"K", struct.pack("!II", 1, 2))
            + READY
        )
        while True:
            kind = recv_exactly(sock, 1)
            (length,) = struct.unpack("!I", recv_exactly(sock, 4))
            query = recv_exactly(sock, length - 4).rstrip(b"\0").decode()
            if kind == b"X":
                return
            if query != hostile:
                sock.sendall(row_description("list", "items") + message(b"C", b"SHOW\0") + READY)
                continue
            block = data_row("used_clients", "1") * 10_000
            sock.sendall(row_description("list", "items"))
            for _ in range(FLOOD_ROWS // 10_000):
                sock.sendall(block)
            sock.sendall(message(b"C", b"SHOW\0") + READY)

    return peer(serve)


def once(port: int, tmp: str) -> Run:
    env = {
        **BASE_ENV,
        "POOLWATCH_STATE_DIR": tmp,
        "POOLWATCH_HOST_STATS": "off",
        "POOLWATCH_LOG_FORMAT": "json",
        "POOLWATCH_PGBOUNCER_DSN": (
            f"postgresql://poolwatch@127.0.0.1:{port}/pgbouncer?sslmode=disable&gssencmode=disable"
        ),
    }
    return measured([sys.executable, "-m", "poolwatch", "--once", "--format", "json"], env)


def up(run: Run) -> dict[str, Any]:
    found = [json.loads(line) for line in run.stdout.splitlines()]
    return next(r for r in found if r["check"] == "up")


def test_a_show_without_end_is_given_up_at_the_cap_and_memory_stays_put(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with console(None) as fake:
        baseline = once(fake.port, str(tmp_path_factory.mktemp("state")))
    assert up(baseline)["value"] == 1, baseline.stdout + baseline.stderr
    with console("SHOW LISTS") as fake:
        run = once(fake.port, str(tmp_path_factory.mktemp("state")))
    said = up(run)["message"]
    assert up(run)["value"] == 0
    assert f"SHOW LISTS answered more than poolwatch's cap of {SHOW_MAX_ROWS} rows" in said, said
    assert run.peak_rss < baseline.peak_rss + 50 * MB, (baseline.peak_rss, run.peak_rss)
    assert fake.connections == 1  # given up, not asked again at once
