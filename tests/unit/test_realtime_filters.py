"""Parsing of postgres_changes filters as Supabase Realtime reads them (supabase/realtime
`lib/extensions/postgres_cdc_rls/subscriptions.ex` and `realtime.subscription_check_filters`): quoting, `not.`,
in-lists as array literals, and the errors. Agreement with PostgreSQL's evaluation is checked in
tests/integration/realtime/test_filters_agree_with_postgres.py."""

from __future__ import annotations

import pytest

from tripsage.realtime import filters

COLUMNS = {
    "id": "int8",
    "title": "text",
    "status": "text",
    "code": "bpchar",
    "label": "varchar",
    "done": "bool",
    "meta": "jsonb",
    "trip": "uuid",
}


def parsed(text: str) -> list[tuple[str, str, tuple[object, ...], bool]]:
    return [(c.column, c.op, c.values, c.negate) for c in filters.parse(text, COLUMNS)]


def passes(text: str, row: dict[str, object]) -> bool:
    return filters.matches(filters.parse(text, COLUMNS), row)


# --- quoting -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('title=eq."a,b"', "a,b"),
        ('title=eq."a.b:c(d)"', "a.b:c(d)"),
        ('title=eq."she said \\"hi\\""', 'she said "hi"'),
        ('title=eq."C:\\\\tmp"', "C:\\tmp"),
        ('title=eq."C:\\new"', "C:new"),  # a backslash escapes whatever follows
        ('title=eq.""', ""),
        ('title=eq." a "', " a "),
        ('title=eq.O\'Brien "x"', 'O\'Brien "x"'),  # not at the start: taken literally
        ('title=eq."unterminated', '"unterminated'),
        ('title=eq."ab"cd', '"ab"cd'),  # characters after the closing quote: the whole value is literal
        ("title=eq.x)", "x)"),
        ("title=eq.", ""),
    ],
)
def test_quoted_values(text: str, value: str) -> None:
    assert parsed(text) == [("title", "eq", (value,), False)]


def test_a_quoted_comma_does_not_split_the_filter() -> None:
    assert parsed('title=eq."a,b",id=gt.0') == [("title", "eq", ("a,b",), False), ("id", "gt", (0,), False)]


def test_a_quote_inside_a_value_does_not_protect_a_comma() -> None:
    assert parsed('title=eq.5" tall,id=gt.0') == [("title", "eq", ('5" tall',), False), ("id", "gt", (0,), False)]


def test_closing_parentheses_in_bare_values() -> None:
    assert parsed("title=eq.x),status=eq.y),id=eq.1") == [
        ("title", "eq", ("x)",), False),
        ("status", "eq", ("y)",), False),
        ("id", "eq", (1,), False),
    ]


def test_quoted_values_of_other_operators() -> None:
    assert passes('title=like."a,b%"', {"title": "a,bc"})
    assert passes('title=match."^\\\\(x\\\\)$"', {"title": "(x)"})  # the regex ^\(x\)$ after unquoting
    assert passes('id=isdistinct."5"', {"id": 6})


# --- in-lists -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("status=in.(a,b)", ("a", "b")),
        ('status=in.("a,b",c)', ("a,b", "c")),
        ('status=in.("a,b","c,d")', ("a,b", "c,d")),
        ('status=in.("(x)","y\\"z","back\\\\slash")', ("(x)", 'y"z', "back\\slash")),
        ("status=in.( a , b c )", ("a", "b c")),  # bare members are trimmed, as PostgreSQL does
        ('status=in.(" a ")', (" a ",)),
        ("status=in.(NULL,null,a)", (None, None, "a")),  # bare NULL is a null member
        ('status=in.("NULL")', ("NULL",)),
        ("status=in.(a\\,b)", ("a,b",)),  # a backslash escapes in a bare member too
        ("status=in.()", ()),
        ("id=in.(1, 2,3)", (1, 2, 3)),
    ],
)
def test_in_lists(text: str, values: tuple[object, ...]) -> None:
    ((_, op, got, negate),) = parsed(text)
    assert (op, got, negate) == ("in", values, False)


def test_in_list_null_members_follow_sql() -> None:
    assert passes("status=in.(a,NULL)", {"status": "a"})
    assert not passes("status=in.(a,NULL)", {"status": "b"})  # NULL, not false
    assert not passes("status=not.in.(a,NULL)", {"status": "b"})  # NOT NULL is NULL: still no
    assert passes("status=not.in.(a)", {"status": "b"})
    assert not passes("status=in.()", {"status": "b"}) and passes("status=not.in.()", {"status": "b"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status=in.a,b", "`in` filter value must be wrapped by parentheses"),
        ("status=in.{a,b}", "`in` filter value must be wrapped by parentheses"),
        ("status=in.(a,{b})", "malformed array literal"),
        ("status=in.(a,,b)", "malformed array literal"),
        ('status=in.("a)', "malformed array literal"),
        ('status=in.("a"b)', "malformed array literal"),
        ("id=in.(1,x)", "invalid value for column 'id' of type int8"),
        ("id=in.(" + ",".join(str(n) for n in range(101)) + ")", "too many values for `in` filter. Maximum 100"),
    ],
)
def test_in_list_errors(text: str, message: str) -> None:
    with pytest.raises(filters.FilterError, match=message.replace("(", r"\(").replace("{", r"\{")):
        filters.parse(text, COLUMNS)


