"""When a recurring maintenance window is open: a cron expression (or weekly days and a start
time, which is one) read on the wall clock of an IANA time zone, plus a duration.

Both ends are wall-clock times: `22:00 for 8h` ends at 06:00 local time, also on the nights the
clocks change (the window then lasts 7 or 9 hours), because that is what an operator means by
"22:00 to 06:00". A wall time is the first moment the clock shows it: in the autumn's repeated
hour the first pass; a time the spring jump skips (02:30 when 02:00 becomes 03:00) is the
moment of the jump. Pure: `now` is passed in, the zone data is the system's (or `tzdata`'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LOOKAHEAD = timedelta(hours=3)
"""Wall times up to this far after now can already have begun (the autumn's repeated hour;
no zone shifts by more than this)."""
_MAX_CANDIDATES = 10_000
"""Bounds the look-back of a schedule that starts very often with a long duration."""


class ScheduleError(ValueError):
    """A schedule that cannot be read; `str()` says why."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}: expected an IANA name like Europe/Berlin or UTC"
        ) from None


def weekly_cron(days: list[str], start: str) -> str:
    """`[sat, sun]`, `22:30` → `30 22 * * sat,sun`."""
    unknown = [day for day in days if day.lower() not in DAYS]
    if unknown or not days:
        raise ScheduleError(f"days {days}: expected some of {', '.join(DAYS)}")
    try:
        hour, minute = (int(part) for part in start.split(":"))
    except ValueError:
        raise ScheduleError(f"start {start!r}: expected a time like 22:00") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ScheduleError(f"start {start!r}: expected a time like 22:00")
    return f"{minute} {hour} * * {','.join(day.lower() for day in days)}"


def check_cron(expression: str) -> str:
    from croniter import croniter  # here, not at import: 8 ms of every start, a `--once` too

    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ScheduleError(
            f"cron {expression!r}: expected five fields (minute hour day month weekday), "
            "like '0 22 * * sat,sun'"
        )
    return expression


def instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first moment (UTC) the clock of `tz` shows `wall` (naive), or the moment it jumps
    past it when the spring change skips it."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # a gap: fold=1 reads the wall time with the later offset, an instant before the jump;
    # fold=0 with the earlier, an instant after it. Find the jump to the second.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    while (high - low) > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) > wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str
    duration: timedelta
    tz: ZoneInfo

    def occurrence_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The window open at `now` (start, end in UTC), the one ending last if several
        overlap; None when none is open."""
        wall_now = now.astimezone(self.tz).replace(tzinfo=None)
        horizon = wall_now - self.duration - _LOOKAHEAD
        found: tuple[datetime, datetime] | None = None
        from croniter import croniter  # see check_cron

        starts = croniter(self.cron, wall_now + _LOOKAHEAD)
        for _ in range(_MAX_CANDIDATES):
            wall_start: datetime = starts.get_prev(datetime)
            if wall_start < horizon:
                break
            begins = instant(wall_start, self.tz)
            ends = instant(wall_start + self.duration, self.tz)
            if begins <= now < ends and (found is None or ends > found[1]):
                found = (begins, ends)
        return found
