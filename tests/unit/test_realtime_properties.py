"""Property-based tests (hypothesis) on the gateway's parsers: any frame text and any filter string either parses or
raises the module's own error, never anything else; filters agree with a direct evaluation."""

from __future__ import annotations

import datetime as dt
import decimal
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tripsage.realtime import filters, protocol
from tripsage.realtime.channels import binding_id
from tripsage.realtime.postgres_changes import commit_timestamp

COLUMNS = {
    "id": "int8",
    "name": "text",
    "budget": "numeric",
    "user_id": "uuid",
    "start_date": "date",
    "created_at": "timestamptz",
    "done": "bool",
    "notes": "_text",
    "meta": "jsonb",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_decode_of_any_text_raises_only_protocol_error(text: str) -> None:
    for vsn in protocol.VERSIONS:
        try:
            frame = protocol.decode(text, vsn)
        except protocol.ProtocolError:
            continue
        assert isinstance(frame.topic, str) and isinstance(frame.event, str)


@given(
    st.fixed_dictionaries(
        {"event": json_values, "payload": json_values, "topic": json_values, "ref": json_values},
        optional={"join_ref": json_values},
    )
)
def test_decode_of_any_json_object_raises_only_protocol_error(message: dict[str, object]) -> None:
    try:
        frame = protocol.decode(json.dumps(message))
    except protocol.ProtocolError:
        return
    assert frame.topic == message["topic"] and frame.event == message["event"]
    encoded = json.loads(protocol.encode(frame))
    assert list(encoded) == ["event", "payload", "ref", "topic"]


@given(st.lists(json_values, min_size=0, max_size=7))
def test_decode_v2_arrays(items: list[object]) -> None:
    try:
        frame = protocol.decode(json.dumps(items), protocol.V2)
    except protocol.ProtocolError:
        return
    assert json.loads(protocol.encode(frame, protocol.V2))[2:4] == [frame.topic, frame.event]


filter_text = st.text(alphabet=st.sampled_from(list("idnamebudgt_=.,()-:;'\" 0123456789abcdefxyzTZ+%*")), max_size=40)
operators = st.sampled_from([*filters.OPERATORS, "like", "is", "", "eqq"])


@given(filter_text | st.text(max_size=60))
def test_any_filter_string_parses_or_raises_filter_error(text: str) -> None:
    try:
        conditions = filters.parse(text, COLUMNS)
    except filters.FilterError:
        return
    for condition in conditions:
        assert condition.column in COLUMNS and condition.op in filters.OPERATORS


@given(st.sampled_from(sorted(COLUMNS)), operators, st.text(max_size=20))
def test_structured_filters_parse_or_raise_filter_error(column: str, op: str, value: str) -> None:
    try:
        filters.parse(f"{column}={op}.{value}", COLUMNS)
    except filters.FilterError:
        pass


@given(st.sampled_from(["eq", "neq", "lt", "lte", "gt", "gte"]), st.integers(-50, 50), st.integers(-50, 50) | st.none())
def test_integer_filters_agree_with_python_comparison(op: str, wanted: int, actual: int | None) -> None:
    (condition,) = filters.parse(f"id={op}.{wanted}", COLUMNS)
    expected = {
        "eq": lambda a, b: a == b,
        "neq": lambda a, b: a != b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
    }[op]
    assert condition.matches({"id": actual}) == (actual is not None and expected(actual, wanted))


@given(
    st.lists(st.decimals(allow_nan=False, allow_infinity=False, places=2), min_size=1, max_size=5),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
)
def test_in_filters_on_numeric(values: list[decimal.Decimal], actual: decimal.Decimal) -> None:
    (condition,) = filters.parse("budget=in.(" + ",".join(str(v) for v in values) + ")", COLUMNS)
    # Rows are parsed with parse_float=Decimal (as the change reader does): comparisons are exact.
    row = json.loads(
        json.dumps({"budget": str(actual)}).replace('"' + str(actual) + '"', str(actual)), parse_float=decimal.Decimal
    )
    assert condition.matches(row) == (actual in values)


@given(st.datetimes(timezones=st.just(dt.UTC)), st.datetimes(timezones=st.just(dt.UTC)))
def test_timestamptz_filters(wanted: dt.datetime, actual: dt.datetime) -> None:
    (condition,) = filters.parse(f"created_at=lt.{wanted.isoformat()}", COLUMNS)
    assert condition.matches({"created_at": actual.isoformat()}) == (actual < wanted)


def test_commas_inside_in_lists_do_not_split_filters() -> None:
    conditions = filters.parse("name=in.(a,b,c),id=gte.3", COLUMNS)
    assert [(c.column, c.op, c.values) for c in conditions] == [("name", "in", ("a", "b", "c")), ("id", "gte", (3,))]


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["event", "schema", "table", "filter"]), st.text(max_size=10)))
def test_binding_ids_are_stable_nonzero_and_small(binding: dict[str, str]) -> None:
    assert 0 < binding_id(binding) < 2**27 and binding_id(dict(reversed(binding.items()))) == binding_id(binding)


@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_commit_timestamp_format(value: dt.datetime) -> None:
    text = commit_timestamp(value)
    assert len(text) == 24 and text.endswith("Z") and text[19] == "."
    assert dt.datetime.fromisoformat(text.replace("Z", "+00:00")) == value.replace(
        microsecond=value.microsecond // 1000 * 1000
    )


@given(st.binary(max_size=300))
def test_decode_binary_of_any_bytes_raises_only_protocol_error(data: bytes) -> None:
    try:
        protocol.decode_binary(data)
    except protocol.ProtocolError:
        pass


@given(
    st.text(max_size=60),
    st.text(max_size=60),
    st.binary(max_size=100),
    st.text(max_size=5, alphabet="0123456789"),
    st.text(max_size=5, alphabet="0123456789"),
)
def test_binary_user_broadcast_push_decodes_what_realtime_js_encodes(
    topic: str, event: str, payload: bytes, ref: str, join_ref: str
) -> None:
    # realtime-js's kind-3 layout: kind, join_ref_len, ref_len, topic_len, event_len, meta_len, encoding, fields.
    fields = [join_ref.encode(), ref.encode(), topic.encode(), event.encode(), b'{"persist":true}']
    if any(len(f) > 255 for f in fields):
        return
    frame = bytes([3, *(len(f) for f in fields), protocol.BINARY_ENCODING]) + b"".join(fields) + payload
    message = protocol.decode_binary(frame)
    assert (message.topic, message.event, message.payload) == (topic, event, payload)
    assert (message.ref, message.join_ref, message.meta) == (ref or None, join_ref or None, '{"persist":true}')
    out = protocol.encode_user_broadcast(message)
    assert out[0] == 4 and out.endswith(payload)
