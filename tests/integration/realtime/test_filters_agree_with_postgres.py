"""Filters are evaluated in Python (values cast at join time, never SQL text): hypothesis checks that they agree with
PostgreSQL's own evaluation of the same comparison, type by type, on the real server."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from tripsage.realtime import filters

OPERATORS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
ORDERED = ["eq", "neq", "lt", "lte", "gt", "gte"]

ints = st.integers(-(2**63), 2**63 - 1)
numerics = st.decimals(min_value=-(10**12), max_value=10**12, places=4, allow_nan=False, allow_infinity=False)
dates = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
timestamps = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
CASES: dict[str, tuple[Any, list[str]]] = {
    "int8": (ints, ORDERED),
    "numeric": (numerics, ORDERED),
    "date": (dates, ORDERED),
    "timestamptz": (timestamps, ORDERED),
    "uuid": (st.uuids(), ["eq", "neq"]),
    "bool": (st.booleans(), ["eq", "neq"]),
    # in-lists are comma-separated and trimmed: members are non-empty, without commas, quotes or edge spaces
    "text": (
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters='\x00,()"{}'), min_size=1, max_size=8).filter(
            lambda t: t == t.strip()
        ),
        ["eq", "neq"],
    ),
}


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def as_json(value: Any) -> Any:
    """The value as to_jsonb renders it in a captured row (numbers stay numbers, the rest strings)."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, decimal.Decimal):
        return json.loads(str(value), parse_float=decimal.Decimal)
    return as_text(value) if not isinstance(value, uuid.UUID) else str(value)


@pytest.fixture(scope="module")
def connection(embedded_server: Any) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(embedded_server.admin_url, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_python_filters_agree_with_postgresql(connection: psycopg.Connection[Any], type_name: str) -> None:
    strategy, ops = CASES[type_name]

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(ops), strategy, strategy | st.none(), st.lists(strategy, min_size=1, max_size=4))
    def check(op: str, wanted: Any, actual: Any, members: list[Any]) -> None:
        columns = {"c": type_name}
        row = {"c": None if actual is None else as_json(actual)}
        (condition,) = filters.parse(f"c={op}.{as_text(wanted)}", columns)
        query = sql.SQL("SELECT coalesce(%s::{t} {op} %s::{t}, false)").format(
            t=sql.Identifier(type_name), op=sql.SQL(OPERATORS[op])
        )
        expected = connection.execute(query, [None if actual is None else as_text(actual), as_text(wanted)])
        assert condition.matches(row) == expected.fetchone()[0]  # type: ignore[index]
        (in_condition,) = filters.parse("c=in.(" + ",".join(as_text(m) for m in members) + ")", columns)
        in_query = sql.SQL("SELECT coalesce(%s::{t} = ANY (%s::{t}[]), false)").format(t=sql.Identifier(type_name))
        in_expected = connection.execute(
            in_query, [None if actual is None else as_text(actual), [as_text(m) for m in members]]
        )
        assert in_condition.matches(row) == in_expected.fetchone()[0]  # type: ignore[index]

    check()