def test_one_hundred_members_are_allowed() -> None:
    ((_, _, values, _),) = parsed("id=in.(" + ",".join(str(n) for n in range(100)) + ")")
    assert len(values) == 100


# --- not. -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "row", "plain", "negated"),
    [
        ("id=eq.5", {"id": 5}, True, False),
        ("id=neq.5", {"id": 5}, False, True),
        ("id=lt.5", {"id": 4}, True, False),
        ("id=lte.5", {"id": 6}, False, True),
        ("id=gt.5", {"id": 6}, True, False),
        ("id=gte.5", {"id": 4}, False, True),
        ("id=in.(1,5)", {"id": 5}, True, False),
        ("title=like.Par%", {"title": "Paris"}, True, False),
        ("title=like.par%", {"title": "Paris"}, False, True),
        ("title=ilike.par%", {"title": "Paris"}, True, False),
        ("title=match.^P.r", {"title": "Paris"}, True, False),
        ("title=imatch.^p.R", {"title": "Paris"}, True, False),
        ("title=isdistinct.Paris", {"title": "Paris"}, False, True),
        ("title=isdistinct.Paris", {"title": None}, True, False),
        ("title=is.null", {"title": None}, True, False),
        ("title=is.null", {"title": "x"}, False, True),
        ("done=is.true", {"done": True}, True, False),
        ("done=is.true", {"done": None}, False, True),  # IS NOT TRUE holds for NULL
        ("done=is.false", {"done": False}, True, False),
        ("done=is.unknown", {"done": None}, True, False),
        ("done=is.unknown", {"done": False}, False, True),
    ],
)
def test_not_negates_every_operator(text: str, row: dict[str, object], plain: bool, negated: bool) -> None:
    column, rest = text.split("=", 1)
    (condition,) = filters.parse(f"{column}=not.{rest}", COLUMNS)
    assert condition.negate and condition.op == rest.split(".", 1)[0]
    assert passes(text, row) is plain
    assert passes(f"{column}=not.{rest}", row) is negated


@pytest.mark.parametrize("op", ["eq.5", "neq.5", "lt.5", "lte.5", "gt.5", "gte.5", "in.(5)"])
def test_a_null_column_passes_neither_a_comparison_nor_its_negation(op: str) -> None:
    assert not passes(f"id={op}", {"id": None})
    assert not passes(f"id=not.{op}", {"id": None})


@pytest.mark.parametrize("op", ["like.%", "ilike.%", "match..*", "imatch..*"])
def test_a_null_text_matches_no_pattern(op: str) -> None:
    assert not passes(f"title={op}", {"title": None})
    assert not passes(f"title=not.{op}", {"title": None})


def test_a_column_missing_from_the_row_fails_every_filter() -> None:
    # DELETE is filtered on the old record, which holds only the key without REPLICA IDENTITY FULL.
    for text in ("status=eq.x", "status=not.eq.x", "status=is.null", "status=isdistinct.x"):
        assert not passes(text, {"id": 1})


def test_is_null_works_on_any_column_type() -> None:
    assert passes("meta=is.null", {"meta": None})
    assert passes("meta=not.is.null", {"meta": {"a": 1}})


# --- like and match details ---------------------------------------------------------------------------------


def test_like_wildcards_and_escapes() -> None:
    assert passes("title=like.a_c", {"title": "abc"}) and not passes("title=like.a_c", {"title": "abbc"})
    assert passes("title=like.%paris%", {"title": "to paris!"})
    assert passes("title=like.100\\%", {"title": "100%"}) and not passes("title=like.100\\%", {"title": "1000"})
    assert passes("title=like.a\\_b", {"title": "a_b"}) and not passes("title=like.a\\_b", {"title": "axb"})
    # `*` is not a wildcard: Supabase passes the pattern to LIKE unchanged (PostgREST's URL alias is not applied)
    assert not passes("title=ilike.*paris*", {"title": "to Paris!"})
    assert passes("title=ilike.*paris*", {"title": "*Paris*"})


def test_case_folding_is_ascii_only_as_in_a_c_collation_database() -> None:
    assert passes("title=ilike.ÉCOLE", {"title": "École"})  # É is unchanged, the ASCII letters fold
    assert not passes("title=ilike.école", {"title": "École"})
    assert not passes("title=imatch.^é", {"title": "École"})


def test_char_n_patterns_drop_trailing_spaces_as_the_cast_does() -> None:
    assert passes("code=like.ab%", {"code": "ab "})
    assert not passes("code=like.ab ", {"code": "ab "})


