"""Maintenance window schedules, with the clock injected: weekly, cron, across midnight, both
DST changes, and zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from poolwatch.core.schedule import Schedule, ScheduleError, check_cron, weekly_cron, zone

BERLIN = zone("Europe/Berlin")
NEW_YORK = zone("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def window(cron: str, hours: float, tz: str = "Europe/Berlin") -> Schedule:
    return Schedule(cron, timedelta(hours=hours), zone(tz))


def test_weekly_is_a_cron_expression() -> None:
    assert weekly_cron(["sat", "Sun"], "22:30") == "30 22 * * sat,sun"
    for days, start in ((["someday"], "22:00"), ([], "22:00"), (["mon"], "25:00"), (["mon"], "x")):
        with pytest.raises(ScheduleError):
            weekly_cron(days, start)


def test_bad_cron_and_zone_are_refused() -> None:
    with pytest.raises(ScheduleError, match="five fields"):
        check_cron("0 22 * *")
    with pytest.raises(ScheduleError, match="five fields"):
        check_cron("61 22 * * *")
    with pytest.raises(ScheduleError, match="IANA"):
        zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("now", "open_"),
    [
        (utc(2026, 6, 6, 19, 59), False),  # Saturday 21:59 CEST
        (utc(2026, 6, 6, 20, 0), True),  # 22:00 CEST: opens
        (utc(2026, 6, 6, 23, 30), True),  # 01:30 Sunday: across midnight
        (utc(2026, 6, 7, 3, 59), True),  # 05:59
        (utc(2026, 6, 7, 4, 0), False),  # 06:00: closed (the end is not inside)
        (utc(2026, 6, 10, 21, 0), False),  # a Wednesday night
    ],
)
def test_an_overnight_weekly_window(now: datetime, open_: bool) -> None:
    schedule = window(weekly_cron(["sat"], "22:00"), 8)
    found = schedule.occurrence_at(now)
    assert (found is not None) == open_
    if found:
        assert found == (utc(2026, 6, 6, 20, 0), utc(2026, 6, 7, 4, 0))


def test_a_cron_window_in_new_york() -> None:
    schedule = window("*/15 9 * * mon-fri", 0.1, "America/New_York")  # 6 minutes each
    monday_0916_edt = utc(2026, 6, 8, 13, 16)
    assert schedule.occurrence_at(monday_0916_edt) == (
        utc(2026, 6, 8, 13, 15),
        utc(2026, 6, 8, 13, 21),
    )
    assert schedule.occurrence_at(utc(2026, 6, 8, 13, 22)) is None
    assert schedule.occurrence_at(utc(2026, 6, 6, 13, 16)) is None  # a Saturday


def test_the_same_wall_time_is_another_instant_in_another_zone() -> None:
    cron = weekly_cron(["mon"], "02:00")
    assert window(cron, 1, "Asia/Tokyo").occurrence_at(utc(2026, 6, 7, 17, 30)) is not None
    assert window(cron, 1, "UTC").occurrence_at(utc(2026, 6, 7, 17, 30)) is None


def test_spring_forward_night_ends_at_the_wall_clock_end() -> None:
    """22:00 for 8h in Berlin on 28/29 March 2026 (02:00 becomes 03:00): 06:00 local, 7 hours."""
    schedule = window(weekly_cron(["sat"], "22:00"), 8)
    begins, ends = schedule.occurrence_at(utc(2026, 3, 29, 1, 30))  # type: ignore[misc]
    assert begins == utc(2026, 3, 28, 21, 0)  # 22:00 CET
    assert ends == utc(2026, 3, 29, 4, 0)  # 06:00 CEST
    assert ends - begins == timedelta(hours=7)
    assert schedule.occurrence_at(utc(2026, 3, 29, 4, 0)) is None


def test_fall_back_night_ends_at_the_wall_clock_end() -> None:
    """The same window on 24/25 October 2026 (03:00 becomes 02:00): 06:00 local, 9 hours."""
    schedule = window(weekly_cron(["sat"], "22:00"), 8)
    begins, ends = schedule.occurrence_at(utc(2026, 10, 25, 1, 30))  # type: ignore[misc]
    assert begins == utc(2026, 10, 24, 20, 0)  # 22:00 CEST
    assert ends == utc(2026, 10, 25, 5, 0)  # 06:00 CET
    assert ends - begins == timedelta(hours=9)
    assert schedule.occurrence_at(utc(2026, 10, 25, 4, 59)) is not None


def test_a_start_the_spring_jump_skips_begins_at_the_jump() -> None:
    """02:30 does not exist on 8 March 2026 in New York: the window opens when 02:00 EST
    becomes 03:00 EDT, and ends at 03:30 EDT, the wall-clock end."""
    schedule = window(weekly_cron(["sun"], "02:30"), 1, "America/New_York")
    assert schedule.occurrence_at(utc(2026, 3, 8, 6, 59)) is None
    assert schedule.occurrence_at(utc(2026, 3, 8, 7, 0)) == (
        utc(2026, 3, 8, 7, 0),
        utc(2026, 3, 8, 7, 30),
    )


def test_a_start_in_the_repeated_hour_opens_once_at_its_first_pass() -> None:
    """01:30 comes twice on 1 November 2026 in New York: the window opens at the first
    (EDT) and ends one wall-clock hour later, 02:30 EST: two and a half hours."""
    schedule = window(weekly_cron(["sun"], "01:30"), 1, "America/New_York")
    first = utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert schedule.occurrence_at(first) == (first, utc(2026, 11, 1, 7, 30))
    assert schedule.occurrence_at(utc(2026, 11, 1, 6, 45)) == (first, utc(2026, 11, 1, 7, 30))
    assert schedule.occurrence_at(utc(2026, 11, 1, 5, 29)) is None
