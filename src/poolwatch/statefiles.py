"""What poolwatch keeps in its state dir is its own: files 0600, in directories 0700.

The delivery queues hold whole event bodies (the holders of a pool: user names, addresses,
query text), the silence store who muted what and why, the heartbeat and lock files the pid;
none of it is for other local users. So every file poolwatch creates there is 0600 and every
directory 0700, exactly, whatever the umask; a file or directory of poolwatch's own found more
open (written by an older version) is tightened when it is opened. sqlite gives a database's
`-wal` and `-shm` files the mode of the database file, so creating that one 0600 before sqlite
opens it is what keeps those private too.

A directory the operator made (the state dir itself, when it already exists) is left as it is:
poolwatch cannot tell a dedicated volume from `/var/lib`, so the daemon only says so at start
(`state_dir_open`, see `open_mode`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create `path` and its missing parents, each 0700 (mkdir's mode is cut by the umask, so
    each is set afterwards)."""
    missing: list[Path] = []
    node = path
    while not node.exists() and node.parent != node:
        missing.append(node)
        node = node.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile (another poolwatch command): not ours to change
        os.chmod(directory, DIR_MODE)


def own_dir(path: Path) -> None:
    """A directory only poolwatch uses (`queues/`): created 0700, or tightened to 0700."""
    private_dir(path)
    _tighten(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 when it is missing, else tighten it (and a sqlite
    database's `-wal` and `-shm` beside it) to 0600. Call before sqlite opens a database."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        for suffix in ("", "-wal", "-shm"):
            _tighten(Path(f"{path}{suffix}"), FILE_MODE)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def open_private(path: Path, flags: int) -> int:
    """`os.open(path, flags | O_CREAT)` of a file that is 0600 whether it is new or old."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def open_mode(path: Path) -> str | None:
    """The mode of the directory `path` (as `0755`) when others than its owner may enter or
    list it; None when it is private or cannot be read."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return f"{mode:04o}" if mode & 0o077 else None


def _tighten(path: Path, mode: int) -> None:
    """Best effort: a file poolwatch does not own, or a read-only mount, is left alone."""
    with contextlib.suppress(OSError):
        info = os.stat(path, follow_symlinks=False)
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & ~mode:
            os.chmod(path, mode)