def test_regex_features() -> None:
    assert passes("title=match.^(?:ab|cd)+$", {"title": "abcdab"})
    assert passes('title=match."[[:digit:]]{2,3}"', {"title": "x12"})  # quoted: it holds a comma
    assert passes("title=match.\\mparis\\M", {"title": "to paris now"})
    assert not passes("title=match.\\mparis\\M", {"title": "toparis"})
    assert passes("title=match.a.b", {"title": "a\nb"})  # `.` matches a newline, as in PostgreSQL
    assert not passes("title=match.a$", {"title": "a\n"})  # `$` is the end of the string only
    assert passes("title=imatch.[^a]", {"title": "aB"}) and not passes("title=imatch.[^a]", {"title": "aA"})


def test_regexes_run_in_linear_time() -> None:
    # A backtracking engine would never return here (2**20000 ways to split the a's); the matcher walks the text
    # once. No time is asserted: the suite's own completion is the check.
    (condition,) = filters.parse("title=match.(a+)+$", COLUMNS)
    assert not condition.matches({"title": "a" * 20_000 + "!"})


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id=gt.0,", "filter must not contain empty segments"),
        (",id=gt.0", "filter must not contain empty segments"),
        ("id=eq.1,,id=eq.2", "filter must not contain empty segments"),
        ("undefined", "is not column=operator.value"),
        ("id=eq", "is not column=operator.value"),
        ("id=not.5", "is not column=operator.value"),
        ("id=foo.5", "unknown operator 'foo'"),
        ("id=not.foo.5", "unknown operator 'foo'"),
        ("nope=eq.1", "invalid column for filter nope"),
        ("id=eq.abc", "invalid value for column 'id' of type int8"),
        ("id=isdistinct.abc", "invalid value for column 'id' of type int8"),
        ("trip=lt.1", "operator lt does not apply to type uuid"),
        ("meta=eq.1", "filters on column 'meta' of type jsonb are not supported"),
        ("title=is.NULL", "invalid value for is filter: must be null, true, false, or unknown"),
        ("title=is.nothing", "invalid value for is filter: must be null, true, false, or unknown"),
        ("title=is.true", "is true filter requires a boolean column, got text"),
        ("id=is.unknown", "is unknown filter requires a boolean column, got int8"),
        ("id=like.1", "operator like requires a text-compatible column type, got int8"),
        ("label=ilike.a%", "operator ilike requires a text-compatible column type, got varchar"),
        ("code=match.a", "operator match requires a text-compatible column type, got bpchar"),
        ("done=imatch.t", "operator imatch requires a text-compatible column type, got bool"),
        ("title=like.a\\", "LIKE pattern must not end with escape character"),
        ("title=like." + "a" * 1001, "a pattern is limited to 1000 characters"),
        ("title=match." + "a" * 1001, "a pattern is limited to 1000 characters"),
        ("title=match.(a", "invalid regular expression for match filter: .*parentheses"),
        ("title=match.a)", "parentheses \\(\\) not balanced"),
        ("title=imatch.a**", "quantifier operand invalid"),
        ("title=match.*a", "quantifier operand invalid"),
        ("title=match.^*", "quantifier operand invalid"),
        ("title=match.[b-a]", "invalid character range"),
        ("title=match.[[:nope:]]", "invalid character class"),
        ("title=match.[a", "brackets \\[\\] not balanced"),
        ('title=match."a{2,1}"', "invalid repetition count"),  # a comma needs quotes
        ("title=match.a{256}", "invalid repetition count"),
        ("title=match.a{1", "braces \\{\\} not balanced"),
        ("title=match.\\q", "invalid escape"),
        ("title=match.((a{200}){200}){200}", "too complex"),
        ("title=match.(a)\\1", "back-references are not supported"),
        ("title=match.(?=a)", "lookaround constraints and embedded options are not supported"),
        ("title=match.(?i)a", "lookaround constraints and embedded options are not supported"),
        ("title=match.[[.a.]]", "collating elements"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(filters.FilterError, match=message):
        filters.parse(text, COLUMNS)


def test_filter_must_be_a_string_and_blank_means_none() -> None:
    with pytest.raises(filters.FilterError, match="filter must be a string"):
        filters.parse(5, COLUMNS)  # type: ignore[arg-type]
    assert filters.parse("   ", COLUMNS) == () and filters.parse(None, COLUMNS) == ()


def test_conditions_are_hashable_and_equal_by_text() -> None:
    # The gateway evaluates each distinct tuple of conditions once per change: equal filters must hash equally.
    first = filters.parse("title=match.^a,id=not.in.(1,2)", COLUMNS)
    second = filters.parse("title=match.^a,id=not.in.(1,2)", COLUMNS)
    assert first == second and hash(first) == hash(second)
    assert filters.parse("id=not.eq.1", COLUMNS) != filters.parse("id=eq.1", COLUMNS)
