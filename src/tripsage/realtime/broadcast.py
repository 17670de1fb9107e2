"""Broadcast: a client's message to every client on the same topic (the sender too with `self`, a reply with `ack`),
on this replica directly and on the others through the relay. On a private channel, sending needs the broadcast
write policy (evaluated on the first send, as Supabase); a refused send is dropped without a reply, as there."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from tripsage.exceptions import TripSageError
from tripsage.realtime import authorization, protocol, relay

if TYPE_CHECKING:
    from tripsage.realtime.channels import Channel

log = logging.getLogger(__name__)


async def authorized_to_send(gateway: relay.Node, channel: Channel) -> bool:
    policies = channel.policies or authorization.Policies()
    if policies.broadcast_write is None:
        try:
            policies = await authorization.write(gateway.db, channel.identity, channel.name, policies)
        except authorization.AuthorizationError as error:
            log.warning("realtime: RlsPolicyError on %s: %s", channel.topic, error)
            return False
        channel.policies = policies
    return bool(policies.broadcast_write)


async def handle(gateway: relay.Node, channel: Channel, frame: protocol.Frame) -> None:
    if channel.private and not await authorized_to_send(gateway, channel):
        return
    payload = frame.payload
    if not isinstance(payload, dict):
        if channel.broadcast_ack:
            channel.push(protocol.reply(frame.topic, frame.ref, "error", {"reason": "invalid_payload"}))
        return
    binary = payload.get("binary")
    size = len(binary) if isinstance(binary, bytes) else len(json.dumps(payload, separators=(",", ":")).encode())
    if size > gateway.limits.broadcast_payload_bytes:
        if channel.broadcast_ack:
            channel.push(protocol.reply(frame.topic, frame.ref, "error", {"reason": "payload_size_exceeded"}))
        return
    relay.deliver_broadcast(gateway, channel.topic, channel.private, payload, sender=channel)
    try:
        await relay.send(
            gateway, {"kind": "broadcast", "topic": channel.topic, "private": channel.private, "payload": payload}
        )
    except TripSageError as error:
        log.warning("realtime: broadcast not relayed to other replicas: %s", error)
    if channel.broadcast_ack:
        channel.push(protocol.reply(frame.topic, frame.ref, "ok", {}))
