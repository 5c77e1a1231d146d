"""The daemon's side of muting: twice a second, the silences in the store and the maintenance
windows of the config become the runner's mutes, and what began or ended is announced.

Reading the store this often is how `poolwatch silence add|expire` reaches a running daemon
within a second without a reload (the store is a few rows; reads never wait for writers). Each
audit notice (`poolwatch.silence/v1`) is sent once: the store records which were sent, so a
restart does not repeat them, and a silence added while the daemon was down is announced when
it starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from poolwatch.core.model import now_utc, rfc3339
from poolwatch.core.mute import Mute
from poolwatch.core.notices import SilenceNotice
from poolwatch.core.reasons import one_line
from poolwatch.logs import get_logger
from poolwatch.silences.settings import MaintenanceWindow
from poolwatch.silences.store import FILE_NAME, Silence, SilenceStore

PERIOD = 0.5
"""Seconds between reads of the store: a change applies within one second."""
KEEP = timedelta(days=30)
"""Silences that ended longer ago than this are forgotten at start."""


def current_mutes(
    silences: Iterable[Silence], windows: Iterable[MaintenanceWindow], now: datetime
) -> list[Mute]:
    """Every silence not yet over, and every window open at `now`."""
    mutes = [s.mute() for s in silences if s.until > now]
    for window in windows:
        occurrence = window.schedule().occurrence_at(now)
        if occurrence is not None:
            mutes.append(Mute(window.id, window.parsed(), *occurrence))
    return mutes


def stored_silences(state_dir: Path) -> list[Silence]:
    """The silences of a state dir, read-only use (`--once`): none when there is no store."""
    if not (state_dir / FILE_NAME).exists():
        return []
    return SilenceStore(state_dir).all()


class Mutes(Protocol):
    """What muting needs of the pipeline: to take the mutes in force, and to announce."""

    async def set_mutes(self, mutes: Sequence[Mute]) -> None: ...

    async def announce(self, notice: SilenceNotice) -> None: ...


class MuteWatch:
    def __init__(
        self,
        store: SilenceStore,
        windows: Sequence[MaintenanceWindow],
        target: Mutes,
        host: str,
        *,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.store = store
        self._windows = list(windows)
        self._target = target
        self.host = host
        self.clock = clock
        self._silences: list[Silence] = []
        self._open: dict[str, tuple[MaintenanceWindow, datetime, datetime]] = {}
        self._announced: set[str] = set()
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger()

    async def start(self) -> None:
        """Forget long-ended silences and apply the mutes once: before the first poll, so an
        alert that is silenced never leaks out at start. Then watch, until `stop`."""
        try:
            await asyncio.to_thread(self.store.prune, self.clock() - KEEP)
        except Exception as exc:
            self._report(exc)
        await self.tick()
        self._task = asyncio.create_task(self._every(), name="muting")

    def use_windows(self, windows: Sequence[MaintenanceWindow]) -> None:
        """A reloaded configuration's windows, from the next read on."""
        self._windows = list(windows)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(PERIOD)
            try:
                await self.tick()
            except Exception as exc:  # never the end of muting: the next tick tries again
                self._report(exc)

    async def tick(self) -> None:
        now = self.clock()
        try:
            self._silences = await asyncio.to_thread(self.store.all)
        except Exception as exc:  # keep muting with what was read last
            self._report(exc)
        else:
            if self._failing:
                self._log.info("silences_readable", path=str(self.store.path))
            self._failing = False
        notices = self._silence_notices(now) + self._window_notices(now)
        await self._announce(notices, now)
        await self._target.set_mutes(current_mutes(self._silences, self._windows, now))

    def _silence_notices(self, now: datetime) -> list[tuple[str, SilenceNotice]]:
        found: list[tuple[str, SilenceNotice]] = []
        for s in self._silences:
            found.append((f"{s.id}:created", self._notice("created", s, s.ends, now)))
            state = s.state(now)
            if state == "expired":
                found.append((f"{s.id}:end", self._notice("expired", s, s.until, now)))
            elif state == "ended":
                found.append((f"{s.id}:end", self._notice("ended", s, s.until, now)))
        return found

    def _notice(self, action: str, s: Silence, until: datetime, now: datetime) -> SilenceNotice:
        return SilenceNotice(
            action,  # type: ignore[arg-type]  # one of the Action literals, chosen above
            "silence",
            s.id,
            s.matchers,
            s.starts,
            until,
            s.author,
            s.comment,
            self.host,
            time=now,
        )

    def _window_notices(self, now: datetime) -> list[tuple[str, SilenceNotice]]:
        found: list[tuple[str, SilenceNotice]] = []
        current = {w.id: w for w in self._windows}
        for ident, (window, starts, ends) in list(self._open.items()):
            occurrence = current[ident].schedule().occurrence_at(now) if ident in current else None
            if occurrence != (starts, ends):
                del self._open[ident]
                found.append(
                    (
                        f"{ident}@{rfc3339(starts)}:ended",
                        self._window("ended", window, starts, min(ends, now), now),
                    )
                )
        for window in self._windows:
            occurrence = window.schedule().occurrence_at(now)
            if occurrence is None or window.id in self._open:
                continue
            starts, ends = occurrence
            self._open[window.id] = (window, starts, ends)
            found.append(
                (
                    f"{window.id}@{rfc3339(starts)}:started",
                    self._window("started", window, starts, ends, now),
                )
            )
        return found

    def _window(
        self,
        action: str,
        window: MaintenanceWindow,
        starts: datetime,
        ends: datetime,
        now: datetime,
    ) -> SilenceNotice:
        return SilenceNotice(
            action,  # type: ignore[arg-type]  # started or ended
            "maintenance",
            window.id,
            tuple(window.matchers),
            starts,
            ends,
            None,
            window.comment,
            self.host,
            time=now,
        )

    async def _announce(self, notices: list[tuple[str, SilenceNotice]], now: datetime) -> None:
        """Send each notice the store has not recorded as sent, then record it: at least once,
        and once only unless poolwatch dies in between."""
        waiting = [(key, notice) for key, notice in notices if key not in self._announced]
        if not waiting:
            return
        try:
            sent = await asyncio.to_thread(self.store.announced, [key for key, _ in waiting])
            for key, notice in waiting:
                if key not in sent:
                    await self._target.announce(notice)
            await asyncio.to_thread(self.store.claim, [key for key, _ in waiting], now)
        except Exception as exc:
            self._report(exc)
            return
        self._announced.update(key for key, _ in waiting)

    def _report(self, exc: Exception) -> None:
        if not self._failing:
            self._log.error(
                "silences_unreadable", path=str(self.store.path), reason=one_line(exc, named=True)
            )
        self._failing = True
