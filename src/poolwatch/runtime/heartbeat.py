"""Liveness of poolwatch itself: the daemon writes a heartbeat file, `--healthcheck` judges it.

This answers "is poolwatch working?", never "is the stack healthy?" (that is `--once`): a busy or
down PostgreSQL makes events, not an unhealthy poolwatch, so an orchestrator never restarts the
monitor because of what it monitors.

The file is `{state_dir}/heartbeat`, JSON, replaced atomically every `period` seconds:

    {"schema": "poolwatch.runtime.heartbeat/v1", "time": 1732700000.5, "pid": 1, "period": 5.0,
     "collectors": {"host:web1": {"last_turn": 1732699998.1, "stale_after": 35.0}}}

A collector's loop *turns* when one poll has been collected, evaluated and handed to every sink.
Healthy means: the file is younger than three periods (the event loop runs), and every collector
turned within its `stale_after` (three intervals plus its timeout: three missed turns). A sink
whose `send` blocks stalls its collector's loop, so a stuck sink shows here too; a webhook
receiver that is down does not (its events wait in the durable queue, which is the design).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.runtime.view import Owner, RuntimeView
from poolwatch.statefiles import open_private, private_dir

SCHEMA = "poolwatch.runtime.heartbeat/v1"
FILE_NAME = "heartbeat"
PERIOD = 5.0
"""Seconds between writes; the file counts as stale after three."""

MISSED_TURNS = 3
LOCK_NAME = "poolwatch.lock"


class StateDirInUseError(Exception):
    """Another poolwatch daemon holds the state dir; `str()` is the one line to show."""


def claim(state_dir: Path) -> int | None:
    """Hold `{state_dir}/poolwatch.lock` for the daemon's life: only its holder writes (and
    removes) the heartbeat, so a second poolwatch refused at start can never delete the running
    one's heartbeat on its way out. Returns the lock's descriptor; None when the state dir
    cannot hold a lock file (unwritable: the heartbeat then says so, see `Heartbeat`)."""
    try:
        private_dir(state_dir)
        fd = open_private(state_dir / LOCK_NAME, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StateDirInUseError(
            f"state_dir {state_dir} is in use by another poolwatch (pid {holder}); "
            "give each daemon its own POOLWATCH_STATE_DIR"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def stale_after(owner: Owner) -> float:
    return MISSED_TURNS * owner.interval + owner.timeout


class Heartbeat:
    """Writes the heartbeat file from the runner's per-collector `last_turn` times."""

    def __init__(
        self,
        path: Path,
        view: RuntimeView,
        *,
        period: float = PERIOD,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.view = view
        """The runner's current collectors and turns (a reload may change the collectors)."""
        self.period = period
        self.clock = clock
        self.started = clock()
        self.unwritable_since: float | None = None
        """When writing the file began to fail (None while it works): past three periods,
        in-process liveness (/healthz) says unhealthy too, the same rule as `--healthcheck`."""
        self.last_error: str | None = None

    def snapshot(self) -> dict[str, Any]:
        last_turn = self.view.stats().last_turn
        return {
            "schema": SCHEMA,
            "time": self.clock(),
            "pid": os.getpid(),
            "period": self.period,
            "collectors": {
                owner.name: {
                    # not turned yet: the clock starts at start-up, so a first poll that hangs
                    # is caught like any later one
                    "last_turn": last_turn.get(owner.name, self.started),
                    "stale_after": stale_after(owner),
                }
                for owner in self.view.owners()
            },
        }

    def write(self) -> None:
        """Replace the file atomically; an unwritable state dir is logged once, then retried."""
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        try:
            private_dir(self.path.parent)
            fd = open_private(temporary, os.O_WRONLY | os.O_TRUNC)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(json.dumps(self.snapshot()))
            os.replace(temporary, self.path)
        except OSError as exc:
            self.last_error = exc.strerror or str(exc)
            if self.unwritable_since is None:
                self.unwritable_since = self.clock()
                get_logger().error(
                    "heartbeat_unwritable", path=str(self.path), reason=self.last_error
                )
        else:
            self.unwritable_since = self.last_error = None

    def failing(self, now: float) -> str | None:
        """Why the heartbeat counts as stale in-process: unwritable for three periods."""
        since = self.unwritable_since
        if since is None or now - since <= MISSED_TURNS * self.period:
            return None
        return f"heartbeat {self.path} unwritable for {now - since:.0f}s: {self.last_error}"

    def remove(self) -> None:
        """A stopped daemon is not alive: take the file away."""
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)

    async def run(self) -> None:
        """Write every `period` until cancelled."""
        while True:
            self.write()
            await asyncio.sleep(self.period)


PROBE_BYTES = 4096
"""What `unwritable` writes to find out: one block, as a heartbeat needs."""

_FIXES = {
    errno.ENOSPC: "the volume is full; free space on it",
    errno.EDQUOT: "the disk quota is used up; free space or raise the quota",
    errno.EROFS: "it is mounted read-only; mount it read-write",
    errno.EACCES: "poolwatch's user may not write there; give it the directory",
    errno.EPERM: "poolwatch's user may not write there; give it the directory",
}


def unwritable(directory: Path) -> str | None:
    """Why nothing can be written in `directory` (the state dir), found by writing a block
    there as the daemon would; None when that works, or when there is no such directory."""
    probe = directory / f".healthcheck-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                probe.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        fix = _FIXES.get(exc.errno or 0, "see the error")
        free = ""
        with contextlib.suppress(OSError):
            stats = os.statvfs(directory)
            free = f", {stats.f_bavail * stats.f_frsize} bytes free"
        return (
            f"state_dir {directory} cannot be written ({exc.strerror}{free}): {fix}. The daemon "
            "may still be polling, but it can neither prove it is alive nor queue events"
        )
    return None


def check(path: Path, now: float | None = None) -> tuple[bool, str]:
    """(healthy, one line saying why) for the heartbeat file at `path`."""
    now = time.time() if now is None else now
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        written = float(data["time"])
        period = float(data["period"])
        collectors = {
            str(owner): (float(info["last_turn"]), float(info["stale_after"]))
            for owner, info in data["collectors"].items()
        }
    except FileNotFoundError:
        trouble = unwritable(path.parent)
        if trouble:
            return False, f"no heartbeat at {path}: {trouble}"
        return False, f"no heartbeat at {path}: the daemon is not running (or cannot write there)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return False, f"heartbeat {path} is unreadable: {one_line(exc, named=True)}"
    age = now - written
    stale = f"heartbeat is {age:.0f}s old (written every {period:g}s)"
    late = [
        f"{owner} last completed a poll {now - turned:.0f}s ago (limit {limit:g}s)"
        for owner, (turned, limit) in sorted(collectors.items())
        if now - turned > limit
    ]
    if (age > MISSED_TURNS * period or late) and age > period:
        # a daemon that cannot write is not a stuck one (and the turns in a file it cannot
        # replace are old news): say what is wrong, so that nobody restarts a monitor for a
        # full volume a restart cannot empty
        trouble = unwritable(path.parent)
        if trouble:
            return False, f"{stale}: {trouble}"
    if age > MISSED_TURNS * period:
        return False, f"{stale}: poolwatch is stuck"
    if late:
        return False, "; ".join(late)
    return True, f"alive: heartbeat {age:.0f}s old, {len(collectors)} collector(s) turning"
