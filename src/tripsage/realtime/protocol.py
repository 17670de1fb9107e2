"""Phoenix channel frames as Supabase Realtime speaks them: V1 JSON objects and V2 JSON arrays.

V1 (`vsn=1.0.0`, the default, the only one realtime-py speaks): the client sends
`{"event", "payload", "topic", "ref", "join_ref"}`; the server sends exactly `event`, `payload`, `ref`, `topic` (never
`join_ref`). Pushes (system, broadcast, postgres_changes, presence_*) carry `"ref": null`, which realtime-py requires.
V2 (`vsn=2.0.0`): `[join_ref, ref, topic, event, payload]` in both directions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tripsage import jsonlimits

V1 = "1.0.0"
V2 = "2.0.0"
VERSIONS = (V1, V2)
TOPIC_PREFIX = "realtime:"
PHOENIX_TOPIC = "phoenix"

# Events
JOIN = "phx_join"
LEAVE = "phx_leave"
REPLY = "phx_reply"
CLOSE = "phx_close"
ERROR = "phx_error"
HEARTBEAT = "heartbeat"
ACCESS_TOKEN = "access_token"
BROADCAST = "broadcast"
PRESENCE = "presence"
PRESENCE_STATE = "presence_state"
PRESENCE_DIFF = "presence_diff"
POSTGRES_CHANGES = "postgres_changes"
SYSTEM = "system"


class ProtocolError(ValueError):
    """A frame that is not a Phoenix message (malformed JSON, a missing key, a wrong type)."""


@dataclass(frozen=True)
class Frame:
    topic: str
    event: str
    payload: Any = field(default_factory=dict)
    ref: str | None = None
    join_ref: str | None = None


def _ref(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ProtocolError(f"{name} must be a string, a number or null")
    return str(value)


def decode(text: str | bytes, vsn: str = V1) -> Frame:
    """A client frame; ProtocolError for anything else."""
    try:
        message = jsonlimits.loads(text)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"malformed JSON: {error}") from error
    if vsn == V2:
        if not isinstance(message, list) or len(message) != 5:
            raise ProtocolError("a V2 frame is an array [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = message
    else:
        if not isinstance(message, dict):
            raise ProtocolError("a V1 frame is a JSON object")
        missing = [key for key in ("topic", "event", "payload", "ref") if key not in message]
        if missing:
            raise ProtocolError(f"missing {', '.join(missing)}")
        topic, event, payload, ref = message["topic"], message["event"], message["payload"], message["ref"]
        join_ref = message.get("join_ref")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise ProtocolError("topic and event must be strings")
    return Frame(topic, event, payload, _ref(ref, "ref"), _ref(join_ref, "join_ref"))


def encode(frame: Frame, vsn: str = V1) -> str:
    if vsn == V2:
        return json.dumps([frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload], separators=(",", ":"))
    return json.dumps(
        {"event": frame.event, "payload": frame.payload, "ref": frame.ref, "topic": frame.topic},
        separators=(",", ":"),
    )


def encode_raw_push(topic_json: str, event: str, payload_json: str, join_ref: str | None, vsn: str = V1) -> str:
    """A push whose payload is already JSON text (the fan-out fast path: serialize a change once)."""
    if vsn == V2:
        return f'[{json.dumps(join_ref)},null,{topic_json},"{event}",{payload_json}]'
    return f'{{"event":"{event}","payload":{payload_json},"ref":null,"topic":{topic_json}}}'


def reply(topic: str, ref: str | None, status: str, response: Any, join_ref: str | None = None) -> Frame:
    return Frame(topic, REPLY, {"response": response, "status": status}, ref, join_ref)


def system(topic: str, extension: str, message: str, status: str = "ok", join_ref: str | None = None) -> Frame:
    channel = topic.removeprefix(TOPIC_PREFIX)
    payload = {"channel": channel, "extension": extension, "message": message, "status": status}
    return Frame(topic, SYSTEM, payload, None, join_ref)


def close(topic: str, join_ref: str | None = None) -> Frame:
    # Phoenix sends phx_close with ref = join_ref; V1 clients (realtime-py) always have a null join_ref.
    return Frame(topic, CLOSE, {}, join_ref, join_ref)


# -- V2 binary frames (realtime-js >= 2.91 sends broadcasts this way) ------------------------------------------------

USER_BROADCAST_PUSH = 3  # client -> server
USER_BROADCAST = 4  # server -> client
BINARY_ENCODING = 0
JSON_ENCODING = 1


@dataclass(frozen=True)
class UserBroadcast:
    """A broadcast as the V2 binary frames carry it: the user event, its payload (raw bytes, or JSON text when
    `encoding` is JSON) and optional metadata (JSON text)."""

    topic: str
    event: str
    payload: bytes
    encoding: int
    meta: str = ""
    ref: str | None = None
    join_ref: str | None = None

    def json_payload(self) -> Any:
        return jsonlimits.loads(self.payload) if self.encoding == JSON_ENCODING else None


def decode_binary(data: bytes) -> UserBroadcast:
    """A kind-3 frame: kind, join_ref_len, ref_len, topic_len, event_len, meta_len, encoding, then the fields."""
    if len(data) < 7 or data[0] != USER_BROADCAST_PUSH:
        raise ProtocolError("unsupported binary frame")
    join_ref_len, ref_len, topic_len, event_len, meta_len, encoding = data[1:7]
    if encoding not in (BINARY_ENCODING, JSON_ENCODING):
        raise ProtocolError("unknown payload encoding")
    offset = 7
    fields = []
    for length in (join_ref_len, ref_len, topic_len, event_len, meta_len):
        if offset + length > len(data):
            raise ProtocolError("truncated binary frame")
        try:
            fields.append(data[offset : offset + length].decode())
        except UnicodeDecodeError as error:
            raise ProtocolError("header fields must be UTF-8") from error
        offset += length
    join_ref, ref, topic, event, meta = fields
    payload = data[offset:]
    if encoding == JSON_ENCODING:
        try:
            jsonlimits.loads(payload)
        except (ValueError, RecursionError) as error:
            raise ProtocolError(f"malformed JSON payload: {error}") from error
    return UserBroadcast(topic, event, payload, encoding, meta, ref or None, join_ref or None)


def encode_user_broadcast(message: UserBroadcast) -> bytes:
    """A kind-4 frame: kind, topic_len, event_len, meta_len, encoding, then topic, event, meta, payload."""
    topic, event, meta = message.topic.encode(), message.event.encode(), message.meta.encode()
    if max(len(topic), len(event), len(meta)) > 255:
        raise ProtocolError("topic, event and metadata must be at most 255 bytes")
    header = bytes([USER_BROADCAST, len(topic), len(event), len(meta), message.encoding])
    return header + topic + event + meta + message.payload
