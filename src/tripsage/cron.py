"""pg_cron's schedule syntax: parsing (exactly as pg_cron 1.6 accepts and rejects) and next-run computation.

The parser is a faithful port of pg_cron's `parse_cron_entry` (Vixie cron's `load_entry`, in `src/entry.c`) and
`TryParseInterval` (`src/job_metadata.c`), quirks included: text after the fifth field is ignored (it was the
command in a crontab), a field stops at its first character that is neither part of a range nor a comma (`5;x` is
5), names are three letters, case-insensitive. The same algorithm exists in SQL (`cron._parse_schedule`, in
supabase/schemas/07_automation.sql) so that `cron.schedule()` rejects a bad schedule synchronously; a property
test proves the two agree.

A shared module below the capabilities (like `tripsage.standard_webhooks`): the scheduler runs the schedules,
monitoring shows their next runs, and neither imports the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

MAX_SCHEDULE_BYTES = 1000  # pg_cron's MAX_FILE_BUFFER_LENGTH: a longer schedule is invalid
MAX_TOKEN = 1000  # MAX_TEMPSTR
EOF = ""  # end of input, after the final "\0"
NUL = "\0"  # what pg_cron's reader returns once, at the end of the buffer
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(1, 32))
ALL_MONTHS = frozenset(range(1, 13))
ALL_WEEKDAYS = frozenset(range(8))
# The @ macros as pg_cron sets them: (minutes, hours, days, months, weekdays, dow_star, hour_star). @yearly sets
# month 0 (FIRST_MINUTE), which is out of range and silently dropped: in pg_cron @yearly never fires; kept as is.
_MACROS: dict[str, tuple[frozenset[int], ...]] = {
    "yearly": (frozenset({0}), frozenset({0}), frozenset({1}), frozenset(), ALL_WEEKDAYS),
    "annually": (frozenset({0}), frozenset({0}), frozenset({1}), frozenset(), ALL_WEEKDAYS),
    "monthly": (frozenset({0}), frozenset({0}), frozenset({1}), ALL_MONTHS, ALL_WEEKDAYS),
    "weekly": (frozenset({0}), frozenset({0}), ALL_DAYS, ALL_MONTHS, frozenset({0, 7})),
    "daily": (frozenset({0}), frozenset({0}), ALL_DAYS, ALL_MONTHS, ALL_WEEKDAYS),
    "midnight": (frozenset({0}), frozenset({0}), ALL_DAYS, ALL_MONTHS, ALL_WEEKDAYS),
    "hourly": (frozenset({0}), frozenset(range(24)), ALL_DAYS, ALL_MONTHS, ALL_WEEKDAYS),
}
SEARCH_LIMIT_DAYS = 366 * 8  # a schedule like "0 0 29 2 1" (OR logic) or "0 0 31 2 *" (never) ends the search


class InvalidSchedule(ValueError):
    """pg_cron's message for a schedule it rejects: `invalid schedule: <text>`."""

    def __init__(self, schedule: str) -> None:
        super().__init__(f"invalid schedule: {schedule}")
        self.schedule = schedule


@dataclass(frozen=True)
class Interval:
    """`N seconds` (1-59): ticks on multiples of N seconds since the epoch."""

    text: str
    seconds: int

    def as_dict(self) -> dict[str, object]:
        """The same shape as SQL's `cron._parse_schedule` (for the agreement test)."""
        return {"seconds": self.seconds}


@dataclass(frozen=True)
class Reboot:
    """`@reboot` (or `@restart`): once after the server starts, never on a clock."""

    text: str

    def as_dict(self) -> dict[str, object]:
        return {"reboot": True}


