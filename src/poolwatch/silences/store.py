"""The silence store: `<state_dir>/silences.sqlite3`, shared by `poolwatch silence ...` and the
running daemon.

sqlite in WAL mode: every change is one `BEGIN IMMEDIATE` transaction, so any number of writers
(two operators at once, the daemon recording what it announced) serialise on sqlite's lock and
nothing is lost; readers never wait for a writer. The daemon reads the whole table (a handful of
rows) twice a second, which is how a change reaches it without a reload, and the file survives
restarts. Table `announced` records which audit notices the daemon has sent, so a restart does
not send them again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from poolwatch.core.matchers import Matcher
from poolwatch.core.mute import Mute
from poolwatch.statefiles import private_dir, private_file

FILE_NAME = "silences.sqlite3"
BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another's transaction (they take milliseconds)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS silences (
    id       TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts   REAL NOT NULL,
    ends     REAL NOT NULL,
    author   TEXT,
    comment  TEXT NOT NULL,
    created  REAL NOT NULL,
    expired  REAL
);
CREATE TABLE IF NOT EXISTS announced (
    key TEXT PRIMARY KEY,
    at  REAL NOT NULL
);
"""


class SilenceError(Exception):
    """A silence that cannot be found or changed; `str()` is the one line to show."""


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[str, ...]
    starts: datetime
    ends: datetime
    author: str | None
    comment: str
    created: datetime
    expired: datetime | None = None
    """When it was expired by hand, before `ends`."""

    @property
    def until(self) -> datetime:
        """When it stops muting: its end, or when it was expired."""
        return min(self.ends, self.expired) if self.expired else self.ends

    def state(self, now: datetime) -> str:
        if self.expired is not None and self.expired <= now:
            return "expired"
        if now >= self.ends:
            return "ended"
        return "active" if now >= self.starts else "pending"

    def mute(self) -> Mute:
        parsed = tuple(Matcher.parse(text) for text in self.matchers)
        return Mute(self.id, parsed, self.starts, self.until)


class SilenceStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME

    @contextlib.contextmanager
    def _db(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        private_dir(self.path.parent)
        private_file(self.path)  # before sqlite: its -wal and -shm take this file's mode
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def add(
        self,
        matchers: Sequence[Matcher],
        starts: datetime,
        ends: datetime,
        *,
        author: str | None,
        comment: str,
    ) -> Silence:
        silence = Silence(
            str(uuid.uuid4()),
            tuple(str(m) for m in matchers),
            starts,
            ends,
            author,
            comment,
            starts,
        )
        with self._db(write=True) as db:
            db.execute(
                "INSERT INTO silences (id, matchers, starts, ends, author, comment, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    silence.id,
                    json.dumps(list(silence.matchers)),
                    starts.timestamp(),
                    ends.timestamp(),
                    author,
                    comment,
                    starts.timestamp(),
                ),
            )
        return silence

    def expire(self, ident: str, now: datetime) -> Silence:
        """End a silence now; `ident` may be a unique prefix of its id."""
        with self._db(write=True) as db:
            rows = db.execute(
                "SELECT id FROM silences WHERE id LIKE ? || '%'", (ident.replace("%", ""),)
            ).fetchall()
            if len(rows) != 1 or not ident:
                why = "no silence has" if not rows else "more than one silence has"
                raise SilenceError(
                    f"silence {ident!r}: {why} that id (see `poolwatch silence list`)"
                )
            (full,) = rows[0]
            current = self._one(db, full)
            if current.state(now) in ("expired", "ended"):
                raise SilenceError(f"silence {full}: already {current.state(now)}")
            db.execute("UPDATE silences SET expired = ? WHERE id = ?", (now.timestamp(), full))
            return self._one(db, full)

    def all(self) -> list[Silence]:
        with self._db(write=False) as db:
            return list(self._rows(db.execute("SELECT * FROM silences ORDER BY created, id")))

    def announced(self, keys: Iterable[str]) -> set[str]:
        """Which of these audit notices were recorded as sent."""
        with self._db(write=False) as db:
            return {
                key
                for key in keys
                if db.execute("SELECT 1 FROM announced WHERE key = ?", (key,)).fetchone()
            }

    def claim(self, keys: Iterable[str], now: datetime) -> None:
        """Record these audit notices as sent."""
        with self._db(write=True) as db:
            db.executemany(
                "INSERT OR IGNORE INTO announced (key, at) VALUES (?, ?)",
                [(key, now.timestamp()) for key in keys],
            )

    def prune(self, before: datetime) -> int:
        """Forget silences that stopped muting before `before`, and old audit records."""
        cutoff = before.timestamp()
        with self._db(write=True) as db:
            gone = db.execute(
                "DELETE FROM silences WHERE min(ends, coalesce(expired, ends)) < ?", (cutoff,)
            ).rowcount
            db.execute("DELETE FROM announced WHERE at < ?", (cutoff,))
        return int(gone)

    def _one(self, db: sqlite3.Connection, ident: str) -> Silence:
        (silence,) = self._rows(db.execute("SELECT * FROM silences WHERE id = ?", (ident,)))
        return silence

    @staticmethod
    def _rows(cursor: sqlite3.Cursor) -> Iterator[Silence]:
        for ident, matchers, starts, ends, author, comment, created, expired in cursor:
            yield Silence(
                ident,
                tuple(json.loads(matchers)),
                _moment(starts),
                _moment(ends),
                author,
                comment,
                _moment(created),
                None if expired is None else _moment(expired),
            )
