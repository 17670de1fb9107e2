"""Presence: who is on a topic. The state lives in tripsage_realtime.presence (shared by every replica), keyed by
(topic, private): a private channel's presence is never the public channel's of the same name. Each track or untrack
is sent as a presence_diff here and relayed to the other replicas. Metas carry `phx_ref`, which realtime-py requires.
On a private channel, seeing presence needs the presence read policy and tracking the presence write policy
(authorization.py)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from tripsage import queries_for
from tripsage.realtime import authorization, protocol, relay

if TYPE_CHECKING:
    from tripsage.realtime.channels import Channel

log = logging.getLogger(__name__)
Q = queries_for("tripsage.realtime")


def _metas(entries: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    grouped: dict[str, Any] = {}
    for key, phx_ref, meta in entries:
        grouped.setdefault(key, {"metas": []})["metas"].append({**meta, "phx_ref": phx_ref})
    return grouped


async def _diff(gateway: relay.Node, topic: str, private: bool, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
    relay.deliver_presence_diff(gateway, topic, private, joins, leaves)
    message = {"kind": "presence_diff", "topic": topic, "private": private, "joins": joins, "leaves": leaves}
    await relay.send(gateway, message)


async def handle(gateway: relay.Node, channel: Channel, frame: protocol.Frame) -> None:
    payload = frame.payload if isinstance(frame.payload, dict) else {}
    event = payload.get("event")
    if channel.presence_window is not None and not channel.presence_window.allow():
        await channel.connection.stop_channel(channel, "Too many presence messages per second")
        return
    if event == "track":
        meta = payload.get("payload", {})
        if not isinstance(meta, dict):
            channel.push(
                protocol.reply(frame.topic, frame.ref, "error", {"reason": "Presence track payload must be a map"})
            )
            return
        if channel.private and not await authorized_to_track(gateway, channel):
            channel.push(protocol.reply(frame.topic, frame.ref, "error", {}))  # as Supabase: no reason given
            return
        await track(gateway, channel, meta)
        channel.push(protocol.reply(frame.topic, frame.ref, "ok", {}))
    elif event == "untrack":
        for ref in list(channel.presence_refs):
            await untrack(gateway, channel, ref)
        channel.push(protocol.reply(frame.topic, frame.ref, "ok", {}))
    else:
        channel.push(protocol.reply(frame.topic, frame.ref, "error", {"reason": f"unknown presence event {event!r}"}))


async def authorized_to_track(gateway: relay.Node, channel: Channel) -> bool:
    """May the channel's user track presence on its private topic? Evaluated once (and after a token refresh)."""
    policies = channel.policies or authorization.Policies()
    try:
        if policies.presence_read is None:  # presence was not enabled at the join: read it now, as Supabase
            read = await authorization.read(gateway.db, channel.identity, channel.name, presence=True)
            policies.presence_read = read.presence_read
        if policies.presence_write is None:
            policies = await authorization.write(gateway.db, channel.identity, channel.name, policies)
    except authorization.AuthorizationError as error:
        log.warning("realtime: RlsPolicyError on %s: %s", channel.topic, error)
        return False
    channel.policies = policies
    if policies.presence_read and not channel.presence_enabled:
        channel.presence_enabled = True
    return bool(policies.presence_write)


async def track(gateway: relay.Node, channel: Channel, meta: dict[str, Any]) -> None:
    if not channel.presence_key:
        channel.presence_key = str(uuid.uuid1())
    phx_ref = uuid.uuid4().hex[:16]
    leaves: list[tuple[str, str, dict[str, Any]]] = []
    for old in list(channel.presence_refs):  # re-tracking replaces the channel's entry
        row = await gateway.db.fetch_one(
            Q["presence_untrack"], {"topic": channel.topic, "private": channel.private, "phx_ref": old}
        )
        channel.presence_refs.discard(old)
        if row is not None:
            leaves.append((row["key"], row["phx_ref"], json.loads(row["meta"])))
    params = {
        "topic": channel.topic,
        "key": channel.presence_key,
        "phx_ref": phx_ref,
        "gateway_id": gateway.id,
        "meta": json.dumps(meta),
        "private": channel.private,
    }
    await gateway.db.execute(Q["presence_track"], params)
    channel.presence_refs.add(phx_ref)
    joined = {**meta}
    if leaves:
        joined["phx_ref_prev"] = leaves[0][1]
    joins = _metas([(channel.presence_key, phx_ref, joined)])
    await _diff(gateway, channel.topic, channel.private, joins, _metas(leaves))


async def untrack(gateway: relay.Node, channel: Channel, phx_ref: str) -> None:
    channel.presence_refs.discard(phx_ref)
    params = {"topic": channel.topic, "private": channel.private, "phx_ref": phx_ref}
    row = await gateway.db.fetch_one(Q["presence_untrack"], params)
    if row is not None:
        leaves = _metas([(row["key"], row["phx_ref"], json.loads(row["meta"]))])
        await _diff(gateway, channel.topic, channel.private, {}, leaves)


async def send_state(gateway: relay.Node, channel: Channel) -> None:
    """The presence_state after a join. Diffs that arrive while the state is read are held and sent after it: a
    client replaces its state with presence_state, so a diff sent before it would be lost (and repeating a join the
    state already holds is harmless: clients merge metas by phx_ref)."""
    try:
        if not relay.may_see_presence(channel, channel.private):
            return
        rows = await gateway.db.fetch_all(Q["presence_list"], {"topic": channel.topic, "private": channel.private})
        state = _metas([(row["key"], row["phx_ref"], json.loads(row["meta"])) for row in rows])
        channel.push(protocol.Frame(channel.topic, protocol.PRESENCE_STATE, state, None, channel.join_ref))
    finally:
        held, channel.presence_held = channel.presence_held, None
        for frame in held or ():
            channel.push(frame)


async def expire_gateways(gateway: relay.Node, timeout: float) -> None:
    """Remove gateways silent for `timeout` seconds, and send leaves for their presences."""
    await _leaves(gateway, await gateway.db.fetch_all(Q["expire_gateways"], {"timeout_s": timeout}))


async def drop_own(gateway: relay.Node) -> None:
    """This gateway stops: remove its presences and tell the other replicas."""
    await _leaves(gateway, await gateway.db.fetch_all(Q["presence_drop_gateway"], {"gateway_id": gateway.id}))


async def _leaves(gateway: relay.Node, rows: list[dict[str, Any]]) -> None:
    by_topic: dict[tuple[str, bool], list[tuple[str, str, dict[str, Any]]]] = {}
    for row in rows:
        entry = (row["key"], row["phx_ref"], json.loads(row["meta"]))
        by_topic.setdefault((row["topic"], row["private"]), []).append(entry)
    for (topic, private), leaves in by_topic.items():
        await _diff(gateway, topic, private, {}, _metas(leaves))
