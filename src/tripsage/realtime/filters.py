"""postgres_changes filters, PostgREST style: `column=op.value`, comma-joined for AND.

Operators: eq, neq, lt, lte, gt, gte, and `in.(a,b,c)`. Each value is cast to the column's type when the channel
joins (an unknown column, an unknown operator or an uncastable value is an error then), and rows are compared in
Python with the same types: a filter never becomes SQL text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("eq", "neq", "lt", "lte", "gt", "gte", "in")
ORDERED = {"lt", "lte", "gt", "gte"}


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
    "citext": (_text, True),
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


@dataclass(frozen=True)
class Condition:
    column: str
    type_name: str
    op: str
    values: tuple[Any, ...]

    def matches(self, row: Mapping[str, Any]) -> bool:
        if self.column not in row:
            return False
        try:
            value = _row_value(self.type_name, row[self.column])
        except (ValueError, ArithmeticError):
            return False
        if value is None:  # SQL: a comparison with NULL is never true
            return False
        if self.op == "in":
            return value in self.values
        other = self.values[0]
        if self.op == "eq":
            return bool(value == other)
        if self.op == "neq":
            return bool(value != other)
        try:
            if self.op == "lt":
                return bool(value < other)
            if self.op == "lte":
                return bool(value <= other)
            if self.op == "gt":
                return bool(value > other)
            return bool(value >= other)
        except TypeError:  # naive vs aware datetimes and the like
            return False


def split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses (so `a=in.(1,2),b=eq.3` is two filters)."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _in_values(text: str) -> list[str]:
    if not (text.startswith("(") and text.endswith(")")) and not (text.startswith("{") and text.endswith("}")):
        raise FilterError(f"in expects a list like (a,b,c), got {text!r}")
    inner = text[1:-1]
    if not inner:
        return []
    return [item.strip().strip('"') for item in inner.split(",")]


def parse(text: str | None, columns: Mapping[str, str]) -> tuple[Condition, ...]:
    """The conditions of a binding's `filter` for a table whose columns (name -> pg type name) are given."""
    if text is None or text == "":
        return ()
    if not isinstance(text, str):
        raise FilterError("filter must be a string")
    conditions = []
    for part in split_top_level(text):
        column, sep, rest = part.partition("=")
        op, dot, value = rest.partition(".")
        column = column.strip()
        if not sep or not dot or not column:
            raise FilterError(f"{part!r} is not column=operator.value")
        if op not in OPERATORS:
            raise FilterError(f"unknown operator {op!r} (expected one of {', '.join(OPERATORS)})")
        if column not in columns:
            raise FilterError(f"column {column!r} does not exist")
        type_name = columns[column]
        if type_name not in CASTS:
            raise FilterError(f"filters on column {column!r} of type {type_name} are not supported")
        cast, orderable = CASTS[type_name]
        if op in ORDERED and not orderable:
            raise FilterError(f"operator {op} does not apply to type {type_name}")
        raw_values = _in_values(value) if op == "in" else [value]
        try:
            values = tuple(cast(item) for item in raw_values)
        except (ValueError, ArithmeticError) as error:
            raise FilterError(f"invalid value for column {column!r} of type {type_name}: {error}") from error
        conditions.append(Condition(column, type_name, op, values))
    return tuple(conditions)


def matches(conditions: tuple[Condition, ...], row: Mapping[str, Any] | None) -> bool:
    if not conditions:
        return True
    if row is None:
        return False
    return all(condition.matches(row) for condition in conditions)
