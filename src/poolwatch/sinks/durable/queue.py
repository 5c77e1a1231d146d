"""A durable, bounded, ordered queue of payloads for one sink: the write-ahead half of delivery.

Why sqlite (WAL, `synchronous=FULL`) rather than an fsync'd append log: an item must leave the
queue only after the receiver's 2xx, and a receiver's 4xx moves it to a dead-letter table. With a
log both need a second file of tombstones, compaction and a torn-tail repair after `kill -9`;
sqlite gives them as one atomic transaction each, survives a torn write by design, and is in the
standard library. WAL lets a reader (an operator's `sqlite3`, a test) look while poolwatch writes.

Why `synchronous=FULL`: in WAL mode NORMAL already survives a killed process, but a power cut may
roll back the last commits, i.e. lose events `send` has acknowledged. FULL fsyncs the WAL on every
commit. Events are rare (state changes and reminders, not samples), so one fsync each is cheap.

The footprint is bounded: the WAL is checkpointed every `_CHECKPOINT_PAGES` pages and cut back to
`_WAL_LIMIT` bytes (`journal_size_limit`), and truncated to nothing whenever the queue drains, so
a small state volume holds the queue itself plus well under 1 MiB (docs/sinks/webhook.md, "Queue
location and bounds", gives the space per event).

A queue file that is damaged (not a database, malformed) is moved aside as
`<file>.damaged-<time>` with an error line, what can still be read from it is queued again, and a
fresh queue goes on: the daemon keeps monitoring. A queue file deleted while poolwatch runs is
noticed at the next operation and recreated, with an error line.

All sqlite calls run on one worker thread per queue (the connection lives there), each awaited
under `io_timeout`, so a slow disk never stalls the event loop. An exclusive `flock` on
`<file>.lock` keeps a second poolwatch from delivering the same queue twice; the kernel drops it
when the process dies, even by `kill -9`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from poolwatch.logs import get_logger
from poolwatch.statefiles import open_private, own_dir, private_file

_T = TypeVar("_T")

_WAL_LIMIT = 64 * 1024
"""`journal_size_limit`: what a checkpointed WAL is cut back to."""
_CHECKPOINT_PAGES = 32
"""`wal_autocheckpoint`: pages (4 KiB each) of WAL between automatic checkpoints."""

SNIPPET_BYTES = 512
"""How much of a rejecting response's body the dead-letter table keeps."""
DROPPED_IDS_PER_LINE = 100
"""How many dropped items one `queue_dropped` line names; more take more lines (a long outage
can drop thousands, and one line must stay a line)."""
DEAD_LETTER_KEEP = 10000
"""Dead letters kept, newest first; older ones are deleted with an error line saying how many."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    key     TEXT NOT NULL,
    body    BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq       INTEGER PRIMARY KEY,
    key       TEXT NOT NULL,
    body      BLOB NOT NULL,
    created   REAL NOT NULL,
    failed_at REAL NOT NULL,
    status    INTEGER,
    reason    TEXT NOT NULL,
    response  TEXT NOT NULL
);
"""


class QueueError(Exception):
    """The queue cannot be used (state_dir not writable, locked by another process, ...)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One queued payload. `key` is its identity across retries (the event id for webhooks)."""

    seq: int
    key: str
    body: bytes
    created: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: str
    body: bytes
    status: int | None
    reason: str
    response: str
    failed_at: float


