"""The relay between gateways, and Broadcast from Database.

A client's broadcast or a presence diff is delivered to this replica's channels at once, and stored for the other
gateways as a row of tripsage_realtime.changes (schema `tripsage_realtime`, table `relay`), which only the runtime may
write; every gateway reads that table in commit order (postgres_changes.ChangeReader) and NOTIFY tripsage_realtime only
wakes it. Nothing a NOTIFY carries is trusted, so no database role can reach a client with pg_notify.

Broadcast from Database: a committed broadcast row of realtime.messages (realtime.send, realtime.broadcast_changes or
an INSERT a policy allowed) is captured into the same table (schema `realtime`, table `messages`) and delivered by
every gateway to its channels on the topic: private messages to private channels whose user may read broadcasts,
public ones to public channels, with Supabase's frame (`meta.id` is the message id).

Private and public channels of the same name never see each other's messages: every delivery matches `private`.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from tripsage import queries_for
from tripsage.db.connector import Database
from tripsage.metrics import Metrics
from tripsage.realtime import protocol
from tripsage.realtime.limits import Limits

if TYPE_CHECKING:
    from tripsage.realtime.channels import Channel

log = logging.getLogger(__name__)
Q = queries_for("tripsage.realtime")


class Node(Protocol):
    """What the relay, broadcast and presence read of this replica's gateway (`tripsage.realtime.gateway.Gateway`):
    taken as a protocol, so they need not import the gateway that imports them."""

    db: Database
    id: str
    limits: Limits
    metrics: Metrics | None
    by_topic: dict[str, set[Channel]]


RELAY_KEY = ("tripsage_realtime", "relay")
MESSAGES_KEY = ("realtime", "messages")


async def send(gateway: Node, message: dict[str, Any]) -> None:
    """Relay a message to the other gateways (through the table only the runtime writes)."""
    payload = message.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("binary"), bytes):
        message = {**message, "payload": {**payload, "binary": base64.b64encode(payload["binary"]).decode()}}
    text = json.dumps({**message, "origin": gateway.id}, separators=(",", ":"))
    await gateway.db.execute(Q["relay"], {"message": text})


def receive(gateway: Node, message: Any) -> None:
    """A relayed message read from tripsage_realtime.changes (another gateway's; this one's are skipped)."""
    if not isinstance(message, dict) or message.get("origin") == gateway.id:
        return
    topic = message.get("topic")
    if not isinstance(topic, str):
        return
    private = message.get("private") is True
    kind = message.get("kind")
    if kind == "broadcast":
        body = message.get("payload")
        if isinstance(body, dict) and isinstance(body.get("binary"), str):
            body = {**body, "binary": base64.b64decode(body["binary"])}
        deliver_broadcast(gateway, topic, private, body, sender=None)
    elif kind == "presence_diff":
        deliver_presence_diff(gateway, topic, private, message.get("joins") or {}, message.get("leaves") or {})


def receive_database_broadcast(gateway: Node, row: Any) -> int:
    """A committed broadcast row of realtime.messages, as Supabase sends it; too large a payload is dropped."""
    if not isinstance(row, dict) or not isinstance(row.get("topic"), str) or not isinstance(row.get("event"), str):
        return 0
    payload: dict[str, Any] = {"type": "broadcast", "event": row["event"], "meta": {"id": row.get("id")}}
    payload_json: str | None = None
    if isinstance(row.get("binary"), str):
        payload["binary"] = base64.b64decode(row["binary"])
        size = len(payload["binary"])
    else:
        payload["payload"] = row.get("payload")
        body = json.dumps(row.get("payload"), separators=(",", ":"))
        size = len(body.encode())
        payload_json = (
            f'{{"type":"broadcast","event":{json.dumps(row["event"])},"payload":{body},'
            f'"meta":{json.dumps(payload["meta"], separators=(",", ":"))}}}'
        )
    if size > gateway.limits.broadcast_payload_bytes:
        log.warning("realtime: broadcast from database to %s dropped: payload of %d bytes", row["topic"], size)
        return 0
    topic = protocol.TOPIC_PREFIX + row["topic"]
    return deliver_broadcast(gateway, topic, row.get("private") is True, payload, None, payload_json)


def may_receive_broadcast(channel: Channel, private: bool) -> bool:
    if channel.private != private:
        return False
    return not private or (channel.policies is not None and bool(channel.policies.broadcast_read))


def may_see_presence(channel: Channel, private: bool) -> bool:
    if channel.private != private:
        return False
    return not private or (channel.policies is not None and bool(channel.policies.presence_read))


def deliver_broadcast(
    gateway: Node,
    topic: str,
    private: bool,
    payload: Any,
    sender: object | None,
    payload_json: str | None = None,
) -> int:
    """Send a broadcast to this replica's channels on the topic: V2 sockets get a binary user-broadcast frame (kind
    4), V1 sockets a `broadcast` frame (only for JSON payloads, as Supabase). `payload_json`: the payload already
    serialized, if the caller has it."""
    sent = 0
    binary_frame: bytes | None = None
    binary_impossible = False  # an event, topic or metadata over 255 bytes: no V2 binary frame can carry it
    frames: dict[tuple[str, str | None], str] = {}  # serialized once per (protocol, join_ref): V1 frames are all alike
    for channel in list(gateway.by_topic.get(topic, ())):
        if not may_receive_broadcast(channel, private) or (channel is sender and not channel.broadcast_self):
            continue
        vsn = channel.connection.vsn
        if vsn == protocol.V2 and isinstance(payload, dict) and isinstance(payload.get("event"), str):
            if binary_frame is None and not binary_impossible:
                try:
                    binary_frame = _user_broadcast(topic, payload)
                except protocol.ProtocolError as error:
                    log.warning("realtime: broadcast on %s not sent to V2 sockets: %s", topic, error)
                    binary_impossible = True
            if binary_frame is None:
                continue
            channel.connection.push_text(binary_frame)
        elif isinstance(payload, dict) and "binary" in payload:
            continue
        else:
            join_ref = channel.join_ref if vsn == protocol.V2 else None
            frame = frames.get((vsn, join_ref))
            if frame is None:
                if payload_json is None:
                    payload_json = json.dumps(payload, separators=(",", ":"))
                frame = frames[(vsn, join_ref)] = protocol.encode_raw_push(
                    json.dumps(topic), protocol.BROADCAST, payload_json, join_ref, vsn
                )
            channel.connection.push_text(frame)
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


def deliver_presence_diff(
    gateway: Node, topic: str, private: bool, joins: dict[str, Any], leaves: dict[str, Any]
) -> None:
    sent = 0
    for channel in list(gateway.by_topic.get(topic, ())):
        if channel.presence_enabled and may_see_presence(channel, private):
            frame = protocol.Frame(
                topic, protocol.PRESENCE_DIFF, {"joins": joins, "leaves": leaves}, None, channel.join_ref
            )
            if channel.presence_held is not None:
                channel.presence_held.append(frame)  # its presence_state is being read: sent after it
            else:
                channel.push(frame)
            sent += 1
    if sent and gateway.metrics is not None:
        gateway.metrics.realtime_messages.labels(kind="presence").inc(sent)
