"""The relay between gateways: broadcasts and presence diffs travel through PostgreSQL.

A message goes out as NOTIFY tripsage_realtime_relay with a JSON payload; one larger than the NOTIFY limit is stored in
tripsage_realtime.relay and only its id is notified. Every gateway (this one included) receives it; each ignores its
own messages, which it delivered locally already.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any

from tripsage import queries_for
from tripsage.exceptions import TripSageError
from tripsage.realtime import protocol

if TYPE_CHECKING:
    from tripsage.realtime.gateway import Gateway

log = logging.getLogger(__name__)
Q = queries_for("tripsage.realtime")

NOTIFY_LIMIT = 7900  # bytes: PostgreSQL's NOTIFY payload limit is 8000


async def send(gateway: Gateway, message: dict[str, Any]) -> None:
    """Relay a message to the other gateways (NOTIFY, or the side table for a large one)."""
    payload = message.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("binary"), bytes):
        message = {**message, "payload": {**payload, "binary": base64.b64encode(payload["binary"]).decode()}}
    text = json.dumps({**message, "origin": gateway.id}, separators=(",", ":"))
    if len(text.encode()) <= NOTIFY_LIMIT:
        await gateway.db.execute(Q["relay_notify"], {"payload": text})
    else:
        await gateway.db.execute(Q["relay_store"], {"message": text})


async def receive(gateway: Gateway, payload: str) -> None:
    try:
        message = json.loads(payload)
        if isinstance(message, dict) and "stored" in message and "origin" not in message:
            stored = await gateway.db.fetch_value(Q["relay_fetch"], {"id": int(message["stored"])})
            if stored is None:
                return
            message = json.loads(stored)
    except (ValueError, TripSageError) as error:
        log.warning("realtime relay: unreadable message (%s)", error)
        return
    if not isinstance(message, dict) or message.get("origin") == gateway.id:
        return
    topic = message.get("topic")
    if not isinstance(topic, str):
        return
    kind = message.get("kind")
    if kind == "broadcast":
        body = message.get("payload")
        if isinstance(body, dict) and isinstance(body.get("binary"), str):
            body = {**body, "binary": base64.b64decode(body["binary"])}
        deliver_broadcast(gateway, topic, bool(message.get("private")), body, sender=None)
    elif kind == "presence_diff":
        deliver_presence_diff(gateway, topic, message.get("joins") or {}, message.get("leaves") or {})


def deliver_broadcast(gateway: Gateway, topic: str, private: bool, payload: Any, sender: object | None) -> int:
    """Send a broadcast to this replica's channels on the topic: V2 sockets get a binary user-broadcast frame (kind
    4), V1 sockets a `broadcast` frame (only for JSON payloads, as Supabase)."""
    sent = 0
    binary_frame: bytes | None = None
    for channel in list(gateway.by_topic.get(topic, ())):
        if channel.private != private or (channel is sender and not channel.broadcast_self):
            continue
        if (
            channel.connection.vsn == protocol.V2
            and isinstance(payload, dict)
            and isinstance(payload.get("event"), str)
        ):
            if binary_frame is None:
                binary_frame = _user_broadcast(topic, payload)
            channel.connection.push_text(binary_frame)
        elif isinstance(payload, dict) and "binary" in payload:
            continue
        else:
            channel.push(protocol.Frame(topic, protocol.BROADCAST, payload, None, channel.join_ref))
        sent += 1
    if sent and gateway.metrics is not None:
        gateway.metrics.realtime_messages.labels(kind="broadcast").inc(sent)
    return sent


def _user_broadcast(topic: str, payload: dict[str, Any]) -> bytes:
    binary = payload.get("binary")
    meta = json.dumps(payload["meta"], separators=(",", ":")) if "meta" in payload else ""
    if isinstance(binary, bytes):
        body, encoding = binary, protocol.BINARY_ENCODING
    else:
        body = json.dumps(payload.get("payload"), separators=(",", ":")).encode()
        encoding = protocol.JSON_ENCODING
    return protocol.encode_user_broadcast(protocol.UserBroadcast(topic, payload["event"], body, encoding, meta))


def deliver_presence_diff(gateway: Gateway, topic: str, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
    sent = 0
    for channel in list(gateway.by_topic.get(topic, ())):
        if channel.presence_enabled:
            channel.push(
                protocol.Frame(
                    topic, protocol.PRESENCE_DIFF, {"joins": joins, "leaves": leaves}, None, channel.join_ref
                )
            )
            sent += 1
    if sent and gateway.metrics is not None:
        gateway.metrics.realtime_messages.labels(kind="presence").inc(sent)
