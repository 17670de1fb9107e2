"""pg_cron's schedule syntax, table-driven: what pg_cron 1.6 accepts and rejects (the emulation's reference), and
what the native pg_cron 1.4.2 of the system server does where it differs (no `$`, no `N seconds`, no step bound).

The same table runs against the Python parser here, and against cron.schedule() on both servers (emulated) and on
native pg_cron in tests/integration/scheduler/test_cron_sql.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tripsage import cron

# (schedule, accepted by pg_cron 1.6 and the emulation, accepted by native pg_cron 1.4.2)
SYNTAX: list[tuple[str, bool, bool]] = [
    ("* * * * *", True, True),
    ("0 2 * * *", True, True),
    ("*/30 * * * *", True, True),
    ("0 4 * * 0", True, True),
    ("5 4 * * *", True, True),
    ("5,10-20/5 * * * *", True, True),
    ("1-5/2 * * * *", True, True),
    ("5-1 * * * *", True, True),
    ("0 0 * * 7", True, True),
    ("0 0 * * mon-fri", True, True),
    ("0 0 * * SUN", True, True),
    ("0 0 1 jan,jul *", True, True),
    ("* * * * * extra words", True, True),
    ("5;x * * * *", True, True),
    ("@daily", True, True),
    ("@midnight", True, True),
    ("@hourly", True, True),
    ("@weekly", True, True),
    ("@monthly", True, True),
    ("@yearly", True, True),
    ("@annually", True, True),
    ("@reboot", True, True),
    ("0 12 $ * *", True, False),
    ("0 12 $ * 1", True, False),
    ("30 seconds", True, False),
    ("1 seconds", True, False),
    ("59 seconds", True, False),
    ("2 second", True, False),
    ("  30 SECONDS ", True, False),
    ("+5 seconds", True, False),
    ("*/60 * * * *", False, True),
    ("61 seconds", False, False),
    ("60 seconds", False, False),
    ("0 seconds", False, False),
    ("-5 seconds", False, False),
    ("5 secondsx", False, False),
    ("5 seconds x", False, False),
    ("5 second ", False, False),
    ("* * *", False, False),
    ("* * * *", False, False),
    ("", False, False),
    ("   ", False, False),
    ("a b c d e", False, False),
    ("@Daily", False, False),
    ("@every 5m", False, False),
    ("0 0 1 January *", False, False),
    ("60 * * * *", False, False),
    ("* 24 * * *", False, False),
    ("* * 0 * *", False, False),
    ("* * 32 * *", False, False),
    ("* * * 13 *", False, False),
    ("* * * * 8", False, False),
    ("1/20 * * * *", False, False),
    ("*/0 * * * *", False, False),
    ("$ * * * *", False, False),
    ("0 0 $x * *", False, False),
]


@pytest.mark.parametrize(("schedule", "accepted", "_native_142"), SYNTAX)
def test_python_parser_accepts_exactly_what_pg_cron_does(schedule: str, accepted: bool, _native_142: bool) -> None:
    if accepted:
        cron.parse(schedule)
    else:
        with pytest.raises(cron.InvalidSchedule, match=r"^invalid schedule: "):
            cron.parse(schedule)


def test_fields_expand_like_vixie_cron() -> None:
    parsed = cron.parse("*/15 1-5/2 1,15 jan-mar mon-fri")
    assert sorted(parsed.minutes) == [0, 15, 30, 45]
    assert sorted(parsed.hours) == [1, 3, 5]
    assert sorted(parsed.days) == [1, 15]
    assert sorted(parsed.months) == [1, 2, 3]
    assert sorted(parsed.weekdays) == [1, 2, 3, 4, 5]
    # A reversed range is not empty in Vixie's bit_nset: it fills the two bytes it touches.
    assert sorted(cron.parse("50-5 * * * *").minutes) == [0, 1, 2, 3, 4, 5, 50, 51, 52, 53, 54, 55]
    assert cron.parse("30 seconds").seconds == 30
    assert isinstance(cron.parse("@reboot"), cron.Reboot)


def T(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/5 * * * *", "2026-02-03T00:07:00", "2026-02-03T00:10:00"),
        ("*/5 * * * *", "2026-02-03T00:10:00", "2026-02-03T00:15:00"),
        ("0 2 * * *", "2026-02-03T02:00:30", "2026-02-04T02:00:00"),
        ("0 4 * * 0", "2026-11-25T00:00:00", "2026-11-29T04:00:00"),  # Sunday
        ("0 4 * * 7", "2026-11-25T00:00:00", "2026-11-29T04:00:00"),
        ("0 12 $ * *", "2026-02-03T00:00:00", "2026-02-28T12:00:00"),
        ("0 12 $ * *", "2028-02-03T00:00:00", "2028-02-29T12:00:00"),
        ("0 0 13 * 5", "2026-02-03T00:00:00", "2026-02-06T00:00:00"),  # day 13 OR Friday
        # A day field starting with '*' switches to AND: days 1, 11, 21, 31 that are Fridays.
        ("0 0 */10 * 5", "2026-02-03T00:00:00", "2026-05-01T00:00:00"),
        ("@monthly", "2026-02-03T00:00:00", "2026-03-01T00:00:00"),
        ("@weekly", "2026-11-25T00:00:00", "2026-11-29T00:00:00"),
        ("1 seconds", "2026-02-03T00:07:00.5", "2026-02-03T00:07:01"),
        ("30 seconds", "2026-02-03T00:07:00", "2026-02-03T00:07:30"),
    ],
)
def test_next_run(schedule: str, after: str, expected: str) -> None:
    assert cron.next_run(schedule, T(after)) == T(expected)


def test_next_run_in_a_timezone() -> None:
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer (DST began 2026-03-08).
    assert cron.next_run("0 9 * * *", T("2026-03-07T00:00:00"), "America/New_York") == T("2026-03-07T14:00:00")
    assert cron.next_run("0 9 * * *", T("2026-03-08T00:00:00"), "America/New_York") == T("2026-03-08T13:00:00")


def test_next_run_never() -> None:
    assert cron.next_run("0 0 31 2 *", T("2026-01-01T00:00:00")) is None
    assert cron.next_run("@reboot", T("2026-01-01T00:00:00")) is None
    assert cron.next_run("@yearly", T("2026-01-01T00:00:00")) is None  # pg_cron's @yearly sets no month
    assert cron.next_run("not a schedule", T("2026-01-01T00:00:00")) is None


def test_ticks_between() -> None:
    ticks = cron.ticks_between(cron.parse("*/20 * * * *"), T("2026-01-01T00:00:00"), T("2026-01-01T01:00:00"))
    assert ticks == [T("2026-01-01T00:20:00"), T("2026-01-01T00:40:00"), T("2026-01-01T01:00:00")]
