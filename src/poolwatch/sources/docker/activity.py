"""Restarts and OOM kills per container within a sliding window, and the last exits. Pure: time
is passed in.

Two witnesses feed it. The event stream says `die` then `start` for a restart under a restart
policy (there is no `restart` event for those) and `oom` for an OOM kill, the moment they happen.
Inspect says `RestartCount` and `State.OOMKilled`, which cover what the stream missed (poolwatch
was not connected); `RestartCount` resets when the engine restarts, so a drop only re-baselines.
Everything for a container is dropped with `forget` / `keep_only`: memory is bounded by the
containers that exist, and per container by `cap` timestamps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

LAST_DEATHS = 3


@dataclass(slots=True)
class _Track:
    restarts: deque[float]
    ooms: deque[float]
    died: bool = False
    restart_count: int | None = None
    restarts_since_inspect: int = 0
    ooms_since_inspect: int = 0
    oom_finished_at: str | None = None
    deaths: deque[float] = field(default_factory=lambda: deque(maxlen=LAST_DEATHS))
    """Wall-clock times of the last `die` events (an event's context shows them)."""
    exit_code: int | None = None
    """The exit code the last `die` event gave."""


@dataclass
class ActivityLog:
    window: float
    cap: int = 1000
    _tracks: dict[str, _Track] = field(default_factory=dict)

    def _track(self, container_id: str) -> _Track:
        track = self._tracks.get(container_id)
        if track is None:
            track = _Track(deque(maxlen=self.cap), deque(maxlen=self.cap))
            self._tracks[container_id] = track
        return track

    def died(
        self, container_id: str, at: float | None = None, exit_code: int | None = None
    ) -> None:
        """A `die`, at wall-clock time `at`, with the exit code the event gave."""
        track = self._track(container_id)
        track.died = True
        if at is not None:
            track.deaths.append(at)
        if exit_code is not None:
            track.exit_code = exit_code

    def last_deaths(self, container_id: str) -> tuple[list[float], int | None]:
        """The wall-clock times of the last LAST_DEATHS `die` events, and the last exit code."""
        track = self._tracks.get(container_id)
        return ([], None) if track is None else (list(track.deaths), track.exit_code)

    def started(self, container_id: str, now: float) -> bool:
        """A `start`; True when it is a restart (the container had died before)."""
        track = self._track(container_id)
        if not track.died:
            return False
        track.died = False
        track.restarts.append(now)
        track.restarts_since_inspect += 1
        return True

    def oom(self, container_id: str, now: float) -> None:
        track = self._track(container_id)
        track.ooms.append(now)
        track.ooms_since_inspect += 1

    def inspected(
        self,
        container_id: str,
        restart_count: int,
        oom_killed: bool,
        finished_at: str,
        finished_age: float | None,
        now: float,
    ) -> None:
        """Cross-check with inspect: count what the stream did not report. `finished_age` is how
        long ago the last exit was (None when unknown)."""
        track = self._track(container_id)
        if track.restart_count is not None and restart_count > track.restart_count:
            missed = restart_count - track.restart_count - track.restarts_since_inspect
            track.restarts.extend([now] * max(0, missed))
        track.restart_count = restart_count
        track.restarts_since_inspect = 0
        if oom_killed and finished_at != track.oom_finished_at:
            recent = finished_age is not None and 0 <= finished_age < self.window
            if track.ooms_since_inspect == 0 and recent:
                assert finished_age is not None
                track.ooms.append(now - finished_age)
            track.oom_finished_at = finished_at
        track.ooms_since_inspect = 0

    def restarts(self, container_id: str, now: float) -> int:
        track = self._tracks.get(container_id)
        return 0 if track is None else _within(track.restarts, now - self.window)

    def ooms(self, container_id: str, now: float) -> int:
        track = self._tracks.get(container_id)
        return 0 if track is None else _within(track.ooms, now - self.window)

    def forget(self, container_id: str) -> None:
        self._tracks.pop(container_id, None)

    def keep_only(self, container_ids: Iterable[str]) -> None:
        keep = set(container_ids)
        for gone in [cid for cid in self._tracks if cid not in keep]:
            del self._tracks[gone]

    def __len__(self) -> int:
        return len(self._tracks)


def _within(times: deque[float], start: float) -> int:
    while times and times[0] < start:
        times.popleft()
    return len(times)