@dataclass(frozen=True)
class CronFields:
    """The five cron fields (or an @ macro that sets them)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0-7, 0 and 7 both Sunday
    dom_star: bool = False
    dow_star: bool = False
    last_dom: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "minute": sorted(self.minutes),
            "hour": sorted(self.hours),
            "dom": sorted(self.days),
            "month": sorted(self.months),
            "dow": sorted(self.weekdays),
            "dom_star": self.dom_star,
            "dow_star": self.dow_star,
            "dom_last": self.last_dom,
        }

    def matches(self, local: datetime) -> bool:
        """Whether the minute of `local` (a wall-clock time in the scheduler's timezone) is a tick."""
        if local.minute not in self.minutes or local.hour not in self.hours or local.month not in self.months:
            return False
        return self.day_matches(local)

    def day_matches(self, local: datetime) -> bool:
        # pg_cron's "last day of the month": the same instant 24 hours of absolute time later is on a 1st.
        tomorrow = (local.astimezone(UTC) + timedelta(hours=24)).astimezone(local.tzinfo).day
        this_dom = local.day in self.days or (self.last_dom and tomorrow == 1)
        this_dow = (local.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return this_dom and this_dow
        return this_dom or this_dow


Schedule = Interval | Reboot | CronFields  # a parsed schedule


class _Reader:
    """pg_cron's in-memory FILE: characters, then one NUL, then EOF forever; with an unget stack."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.pushed: list[str] = []

    def get(self) -> str:
        if self.pushed:
            return self.pushed.pop()
        if self.pos < len(self.text):
            ch = self.text[self.pos]
        elif self.pos == len(self.text):
            ch = NUL
        else:
            return EOF
        self.pos += 1
        return ch

    def unget(self, ch: str) -> None:
        self.pushed.append(ch)


def _is_alnum(ch: str) -> bool:
    return ch != EOF and ch.isascii() and ch.isalnum()


def _is_blank(ch: str) -> bool:
    return ch in (" ", "\t") and ch != EOF


class _Fail(Exception):
    pass


def _get_number(low: int, names: tuple[str, ...] | None, ch: str, reader: _Reader) -> tuple[int, str]:
    token = ""
    while _is_alnum(ch):
        if len(token) + 1 >= MAX_TOKEN:
            raise _Fail
        token += ch
        ch = reader.get()
    if not token:
        raise _Fail
    if names is not None:
        lowered = token.lower()
        for index, name in enumerate(names):
            if name == lowered:
                return index + low, ch
    if token.isdigit():
        return int(token), ch
    raise _Fail


def _get_range(bits: set[int], low: int, high: int, names: tuple[str, ...] | None, ch: str, reader: _Reader) -> str:
    if ch == "*":
        first, last = low, high
        ch = reader.get()
        if ch == EOF:
            raise _Fail
    else:
        first, ch = _get_number(low, names, ch, reader)
        if ch != "-":
            if ch == "/":  # a step without a range (1/20) is unsupported
                raise _Fail
            if not low <= first <= high:
                raise _Fail
            bits.add(first)
            return ch
        ch = reader.get()
        if ch == EOF:
            raise _Fail
        last, ch = _get_number(low, names, ch, reader)
    step = 1
    if ch == "/":
        ch = reader.get()
        if ch == EOF:
            raise _Fail
        step, ch = _get_number(0, None, ch, reader)
        if step <= 0:
            raise _Fail
    if not (low <= first <= high and low <= last <= high) or step > high:
        raise _Fail
    if step == 1:
        _set_bits(bits, first - low, last - low, low, high)
    else:
        bits.update(range(first, last + 1, step))
    return ch


def _set_bits(bits: set[int], start: int, stop: int, low: int, high: int) -> None:
    """Vixie's bit_nset on relative positions, byte by byte: a reversed range like 50-5 is not empty there."""
    start_byte, stop_byte = start >> 3, stop >> 3
    if start_byte == stop_byte:
        chosen = set(range(start, stop + 1))
    else:
        chosen = set(range(start, start_byte * 8 + 8)) | set(range(stop_byte * 8, stop + 1))
        chosen |= set(range(start_byte * 8 + 8, stop_byte * 8))
    bits.update(position + low for position in chosen if low <= position + low <= high)


def _get_list(bits: set[int], low: int, high: int, names: tuple[str, ...] | None, ch: str, reader: _Reader) -> str:
    while True:
        ch = _get_range(bits, low, high, names, ch, reader)
        if ch != ",":
            break
        ch = reader.get()
    while ch not in ("\t", " ", "\n", EOF, NUL):  # Skip_Nonblanks
        ch = reader.get()
    while _is_blank(ch):  # Skip_Blanks
        ch = reader.get()
    return ch


def _skip_comments(reader: _Reader) -> None:
    ch = reader.get()
    while ch != EOF:
        while ch in (" ", "\t"):
            ch = reader.get()
        if ch == EOF:
            break
        if ch not in ("\n", "#"):
            break
        while ch not in ("\n", EOF):
            ch = reader.get()
        ch = reader.get()
    if ch != EOF:
        reader.unget(ch)


def _parse_cron(text: str) -> Schedule | None:
    reader = _Reader(text)
    _skip_comments(reader)
    ch = reader.get()
    if ch == EOF:
        return None
    try:
        if ch == "@":
            word = ""
            ch = reader.get()
            while ch != EOF and ch not in (" ", "\t", "\n", NUL):
                word += ch
                ch = reader.get()
            if word in ("reboot", "restart"):
                return Reboot(text)
            if word not in _MACROS:
                return None
            minute_set, hour_set, day_set, month_set, weekday_set = _MACROS[word]
            return CronFields(
                text,
                minutes=minute_set,
                hours=hour_set,
                days=day_set,
                months=month_set,
                weekdays=weekday_set,
                dow_star=word in ("yearly", "annually", "monthly", "weekly"),
            )
        minutes: set[int] = set()
        hours: set[int] = set()
        days: set[int] = set()
        months: set[int] = set()
        weekdays: set[int] = set()
        ch = _get_list(minutes, 0, 59, None, ch, reader)
        if ch == EOF:
            return None
        ch = _get_list(hours, 0, 23, None, ch, reader)
        if ch == EOF:
            return None
        dom_star = False
        last_dom = False
        if ch == "$":
            ch = reader.get()
            if not _is_blank(ch):
                return None
            while _is_blank(ch):
                ch = reader.get()
            last_dom = True
        else:
            dom_star = ch == "*"
            ch = _get_list(days, 1, 31, None, ch, reader)
        if ch == EOF:
            return None
        ch = _get_list(months, 1, 12, MONTH_NAMES, ch, reader)
        if ch == EOF:
            return None
        dow_star = ch == "*"
        ch = _get_list(weekdays, 0, 7, DOW_NAMES, ch, reader)
        if ch == EOF:
            return None
    except _Fail:
        return None
    if 0 in weekdays or 7 in weekdays:
        weekdays |= {0, 7}
    return CronFields(
        text,
        minutes=frozenset(minutes),
        hours=frozenset(hours),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(weekdays),
        dom_star=dom_star,
        dow_star=dow_star,
        last_dom=last_dom,
    )


# sscanf(" %u secon%c%c %c"): blanks, an unsigned number (strtoul: optional sign), blanks, "secon", then characters.
_SPACE = " \t\n\v\f\r"
_INTERVAL = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)[ \t\n\v\f\r]*secon(.?)(.?)(?:[ \t\n\v\f\r]*(.?))", re.DOTALL)


def _parse_interval(text: str) -> int | None:
    lowered = "".join(c.lower() if c.isascii() else c for c in text)
    match = _INTERVAL.match(lowered)
    if match is None:
        return None
    sign, digits, last, plural, extra = match.groups()
    if last != "d":
        return None
    value = int(digits)
    if value > 0xFFFFFFFF:  # strtoul saturates; never in 1..59
        return None
    if sign == "-":
        value = (-value) & 0xFFFFFFFF
    if plural == "":  # "<n> second"
        return value if 0 < value < 60 else None
    if plural == "s" and extra == "":
        return value if 0 < value < 60 else None
    return None


def parse(text: str) -> Schedule:
    """Parse a pg_cron schedule, or raise InvalidSchedule with pg_cron's message."""
    # pg_cron refuses an over-long text as a cron entry only; the interval form is still tried.
    parsed = _parse_cron(text) if len(text.encode()) < MAX_SCHEDULE_BYTES else None
    if parsed is not None:
        return parsed
    seconds = _parse_interval(text)
    if seconds is not None:
        return Interval(text, seconds)
    raise InvalidSchedule(text)


def is_valid(text: str) -> bool:
    try:
        parse(text)
    except InvalidSchedule:
        return False
    return True


def ticks_between(schedule: Schedule, start: datetime, end: datetime, tz: str = "UTC") -> list[datetime]:
    """The ticks t with start < t <= end (aware datetimes, returned in UTC). @reboot has none."""
    ticks: list[datetime] = []
    moment = start
    while True:
        nxt = next_tick(schedule, moment, tz)
        if nxt is None or nxt > end:
            return ticks
        ticks.append(nxt)
        moment = nxt


def next_tick(schedule: Schedule, after: datetime, tz: str = "UTC") -> datetime | None:
    """The first tick strictly after `after` (aware), in UTC; None for @reboot or a schedule that never fires."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    match schedule:
        case Reboot():
            return None
        case Interval(seconds=step):
            # Interval jobs tick on multiples of N seconds since the epoch, so every replica computes the same ticks.
            return datetime.fromtimestamp((int(after.timestamp() // step) + 1) * step, UTC)
        case CronFields():
            return _next_cron_tick(schedule, after, ZoneInfo(tz))


def _next_cron_tick(schedule: CronFields, after: datetime, zone: ZoneInfo) -> datetime | None:
    moment = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = moment + timedelta(days=SEARCH_LIMIT_DAYS)
    # pg_cron's rule (ShouldRunTask): each minute of absolute time runs the jobs its wall-clock time matches. So a
    # time in the missing hour of spring never comes (the job skips that day), and one in the repeated hour of
    # autumn comes twice (the job runs at both). The search skips ahead by wall-clock arithmetic, which holds only
    # while the UTC offset stays the same; _advance stops at an offset change, so no minute is jumped over.
    while moment <= limit:
        local = moment.astimezone(zone)
        if local.month not in schedule.months or not schedule.day_matches(local):
            skip = 24 * 60 - (local.hour * 60 + local.minute)  # to the next local midnight
        elif local.hour not in schedule.hours:
            skip = 60 - local.minute  # to the next local hour
        elif local.minute in schedule.minutes:
            return moment
        else:
            later = [minute for minute in schedule.minutes if minute > local.minute]
            skip = (min(later) if later else 60) - local.minute
        moment = _advance(moment, skip, zone)
    return None


def _advance(moment: datetime, minutes: int, zone: ZoneInfo) -> datetime:
    """`moment` plus `minutes`, or the first minute after it at which the UTC offset of `zone` changes, if sooner."""
    target = moment + timedelta(minutes=minutes)
    offset = moment.astimezone(zone).utcoffset()
    if minutes <= 1 or target.astimezone(zone).utcoffset() == offset:
        return target
    low, high = 0, minutes  # the offset is unchanged after `low` minutes and changed after `high`
    while high - low > 1:
        middle = (low + high) // 2
        if (moment + timedelta(minutes=middle)).astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return moment + timedelta(minutes=high)


def next_run(schedule: str, after: datetime, tz: str = "UTC") -> datetime | None:
    """The next time `schedule` fires after `after` (for the dashboard); None when it never does or is invalid."""
    try:
        parsed = parse(schedule)
    except InvalidSchedule:
        return None
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    return next_tick(parsed, after, tz)
