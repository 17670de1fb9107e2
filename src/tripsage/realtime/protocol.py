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
        message = json.loads(text)
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
