"""Next runs in a local timezone across daylight-saving changes, checked against pg_cron's rule by brute force.

pg_cron (ShouldRunTask in src/pg_cron.c) walks absolute time minute by minute and asks, for each minute, whether
its wall-clock time in `cron.timezone` matches the schedule ("last day of the month" meaning: the same instant 24 h
later falls on a 1st). So in the missing hour of spring nothing that names it runs that day, and in the repeated
hour of autumn a job that names it runs twice, once per occurrence. `brute_force` below is that walk, written
independently of tripsage.cron's search.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tripsage import cron


def T(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


Minute = tuple[datetime, datetime, int]  # a UTC minute, its wall-clock time, the day of the month 24 h later


def minutes_between(start: datetime, end: datetime, tz: str) -> list[Minute]:
    """Every UTC minute m with start < m <= end, with its wall-clock time in `tz` and tomorrow's day of the month."""
    zone = ZoneInfo(tz)
    walk = []
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= end:
        walk.append((minute, minute.astimezone(zone), (minute + timedelta(hours=24)).astimezone(zone).day))
        minute += timedelta(minutes=1)
    return walk


def brute_force(schedule: cron.CronFields, walk: list[Minute]) -> list[datetime]:
    """The minutes of `walk` whose wall-clock time matches `schedule` (pg_cron's ShouldRunTask)."""
    ticks = []
    for minute, local, tomorrow in walk:
        this_dom = local.day in schedule.days or (schedule.last_dom and tomorrow == 1)
        this_dow = local.isoweekday() % 7 in schedule.weekdays
        day = this_dom and this_dow if schedule.dom_star or schedule.dow_star else this_dom or this_dow
        if local.minute in schedule.minutes and local.hour in schedule.hours and local.month in schedule.months and day:
            ticks.append(minute)
    return ticks


def test_the_issue_examples() -> None:
    # A 23-hour day (Berlin, 2025-03-30) must not push the search past the next day's 00:30.
    after = T("2025-03-24T00:30:00")
    assert cron.next_run("30 0 * * 1", after, "Europe/Berlin") == T("2025-03-30T22:30:00")
    # New York springs forward on 2026-03-08: 00:15 on the 9th is 04:15 UTC, not a year later.
    assert cron.next_run("15 0 9 3 *", T("2026-03-01T00:00:00"), "America/New_York") == T("2026-03-09T04:15:00")


def test_missing_hour_is_skipped_and_repeated_hour_runs_twice() -> None:
    # Berlin: 2025-03-30 02:00 CET becomes 03:00 CEST (02:xx does not exist); 2025-10-26 03:00 CEST becomes
    # 02:00 CET (02:xx happens twice).
    spring = cron.ticks_between(
        cron.parse("30 2 * * *"), T("2025-03-28T12:00:00"), T("2025-04-01T12:00:00"), "Europe/Berlin"
    )
    assert spring == [T("2025-03-29T01:30:00"), T("2025-03-31T00:30:00"), T("2025-04-01T00:30:00")]
    autumn = cron.ticks_between(
        cron.parse("30 2 * * *"), T("2025-10-25T12:00:00"), T("2025-10-27T12:00:00"), "Europe/Berlin"
    )
    assert autumn == [T("2025-10-26T00:30:00"), T("2025-10-26T01:30:00"), T("2025-10-27T01:30:00")]
    # Every minute of absolute time is a minute of some wall clock: '*/15' keeps its 15-minute spacing throughout.
    quarter = cron.ticks_between(
        cron.parse("*/15 * * * *"), T("2025-10-26T00:00:00"), T("2025-10-26T02:00:00"), "Europe/Berlin"
    )
    assert [t.minute for t in quarter] == [15, 30, 45, 0, 15, 30, 45, 0]


ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute change
    "America/Santiago",  # changes at midnight: some days start at 01:00
    "America/Havana",  # changes at midnight (00:00 -> 01:00, 01:00 -> 00:00)
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kolkata",  # no change, a half-hour offset
    "Europe/London",
]
YEARS = [2024, 2025, 2026, 2027]
SCHEDULES = [
    "30 0 * * 1",
    "15 0 9 3 *",
    "0 0 * * *",
    "30 2 * * *",
    "45 1 * * *",
    "*/7 * * * *",
    "0,30 * * * *",
    "5 0-3 * * *",
    "59 23 * * *",
    "0 12 $ * *",
    "0 0 1 * *",
    "0 0 * * 0",
    "10 0 */2 * 6",
]


def transitions(tz: str, year: int) -> list[datetime]:
    """The UTC hours at which `tz` changes its offset during `year` (to the hour)."""
    zone = ZoneInfo(tz)
    moment = datetime(year, 1, 1, tzinfo=UTC)
    found = []
    offset = moment.astimezone(zone).utcoffset()
    while moment.year == year:
        moment += timedelta(hours=1)
        now = moment.astimezone(zone).utcoffset()
        if now != offset:
            found.append(moment)
            offset = now
    return found


@pytest.mark.parametrize("tz", ZONES)
def test_sweep_agrees_with_brute_force_around_each_change(tz: str) -> None:
    windows = [(change - timedelta(days=2), change + timedelta(days=1)) for y in YEARS for change in transitions(tz, y)]
    if not windows:  # no change: a month of ordinary days
        windows = [(T("2026-02-20T00:00:00"), T("2026-03-05T00:00:00"))]
    for start, end in windows:
        walk = minutes_between(start, end, tz)
        for text in SCHEDULES:
            schedule = cron.parse(text)
            assert cron.ticks_between(schedule, start, end, tz) == brute_force(schedule, walk), (text, start)


def test_next_run_far_ahead_agrees_with_brute_force() -> None:
    # Schedules whose next run is weeks or months away, over a year with both changes (Santiago's at midnight).
    start, end = T("2025-01-01T00:00:00"), T("2026-01-01T00:00:00")
    walk = minutes_between(start, end, "America/Santiago")
    for text in ["15 0 9 3 *", "30 0 1 * *", "0 0 29 2 *", "30 0 * 4,9 0", "0 0 6 4 *"]:
        schedule = cron.parse(text)
        assert cron.ticks_between(schedule, start, end, "America/Santiago") == brute_force(schedule, walk), text
