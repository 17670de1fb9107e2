"""Filters are evaluated in Python (values cast at join time, never SQL text): hypothesis checks that they agree with
PostgreSQL's own evaluation of the same comparison, type by type, on the real server.

What "agree" means is Supabase's rule (supabase/realtime `realtime.is_visible_through_filters`, migration
20260626120000): a condition passes only when PostgreSQL says true; NULL (a NULL column value, an in-list with a NULL
member) passes neither the condition nor its `not.` form. Hence `coalesce(<SQL>, false)` and
`coalesce(NOT (<SQL>), false)` below; `is` and `isdistinct` never yield NULL."""

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
TEXT_OPERATORS = {"like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}
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
    # citext compares lower-cased: a small alphabet makes values that differ only in case common
    "citext": (st.text(alphabet="aAbBzZ1 é", min_size=1, max_size=4).filter(lambda t: t == t.strip()), ORDERED),
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


def array_member(value: Any, quote: bool) -> str:
    """An in-list member as a client writes it: NULL, "double-quoted" with backslash escapes, or bare."""
    if value is None:
        return "NULL"
    text = as_text(value)
    if quote:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def bare_ok(value: Any) -> bool:
    """Whether the member can be written without quotes (PostgreSQL would read it back unchanged)."""
    if value is None:
        return True
    text = as_text(value)
    return bool(text) and text == text.strip() and not any(c in text for c in ',(){}"\\') and text.upper() != "NULL"


def sql_truth(connection: psycopg.Connection[Any], query: sql.Composable, params: list[Any]) -> bool:
    row = connection.execute(query, params).fetchone()
    assert row is not None
    return bool(row[0])


@pytest.fixture(scope="module")
def connection(embedded_server: Any) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(embedded_server.admin_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
        yield conn


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_python_filters_agree_with_postgresql(connection: psycopg.Connection[Any], type_name: str) -> None:
    strategy, ops = CASES[type_name]
    members_strategy = st.lists(st.tuples(strategy | st.none(), st.booleans()), min_size=1, max_size=4)

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(ops), strategy, strategy | st.none(), members_strategy)
    def check(op: str, wanted: Any, actual: Any, members: list[tuple[Any, bool]]) -> None:
        columns = {"c": type_name}
        row = {"c": None if actual is None else as_json(actual)}
        actual_text = None if actual is None else as_text(actual)
        wanted_value = array_member(wanted, quote=True)  # a quoted value: any character may appear in it
        t = sql.Identifier(type_name)
        for negate in (False, True):
            prefix = "not." if negate else ""
            (condition,) = filters.parse(f"c={prefix}{op}.{wanted_value}", columns)
            query = sql.SQL("SELECT coalesce({not_} (%s::{t} {op} %s::{t}), false)").format(
                not_=sql.SQL("NOT" if negate else ""), t=t, op=sql.SQL(OPERATORS[op])
            )
            assert condition.matches(row) == sql_truth(connection, query, [actual_text, as_text(wanted)])

            # in-lists: the server hands `{...}` to PostgreSQL as an array literal; so does this check
            inner = ",".join(array_member(m, quote or not bare_ok(m)) for m, quote in members)
            (in_condition,) = filters.parse(f"c={prefix}in.({inner})", columns)
            in_query = sql.SQL("SELECT coalesce({not_} (%s::{t} = ANY (%s::{t}[])), false)").format(
                not_=sql.SQL("NOT" if negate else ""), t=t
            )
            assert in_condition.matches(row) == sql_truth(connection, in_query, [actual_text, "{" + inner + "}"])

            # IS [NOT] DISTINCT FROM and IS [NOT] NULL: NULL-aware, never NULL themselves
            (distinct,) = filters.parse(f"c={prefix}isdistinct.{wanted_value}", columns)
            distinct_query = sql.SQL("SELECT %s::{t} IS {not_} DISTINCT FROM %s::{t}").format(
                not_=sql.SQL("NOT" if negate else ""), t=t
            )
            assert distinct.matches(row) == sql_truth(connection, distinct_query, [actual_text, as_text(wanted)])
            (is_null,) = filters.parse(f"c={prefix}is.null", columns)
            is_query = sql.SQL("SELECT %s::{t} IS {not_} NULL").format(not_=sql.SQL("NOT" if negate else ""), t=t)
            assert is_null.matches(row) == sql_truth(connection, is_query, [actual_text])

    check()


@pytest.mark.parametrize("keyword", ["null", "true", "false", "unknown"])
@pytest.mark.parametrize("negate", [False, True])
@pytest.mark.parametrize("actual", [True, False, None])
def test_is_on_booleans_agrees_with_postgresql(
    connection: psycopg.Connection[Any], keyword: str, negate: bool, actual: bool | None
) -> None:
    (condition,) = filters.parse(f"c={'not.' if negate else ''}is.{keyword}", {"c": "bool"})
    query = sql.SQL("SELECT %s::bool IS {not_} {keyword}").format(
        not_=sql.SQL("NOT" if negate else ""), keyword=sql.SQL(keyword.upper())
    )
    assert condition.matches({"c": actual}) == sql_truth(connection, query, [actual])


TEXTS = st.text(alphabet="aAbB1_ .\n\u00e9-%\\", max_size=8)
LIKE_PATTERNS = st.text(alphabet="aAb%_\\\u00e9.", max_size=6)
REGEX_ATOMS = st.sampled_from(
    [
        *["a", "b", "A", "\u00e9", ".", "\\.", "-", "1", "_", " ", "{", "\\n"],
        *["[ab]", "[^a]", "[a-c]", "[]a]", "[[:upper:]]", "[[:digit:]_]", "[^[:alpha:]]"],
        *["\\d", "\\w", "\\s", "\\W", "\\D", "(?:a|b)", "(a|)", "()"],
    ]
)
REGEX_QUANTIFIERS = st.sampled_from(["", "", "", "*", "+", "?", "{2}", "{1,3}", "{0,}", "*?", "+?", "??", "{0}"])
REGEX_ANCHORS = st.sampled_from(["^", "$", "\\m", "\\M", "\\y", "\\Y", "\\A", "\\Z"])
REGEX_BRANCHES = st.lists(
    st.one_of(st.tuples(REGEX_ATOMS, REGEX_QUANTIFIERS).map("".join), REGEX_ANCHORS), max_size=5
).map("".join)
REGEXES = st.one_of(
    st.recursive(
        REGEX_BRANCHES,
        lambda inner: st.tuples(inner, st.sampled_from(["|", ""]), inner, REGEX_QUANTIFIERS).map(
            lambda t: f"({t[0]}{t[1]}{t[2]}){t[3]}"
        ),
        max_leaves=4,
    ),
    # malformed: PostgreSQL and the filter must both refuse them
    st.sampled_from(["(", "a)", "a**", "*a", "[b-a]", "x{2,1}", "a{256}", "[[:nope:]]", "\\q", "a{1", "^*", "[a"]),
)


@pytest.mark.parametrize("op", sorted(TEXT_OPERATORS))
def test_text_operators_agree_with_postgresql(connection: psycopg.Connection[Any], op: str) -> None:
    """like/ilike (`%`, `_`, backslash escapes; `*` is an ordinary character, as on Supabase) and match/imatch
    (PostgreSQL's `~`/`~*`), plain and negated, on text values and NULL."""
    patterns = LIKE_PATTERNS if op in ("like", "ilike") else REGEXES

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(patterns, TEXTS | st.none(), st.booleans())
    def check(pattern: str, actual: str | None, negate: bool) -> None:
        query = sql.SQL("SELECT coalesce({not_} (%s::text {op} %s::text), false)").format(
            not_=sql.SQL("NOT" if negate else ""), op=sql.SQL(TEXT_OPERATORS[op])
        )
        filter_text = f"c={'not.' if negate else ''}{op}.{array_member(pattern, quote=True)}"
        if op in ("like", "ilike"):
            # PostgreSQL reports a trailing escape only when matching reaches it; the filter refuses it at join.
            invalid = (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1
        else:
            try:
                sql_truth(connection, query, ["", pattern])  # PostgreSQL compiles the whole expression first
                invalid = False
            except psycopg.errors.InvalidRegularExpression as error:
                if "too complex" in str(error):
                    return  # a limit of PostgreSQL's regex engine, not a rule of the syntax (the filter accepts these)
                invalid = True
        if invalid:
            with pytest.raises(filters.FilterError):
                filters.parse(filter_text, {"c": "text"})
            return
        (condition,) = filters.parse(filter_text, {"c": "text"})
        assert condition.matches({"c": actual}) == sql_truth(connection, query, [actual, pattern])

    check()
