"""Loopback helpers shared by the fixtures."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port nobody listens on right now (bound and released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
