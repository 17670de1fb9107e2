"""postgres_changes filters, PostgREST style: `column=[not.]op.value`, comma-joined for AND.

Operators, as Supabase Realtime has them since PRs #1912 (comma AND), #1966/#1985 (the rest), verified against
supabase/realtime `lib/extensions/postgres_cdc_rls/subscriptions.ex` (parsing) and the tenant SQL
`realtime.check_equality_op`, `realtime.subscription_check_filters` and `realtime.is_visible_through_filters`
(`priv/repo/tenant_schema/realtime/functions/`, migration 20260626120000_readd_postgrest_filter_ops):

- `eq neq lt lte gt gte` (`= != < <= > >=`), `in.(a,b)` (`= any('{a,b}')`, at most 100 members), `isdistinct`
  (`IS DISTINCT FROM`): the value is cast to the column's type when the channel joins.
- `like` / `ilike` (`LIKE` / `ILIKE`, `%` and `_` wildcards, `\\` escapes; `*` is NOT a wildcard: unlike PostgREST's
  URLs the server passes the pattern through) on text, char(n), name and citext columns (those with a `~~`
  operator of their own type: not varchar, as on Supabase).
- `match` / `imatch` (`~` / `~*`, PostgreSQL's regular expressions) on text and citext columns.
- `is.null|true|false|unknown` (`IS NULL` ...; true/false/unknown only on bool columns).
- `not.` before any operator negates it: `NOT (...)` for the comparisons, `IS NOT` and `IS NOT DISTINCT FROM`.

Values may be double-quoted (`name=eq."a,b"`, `\\` escapes the next character) so they can hold `, ( ) " \\`; an
in-list is a PostgreSQL array literal (`in.("a,b",c)`, unquoted NULL is a null member).

NULLs: a comparison that is NULL in SQL (a NULL column value, or an in-list with a NULL member that does not
match) does not pass, negated or not: the server sums only true results (`is_visible_through_filters`). So
`status=not.eq.x` does not pass a NULL status; `is.null`, `not.is.true` and `isdistinct` are the NULL-aware forms.
A column absent from the row (DELETE's old record without REPLICA IDENTITY FULL) fails every filter.

Everything is evaluated in Python: a filter never becomes SQL text. LIKE and regular expressions run in
tripsage.realtime.patterns (linear-time matchers, C-collation case folding; back-references, lookaround, embedded
options and collating elements are refused when the channel joins, though PostgreSQL accepts them).
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tripsage.realtime.patterns import LikePattern, PatternError, Regex, ascii_lower

OPERATORS = ("eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch", "isdistinct")
ORDERED = {"lt", "lte", "gt", "gte"}
IS_VALUES = ("null", "true", "false", "unknown")
# Column types with a LIKE operator of their own (pg_operator `~~` with oprleft = the type), and with `~`/`~*`
# taking the type on both sides: the checks of realtime.subscription_check_filters.
LIKE_TYPES = frozenset({"text", "bpchar", "name", "citext"})
REGEX_TYPES = frozenset({"text", "citext"})
MAX_IN_VALUES = 100


class FilterError(ValueError):
    """A filter that cannot be applied to the table."""


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"t", "true", "y", "yes", "on", "1"}:
        return True
    if lowered in {"f", "false", "n", "no", "off", "0"}:
        return False
    raise ValueError(f"invalid input syntax for type boolean: {text!r}")


def _integer(text: str) -> int:
    return int(text.strip())


def _number(text: str) -> decimal.Decimal:
    value = decimal.Decimal(text.strip())
    if not value.is_finite():
        raise ValueError(f"invalid number {text!r}")
    return value


def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text.strip())


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text.strip())


def _timestamptz(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip()).replace(tzinfo=None)


def _text(text: str) -> str:
    return text


def _citext(text: str) -> str:
    """citext compares lower-cased text (ASCII letters only in a C-ctype database, as this module's matchers)."""
    return ascii_lower(text)


# pg type name -> (cast of a filter value or of a row's JSON value, whether lt/lte/gt/gte apply)
CASTS: dict[str, tuple[Callable[[str], Any], bool]] = {
    "int2": (_integer, True),
    "int4": (_integer, True),
    "int8": (_integer, True),
    "float4": (_number, True),
    "float8": (_number, True),
    "numeric": (_number, True),
    "bool": (_boolean, False),
    "uuid": (_uuid, False),
    "date": (_date, True),
    "timestamptz": (_timestamptz, True),
    "timestamp": (_timestamp, True),
    "text": (_text, True),
    "varchar": (_text, True),
    "bpchar": (_text, True),
    "citext": (_citext, True),
    "name": (_text, True),
}


def _row_value(type_name: str, value: Any) -> Any:
    """A row's JSON value (from to_jsonb) in the type the filter's values were cast to."""
    if value is None:
        return None
    cast, _ = CASTS[type_name]
    if isinstance(value, bool):
        return value if type_name == "bool" else cast(str(value).lower())
    return cast(str(value))


# --- parsing -----------------------------------------------------------------------------------------------------


def split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quoted values (so `a=in.(1,2),b=eq."x,y"` is two filters).

    As the server: a double quote opens a quoted value only right after `.`, `(` or `,`, and a backslash inside
    one escapes the next character."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    previous = ""
    index = 0
    while index < len(text):
        char = text[index]
        index += 1
        if quoted:
            current.append(char)
            if char == "\\" and index < len(text):
                current.append(text[index])
                index += 1
            elif char == '"':
                quoted = False
            previous = char
            continue
        if char == '"' and previous in (".", "(", ","):
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            previous = ""
            continue
        current.append(char)
        previous = char
    parts.append("".join(current))
    return parts


def unquote(value: str) -> str:
    """A PostgREST double-quoted value without its quotes and escapes; anything else (including an unterminated
    quote or characters after the closing one) is taken literally."""
    if not value.startswith('"'):
        return value
    result: list[str] = []
    index = 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            result.append(value[index + 1])
            index += 2
        elif char == '"':
            return "".join(result) if index == len(value) - 1 else value
        else:
            result.append(char)
            index += 1
    return value


def array_members(text: str) -> list[str | None]:
    """The members of an in-list `(a,"b,c",NULL)`, read as PostgreSQL reads the array literal `{a,"b,c",NULL}`."""
    if len(text) < 2 or not (text.startswith("(") and text.endswith(")")):
        raise FilterError("`in` filter value must be wrapped by parentheses")
    inner = text[1:-1]
    malformed = FilterError(f"malformed array literal: {'{' + inner + '}'!r}")
    if inner.strip(" \t\n\r\v\f") == "":
        return []
    members: list[str | None] = []
    index = 0
    while True:
        while index < len(inner) and inner[index].isspace():
            index += 1
        chars: list[str] = []
        if index < len(inner) and inner[index] == '"':
            index += 1
            while True:
                if index >= len(inner):
                    raise malformed
                char = inner[index]
                index += 1
                if char == "\\":
                    if index >= len(inner):
                        raise malformed
                    chars.append(inner[index])
                    index += 1
                elif char == '"':
                    break
                else:
                    chars.append(char)
            while index < len(inner) and inner[index].isspace():
                index += 1
            members.append("".join(chars))
        else:
            kept = 0  # length of chars up to the last escaped or non-space character (trailing spaces are trimmed)
            escaped_any = False
            while index < len(inner) and inner[index] != ",":
                char = inner[index]
                index += 1
                if char in '{}"':
                    raise malformed
                if char == "\\":
                    if index >= len(inner):
                        raise malformed
                    chars.append(inner[index])
                    index += 1
                    kept = len(chars)
                    escaped_any = True
                else:
                    chars.append(char)
                    if not char.isspace():
                        kept = len(chars)
            member = "".join(chars[:kept])
            if not member and not escaped_any:
                raise malformed
            members.append(None if not escaped_any and member.upper() == "NULL" else member)
        if index >= len(inner):
            return members
        if inner[index] != ",":
            raise malformed
        index += 1


@dataclass(frozen=True)
class Condition:
    column: str
    type_name: str
    op: str
    values: tuple[Any, ...]
    negate: bool = False
    matcher: LikePattern | Regex | None = field(default=None, compare=False, repr=False)

    def evaluate(self, row: Mapping[str, Any]) -> bool | None:
        """The SQL truth value of the condition for the row (None for SQL NULL), before any negation."""
        raw = row[self.column]
        if self.op == "is":
            wanted = self.values[0]
            if wanted in ("null", "unknown"):
                return raw is None
            return raw is (wanted == "true")
        value = _row_value(self.type_name, raw)
        if self.op == "isdistinct":
            other = self.values[0]
            return value is None or bool(value != other)
        if value is None:
            return None
        if self.op == "in":
            if value in self.values:
                return True
            return None if None in self.values else False
        if self.op in ("like", "ilike"):
            assert isinstance(self.matcher, LikePattern)
            return self.matcher.matches(value)
        if self.op in ("match", "imatch"):
            assert isinstance(self.matcher, Regex)
            return self.matcher.search(value)
        other = self.values[0]
        if self.op == "eq":
            return bool(value == other)
        if self.op == "neq":
            return bool(value != other)
        if self.op == "lt":
            return bool(value < other)
        if self.op == "lte":
            return bool(value <= other)
        if self.op == "gt":
            return bool(value > other)
        return bool(value >= other)

    def matches(self, row: Mapping[str, Any]) -> bool:
        if self.column not in row:
            return False
        try:
            result = self.evaluate(row)
        except (ValueError, ArithmeticError, TypeError):  # an unreadable value; naive vs aware datetimes
            return False
        if result is None:  # SQL NULL passes neither the condition nor its negation
            return False
        return result != self.negate


def _condition(part: str, columns: Mapping[str, str]) -> Condition:
    segment = part.strip()
    if not segment:
        raise FilterError("filter must not contain empty segments (check for extra commas)")
    column, sep, rest = segment.partition("=")
    column = column.strip()
    negate = rest.startswith("not.")
    if negate:
        rest = rest[len("not.") :]
    op, dot, value = rest.partition(".")
    if not sep or not dot or not column:
        raise FilterError(f"{segment!r} is not column=operator.value")
    if op not in OPERATORS:
        raise FilterError(f"unknown operator {op!r} (expected one of {', '.join(OPERATORS)})")
    if column not in columns:
        raise FilterError(f"invalid column for filter {column}")
    type_name = columns[column]
    if op == "is":
        if value not in IS_VALUES:
            raise FilterError("invalid value for is filter: must be null, true, false, or unknown")
        if value != "null" and type_name != "bool":
            raise FilterError(f"is {value} filter requires a boolean column, got {type_name}")
        return Condition(column, type_name, op, (value,), negate)
    if type_name not in CASTS:
        raise FilterError(f"filters on column {column!r} of type {type_name} are not supported")
    cast, orderable = CASTS[type_name]
    if op in ORDERED and not orderable:
        raise FilterError(f"operator {op} does not apply to type {type_name}")
    if op in ("like", "ilike", "match", "imatch"):
        allowed = LIKE_TYPES if op in ("like", "ilike") else REGEX_TYPES
        if type_name not in allowed:
            raise FilterError(f"operator {op} requires a text-compatible column type, got {type_name}")
        pattern = unquote(value)
        fold = op in ("ilike", "imatch") or type_name == "citext"
        matcher: LikePattern | Regex
        if op in ("like", "ilike"):
            # The pattern is cast to the column's type: char(n) drops trailing spaces.
            try:
                matcher = LikePattern.compile(pattern.rstrip(" ") if type_name == "bpchar" else pattern, fold=fold)
            except PatternError as error:
                raise FilterError(str(error)) from error
        else:
            try:
                matcher = Regex.compile(pattern, fold=fold)
            except PatternError as error:
                raise FilterError(f"invalid regular expression for {op} filter: {error}") from error
        return Condition(column, type_name, op, (pattern,), negate, matcher)
    raw_values: list[str | None] = array_members(value) if op == "in" else [unquote(value)]
    if op == "in" and len(raw_values) > MAX_IN_VALUES:
        raise FilterError(f"too many values for `in` filter. Maximum {MAX_IN_VALUES}")
    try:
        values = tuple(None if item is None else cast(item) for item in raw_values)
    except (ValueError, ArithmeticError) as error:
        raise FilterError(f"invalid value for column {column!r} of type {type_name}: {error}") from error
    return Condition(column, type_name, op, values, negate)


def parse(text: str | None, columns: Mapping[str, str]) -> tuple[Condition, ...]:
    """The conditions of a binding's `filter` for a table whose columns (name -> pg type name) are given."""
    if text is None:
        return ()
    if not isinstance(text, str):
        raise FilterError("filter must be a string")
    if text.strip() == "":
        return ()
    return tuple(_condition(part, columns) for part in split_top_level(text.strip()))


def matches(conditions: tuple[Condition, ...], row: Mapping[str, Any] | None) -> bool:
    if not conditions:
        return True
    if row is None:
        return False
    return all(condition.matches(row) for condition in conditions)