class DurableQueue:
    """FIFO on disk: `put` is durable when it returns; `remove` only after delivery."""

    def __init__(
        self,
        path: Path,
        name: str,
        *,
        max_items: int,
        max_age: float,
        io_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.name = name
        self.max_items = max_items
        self.max_age = max_age
        self.io_timeout = io_timeout
        self.clock = clock
        self.depth = 0
        self.oldest: float | None = None
        self.dropped = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"queue-{name}")
        self._db: sqlite3.Connection | None = None
        self._inode: int | None = None
        self._lock_fd: int | None = None
        self._log = get_logger(sink=name)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        await self._run(self._open)
        self._log.info("queue_opened", path=str(self.path), depth=self.depth)
        await self.expire()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._run(self._close)
        self._executor.shutdown(wait=False)

    # --- operations --------------------------------------------------------------------------

    async def put(self, key: str, body: bytes) -> None:
        """Store one payload; when the cap is hit the oldest go first, logged at error level."""
        dropped = await self._run(self._put, key, body)
        if dropped:
            self._dropped(dropped, "max_queue")

    async def head(self) -> Item | None:
        """The oldest payload, without removing it."""
        return await self._run(self._head)

    async def remove(self, item: Item) -> None:
        await self._run(self._remove, item.seq)

    async def dead_letter(self, item: Item, status: int | None, reason: str, response: str) -> None:
        """Move `item` out of the way of the ones behind it, keeping why it was refused."""
        trimmed = await self._run(self._dead_letter, item, status, reason, response)
        if trimmed:
            self._log.error("dead_letters_trimmed", count=trimmed, keep=DEAD_LETTER_KEEP)

    async def expire(self) -> int:
        """Drop what is older than `max_age` (oldest first); return how many."""
        dropped = await self._run(self._expire)
        if dropped:
            self._dropped(dropped, "max_age")
        return len(dropped)

    async def dead_letters(self) -> list[DeadLetter]:
        return await self._run(self._dead_letters)

    def oldest_age(self) -> float | None:
        return None if self.oldest is None else max(0.0, self.clock() - self.oldest)

    # --- plumbing ----------------------------------------------------------------------------

    def _dropped(self, keys: list[str], reason: str) -> None:
        """One error line per `DROPPED_IDS_PER_LINE` dropped items, naming each by its key (the
        event id: a receiver can tell which events it will never get)."""
        self.dropped += len(keys)
        for start in range(0, len(keys), DROPPED_IDS_PER_LINE):
            ids = keys[start : start + DROPPED_IDS_PER_LINE]
            self._log.error(
                "queue_dropped",
                count=len(ids),
                ids=ids,
                reason=reason,
                max_queue=self.max_items,
                max_age_seconds=self.max_age,
                depth=self.depth,
            )

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.io_timeout):
            return await loop.run_in_executor(self._executor, self._guarded, func, *args)

    def _guarded(self, func: Callable[..., _T], *args: Any) -> _T:
        """`func` on the queue's thread; a file found damaged mid-run is recovered, then `func`
        runs once more on the fresh queue."""
        try:
            return func(*args)
        except sqlite3.DatabaseError as exc:
            if self._db is None or not _damaged(exc):
                raise
            self._recover(exc)
            return func(*args)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise QueueError(f"queue {self.name} is not open")
        return self._db

    def _open(self) -> None:
        try:
            own_dir(self.path.parent)
            lock_fd = open_private(Path(f"{self.path}.lock"), os.O_RDWR)
        except OSError as exc:
            raise QueueError(f"cannot create queue {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise QueueError(f"queue {self.path} is in use by another poolwatch") from None
        self._lock_fd = lock_fd
        try:
            self._connect()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                self._close()
                raise QueueError(f"cannot open queue {self.path}: {exc}") from None
            self._recover(exc)
        except sqlite3.Error as exc:
            self._close()
            raise QueueError(f"cannot open queue {self.path}: {exc}") from None

    def _connect(self) -> None:
        try:
            private_file(self.path)  # before sqlite: its -wal and -shm take this file's mode
        except OSError as exc:
            raise sqlite3.OperationalError(f"cannot create {self.path}: {exc.strerror}") from None
        db = sqlite3.connect(self.path, timeout=self.io_timeout, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
            db.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM queue").fetchone()  # reads a damaged file's pages
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
        self._inode = os.stat(self.path).st_ino
        self._refresh()

    def _recover(self, exc: BaseException) -> None:
        """Move a damaged file aside, start a fresh queue, and queue again what can be read."""
        if self._db is not None:
            self._db.close()
            self._db = None
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(self.clock())}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        salvaged = _salvage(aside)
        self._connect()
        db = self._conn()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO queue (key, body, created) VALUES (?, ?, ?)", salvaged)
        self._refresh()
        self._log.error(
            "queue_damaged",
            path=str(self.path),
            moved_to=str(aside),
            requeued=len(salvaged),
            error=str(exc),
        )

    def _check_file(self) -> None:
        """Notice a queue file deleted (or replaced) under a running poolwatch: recreate it."""
        try:
            inode: int | None = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if inode == self._inode:
            return
        if self._db is not None:
            self._db.close()
            self._db = None
        self._connect()
        self._log.error("queue_file_replaced", path=str(self.path), depth=self.depth)

    def _close(self) -> None:
        self._inode = None
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _refresh(self) -> None:
        depth, oldest = self._conn().execute("SELECT count(*), min(created) FROM queue").fetchone()
        self.depth, self.oldest = int(depth), oldest

    def _put(self, key: str, body: bytes) -> list[str]:
        self._check_file()
        db = self._conn()
        dropped: list[str] = []
        with db:  # one transaction: insert and trim commit together
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO queue (key, body, created) VALUES (?, ?, ?)", (key, body, self.clock())
            )
            excess = db.execute(
                "SELECT max(count(*) - ?, 0) FROM queue", (self.max_items,)
            ).fetchone()[0]
            if excess:
                rows = db.execute(
                    "SELECT seq, key FROM queue ORDER BY seq LIMIT ?", (excess,)
                ).fetchall()
                db.executemany("DELETE FROM queue WHERE seq = ?", [(row[0],) for row in rows])
                dropped = [str(row[1]) for row in rows]
        self._refresh()
        return dropped

    def _head(self) -> Item | None:
        self._check_file()
        row = (
            self._conn()
            .execute("SELECT seq, key, body, created FROM queue ORDER BY seq LIMIT 1")
            .fetchone()
        )
        return None if row is None else Item(row[0], row[1], bytes(row[2]), row[3])

    def _remove(self, seq: int) -> None:
        db = self._conn()
        db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
        self._refresh()
        if self.depth == 0:  # drained: give the WAL's space back
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _dead_letter(self, item: Item, status: int | None, reason: str, response: str) -> int:
        db = self._conn()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT OR REPLACE INTO dead_letter"
                " (seq, key, body, created, failed_at, status, reason, response)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.seq,
                    item.key,
                    item.body,
                    item.created,
                    self.clock(),
                    status,
                    reason,
                    response[:SNIPPET_BYTES],
                ),
            )
            db.execute("DELETE FROM queue WHERE seq = ?", (item.seq,))
            trimmed = db.execute(
                "DELETE FROM dead_letter WHERE seq NOT IN"
                " (SELECT seq FROM dead_letter ORDER BY seq DESC LIMIT ?)",
                (DEAD_LETTER_KEEP,),
            ).rowcount
        self._refresh()
        return int(trimmed)

    def _expire(self) -> list[str]:
        cutoff = self.clock() - self.max_age
        db = self._conn()
        with db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                "SELECT seq, key FROM queue WHERE created < ? ORDER BY seq", (cutoff,)
            ).fetchall()
            db.executemany("DELETE FROM queue WHERE seq = ?", [(row[0],) for row in rows])
        self._refresh()
        return [str(row[1]) for row in rows]

    def _dead_letters(self) -> list[DeadLetter]:
        rows = self._conn().execute(
            "SELECT key, body, status, reason, response, failed_at FROM dead_letter ORDER BY seq"
        )
        return [DeadLetter(r[0], bytes(r[1]), r[2], r[3], r[4], r[5]) for r in rows]


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _salvage(path: Path) -> list[tuple[str, bytes, float]]:
    """The rows of a damaged queue file that can still be read, in order; none if none can."""
    rows: list[tuple[str, bytes, float]] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return rows
    try:
        for row in db.execute("SELECT key, body, created FROM queue ORDER BY seq"):
            rows.append((str(row[0]), bytes(row[1]), float(row[2])))
    except sqlite3.Error:
        pass  # what was read before the damaged page is kept
    finally:
        db.close()
    return rows
