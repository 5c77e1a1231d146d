"""The watched host's name: the owner of the host source's readings and of every event."""

from __future__ import annotations

import socket
from pathlib import Path


def host_name(rootfs: Path) -> str:
    """The watched host's name. In a container with the host mounted at `rootfs`, the host's
    `/etc/hostname` (the container's own name is its id, new at every upgrade)."""
    if rootfs != Path("/"):
        try:
            name = (rootfs / "etc" / "hostname").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        if name:
            return name
    return socket.gethostname()
