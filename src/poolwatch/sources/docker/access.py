"""Where the engine is, and why it cannot be used: the words an operator reads in the info line
of `enabled: auto` and in DockerDown.

No docker SDK here: `enabled: auto` decides from the environment and the file system alone, so
a host without Docker never imports the SDK.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_SOCKET = Path("/var/run/docker.sock")
SOCKET_ACCESS_DOCS = 'docs/sources/docker.md, "Socket access for a non-root user"'


def socket_path(environment: Mapping[str, str]) -> Path | None:
    """The unix socket the SDK will use (DOCKER_HOST's, else the default); None for TCP/SSH."""
    host = environment.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    for scheme in ("unix://", "http+unix://"):
        if host.startswith(scheme):
            return Path(host.removeprefix(scheme))
    return None


def absent(environment: Mapping[str, str]) -> str | None:
    """Why there is no engine to watch here, or None when there is something to try.

    Only the absence of both DOCKER_HOST and the socket means "no Docker": a socket that is
    there but refuses poolwatch is a problem to report, not a reason to stay silent.
    """
    if environment.get("DOCKER_HOST"):
        return None
    if DEFAULT_SOCKET.exists():
        return None
    return f"no DOCKER_HOST and no socket at {DEFAULT_SOCKET}"


def _denied(exc: BaseException, depth: int = 0) -> bool:
    """Is a permission error somewhere in `exc`? requests and urllib3 wrap the OSError in
    their own exceptions' args, not always as `__cause__`."""
    if depth > 6:
        return False
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        return True
    inner = [exc.__cause__, exc.__context__, *exc.args]
    return any(isinstance(e, BaseException) and _denied(e, depth + 1) for e in inner)


def denied_reason(exc: BaseException, environment: Mapping[str, str]) -> str | None:
    """ "permission denied ..." with what to do, when `exc` is the socket refusing this user."""
    if not _denied(exc):
        return None
    path = socket_path(environment)
    if path is None:
        return f"permission denied: see {SOCKET_ACCESS_DOCS}"
    try:
        group = f"group {path.stat().st_gid}"
    except OSError:
        group = "group"
    return (
        f"permission denied on {path} (uid {os.getuid()}): add the socket's {group} "
        f"to poolwatch's user, see {SOCKET_ACCESS_DOCS}"
    )
