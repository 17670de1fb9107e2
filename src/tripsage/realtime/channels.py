"""One websocket (a Connection) and the channels joined on it: the Phoenix channel protocol as Supabase speaks it.

A connection reads frames, answers heartbeats, joins and leaves channels, and hands broadcast, presence and token
events to the gateway; everything it sends goes through one bounded queue drained by a writer task, so a slow client
can never stall the fan-out (it is disconnected when its queue overflows).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import uuid
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from starlette.websockets import WebSocket, WebSocketDisconnect

from tripsage.clock import Clock
from tripsage.db.connector import Database
from tripsage.metrics import Metrics
from tripsage.realtime import auth, authorization, filters, protocol
from tripsage.realtime.limits import Limits, RateWindow
from tripsage.realtime.wire import Wire
from tripsage.tasks import cancel_all

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
MAX_BATCH = 256  # frames a writer sends in one step (and one write, wire.py)
MAX_TOPIC_BYTES = 255  # a topic must fit Phoenix V2's one-byte length field (Supabase's serializer refuses longer)


class ChannelState(enum.Enum):
    JOINED = "joined"
    CLOSED = "closed"


@dataclass
class Binding:
    """One postgres_changes binding of a channel, with its reply id."""

    id: int
    event: str
    schema: str
    table: str | None
    filter: str | None
    echo: dict[str, Any]
    select: frozenset[str] | None = None
    conditions: tuple[filters.Condition, ...] = ()

    @property
    def all_tables(self) -> bool:
        return self.table is None or self.table == "*"

    def wants(self, schema: str, table: str, change_type: str) -> bool:
        return (
            (self.event == "*" or self.event == change_type)
            and self.schema == schema
            and (self.all_tables or self.table == table)
        )


def binding_id(binding: dict[str, Any]) -> int:
    """A stable nonzero id for a binding (realtime-py ignores id 0), equal for identical bindings."""
    canonical = json.dumps(binding, sort_keys=True, separators=(",", ":"), default=str)
    return (zlib.crc32(canonical.encode()) & 0x7FFFFFF) or 1


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "t", "1", "yes"}
    return bool(value)


@dataclass(eq=False)
class Channel:
    connection: Connection
    topic: str
    join_ref: str | None
    identity: auth.Identity
    bindings: list[Binding] = field(default_factory=list)
    broadcast_self: bool = False
    broadcast_ack: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    private: bool = False
    state: ChannelState = ChannelState.JOINED
    presence_refs: set[str] = field(default_factory=set)
    presence_window: RateWindow | None = None
    policies: authorization.Policies | None = None  # a private channel's (Realtime Authorization)
    presence_held: list[protocol.Frame] | None = None  # diffs held until presence_state is sent (presence.send_state)
    # (schema, table, event) -> the bindings that want such changes (bindings are fixed once the channel is joined)
    routes: dict[tuple[str, str, str], tuple[Binding, ...]] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.topic.removeprefix(protocol.TOPIC_PREFIX)

    @property
    def topic_json(self) -> str:
        return json.dumps(self.topic)

    def push(self, frame: protocol.Frame) -> None:
        self.connection.push(frame)

    def push_system(self, extension: str, message: str, status: str = "ok") -> None:
        self.push(protocol.system(self.topic, extension, message, status, self.join_ref))


class Host(Protocol):
    """What a connection asks of its gateway (`tripsage.realtime.gateway.Gateway`): taken as a protocol, so this
    module need not import the gateway that imports it."""

    db: Database
    secret: str
    clock: Clock
    limits: Limits
    metrics: Metrics | None
    private_only: bool

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None: ...

    def attach(self, channel: Channel) -> None: ...

    async def detach(self, channel: Channel) -> None: ...

    async def subscribe_changes(self, channel: Channel) -> None: ...

    async def reauthorize(self, channel: Channel) -> None: ...

    async def broadcast(self, channel: Channel, frame: protocol.Frame) -> None: ...

    async def presence(self, channel: Channel, frame: protocol.Frame) -> None: ...

    async def send_presence_state(self, channel: Channel) -> None: ...


class Connection:
    """One websocket speaking the Phoenix protocol (V1 JSON objects or V2 arrays)."""

    def __init__(self, gateway: Host, websocket: WebSocket, identity: auth.Identity, vsn: str) -> None:
        self.gateway = gateway
        self.websocket = websocket
        self.identity = identity
        self.vsn = vsn
        self.id = uuid.uuid4().hex
        self.channels: dict[str, Channel] = {}
        limits = gateway.limits
        self._outgoing: asyncio.Queue[str | bytes | None] = asyncio.Queue(maxsize=limits.outgoing_queue)
        self._events = RateWindow(limits.events_per_second)
        self._joins = RateWindow(limits.joins_per_second)
        self._closing: int | None = None

    # -- sending ---------------------------------------------------------------------------------------------

    def push(self, frame: protocol.Frame) -> None:
        self.push_text(protocol.encode(frame, self.vsn))

    def push_text(self, text: str | bytes) -> None:
        """Queue a frame (text, or bytes for a V2 binary frame)."""
        if self._closing is not None:
            return
        try:
            self._outgoing.put_nowait(text)
        except asyncio.QueueFull:
            log.warning(
                "realtime client %s is too slow (%d frames queued); disconnecting", self.id, self._outgoing.qsize()
            )
            self.close(CLOSE_TRY_AGAIN)

    def close(self, code: int = CLOSE_NORMAL) -> None:
        """Close the socket after the frames already queued."""
        if self._closing is None:
            self._closing = code
            with contextlib.suppress(asyncio.QueueFull):
                self._outgoing.put_nowait(None)

    async def _writer(self) -> None:
        metrics = self.gateway.metrics
        sent_counter = metrics.realtime_messages.labels(kind="sent") if metrics is not None else None
        outgoing = self._outgoing
        websocket = self.websocket
        wire = Wire(websocket)
        closing = False
        while not closing:
            # Everything queued goes out in this one task step (a wake-up per frame costs more than its send), in
            # one write to the socket when the server allows it (wire.py). None (close) is always the last frame.
            frames: list[str | bytes | None] = [await outgoing.get()]
            while not outgoing.empty() and len(frames) < MAX_BATCH:
                frames.append(outgoing.get_nowait())
            if frames[-1] is None:
                frames.pop()
                closing = True
            batch = cast("list[str | bytes]", frames)
            if batch and not wire.write(batch):
                for text in batch:
                    if isinstance(text, bytes):
                        await websocket.send_bytes(text)
                    else:
                        await websocket.send_text(text)
            if sent_counter is not None and batch:
                sent_counter.inc(len(batch))
        with contextlib.suppress(Exception):
            await self.websocket.close(self._closing or CLOSE_NORMAL)

    # -- the socket's life -----------------------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer(), name=f"realtime-writer-{self.id}")
        reader = asyncio.create_task(self._reader(), name=f"realtime-reader-{self.id}")
        try:
            await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_all((reader, writer))
            for channel in list(self.channels.values()):
                await self._drop_channel(channel)

    async def _reader(self) -> None:
        limits = self.gateway.limits
        while self._closing is None:
            try:
                message = await asyncio.wait_for(self.websocket.receive(), limits.idle_timeout)
            except TimeoutError:
                self.close(CLOSE_NORMAL)
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            data = text if text is not None else message.get("bytes")
            if data is None:
                continue
            if len(data) > limits.frame_bytes:
                self.close(CLOSE_TOO_BIG)
                return
            if not self._events.allow():
                self._stop_all("Too many messages per second")
                continue
            try:
                if isinstance(data, bytes) and self.vsn == protocol.V2:
                    frame = self._binary_broadcast(protocol.decode_binary(data))
                else:
                    frame = protocol.decode(data, self.vsn)
            except protocol.ProtocolError as error:
                log.debug("realtime client %s sent a malformed frame: %s", self.id, error)
                continue
            try:
                await self.handle(frame)
            except WebSocketDisconnect:
                return
            except Exception:  # one bad frame must never kill the socket or the gateway
                log.exception("realtime: error handling %s on %s", frame.event, frame.topic)
                channel = self.channels.get(frame.topic)
                if channel is not None:
                    self.push(
                        protocol.Frame(frame.topic, protocol.ERROR, {"reason": "channel_crash"}, channel.join_ref)
                    )
                    await self._drop_channel(channel)

    @staticmethod
    def _binary_broadcast(message: protocol.UserBroadcast) -> protocol.Frame:
        """A V2 binary broadcast as the broadcast frame the rest of the gateway handles."""
        payload: dict[str, Any] = {"type": "broadcast", "event": message.event}
        if message.encoding == protocol.JSON_ENCODING:
            payload["payload"] = message.json_payload()
        else:
            payload["binary"] = message.payload
        if message.meta:
            try:
                payload["meta"] = json.loads(message.meta)
            except ValueError as error:
                raise protocol.ProtocolError("metadata must be JSON") from error
        return protocol.Frame(message.topic, protocol.BROADCAST, payload, message.ref, message.join_ref)

    def _stop_all(self, reason: str) -> None:
        for channel in list(self.channels.values()):
            self.gateway.spawn(self.stop_channel(channel, reason))

    # -- frames ----------------------------------------------------------------------------------------------

    async def handle(self, frame: protocol.Frame) -> None:
        if frame.topic == protocol.PHOENIX_TOPIC:
            if frame.event == protocol.HEARTBEAT:
                self.push(protocol.reply(frame.topic, frame.ref, "ok", {}, frame.join_ref))
            return
        if frame.event == protocol.JOIN:
            await self.join(frame)
            return
        channel = self.channels.get(frame.topic)
        if channel is None:
            self.push(protocol.reply(frame.topic, frame.ref, "error", {"reason": "unmatched topic"}, frame.join_ref))
            return
        if frame.event == protocol.LEAVE:
            self.push(protocol.reply(frame.topic, frame.ref, "ok", {}, channel.join_ref))
            await self._drop_channel(channel)
            self.push(protocol.close(frame.topic, channel.join_ref))
        elif frame.event == protocol.ACCESS_TOKEN:
            await self.refresh_token(channel, frame.payload)
        elif frame.event == protocol.BROADCAST:
            await self.gateway.broadcast(channel, frame)
        elif frame.event == protocol.PRESENCE:
            await self.gateway.presence(channel, frame)
        else:
            self.push(protocol.reply(frame.topic, frame.ref, "error", {"reason": f"unknown event {frame.event!r}"}))

    def _join_error(self, frame: protocol.Frame, reason: str) -> None:
        self.push(protocol.reply(frame.topic, frame.ref, "error", {"reason": reason}, frame.join_ref))

    async def join(self, frame: protocol.Frame) -> None:
        if not frame.topic.startswith(protocol.TOPIC_PREFIX):
            self._join_error(frame, "unmatched topic")
            return
        if frame.topic == protocol.TOPIC_PREFIX:
            self._join_error(frame, "TopicNameRequired: You must provide a topic name")
            return
        if len(frame.topic.removeprefix(protocol.TOPIC_PREFIX).encode()) > MAX_TOPIC_BYTES:
            self._join_error(frame, f"TopicNameTooLong: The topic name must be at most {MAX_TOPIC_BYTES} bytes")
            return
        if not self._joins.allow():
            self._join_error(frame, "ClientJoinRateLimitReached: Too many joins per second")
            return
        payload: dict[str, Any] = frame.payload if isinstance(frame.payload, dict) else {}
        config = _mapping(payload.get("config"))
        identity = self.identity
        token = payload.get("access_token", payload.get("user_token"))
        if isinstance(token, str) and not auth.is_ignored(token):
            try:
                identity = auth.identify(self.gateway.secret, token)
            except auth.TokenError as error:
                self._join_error(frame, str(error))
                return
        elif identity.expires_at <= self.gateway.clock.time():
            self._join_error(frame, "InvalidJWTToken: Token has expired 0 seconds ago")
            return
        old = self.channels.get(frame.topic)
        if old is not None:  # a rejoin of the same topic replaces the old join
            await self._drop_channel(old)
        if len(self.channels) >= self.gateway.limits.channels_per_socket:
            self._join_error(frame, "ChannelRateLimitReached: Too many channels")
            return
        private = as_bool(config.get("private", False))
        if not private and self.gateway.private_only:
            self._join_error(frame, "PrivateOnly: This project only allows private channels")
            return
        broadcast = _mapping(config.get("broadcast"))
        presence = _mapping(config.get("presence"))
        presence_enabled = as_bool(presence.get("enabled", False))
        name = frame.topic.removeprefix(protocol.TOPIC_PREFIX)
        policies: authorization.Policies | None = None
        if private:
            try:
                policies = await authorization.read(self.gateway.db, identity, name, presence=presence_enabled)
            except authorization.AuthorizationError as error:
                log.warning("realtime: RlsPolicyError on %s: %s", frame.topic, error)
            if policies is None or not policies.may_join:
                self._join_error(
                    frame, f"Unauthorized: You do not have permissions to read from this Channel topic: {name}"
                )
                return
        raw_bindings = config.get("postgres_changes")
        channel = Channel(
            connection=self,
            topic=frame.topic,
            join_ref=frame.join_ref,
            identity=identity,
            broadcast_self=as_bool(broadcast.get("self", False)),
            broadcast_ack=as_bool(broadcast.get("ack", False)),
            presence_key=str(presence.get("key") or ""),
            presence_enabled=presence_enabled,
            private=private,
            policies=policies,
            presence_held=[] if presence_enabled else None,
            presence_window=RateWindow(
                self.gateway.limits.presence_events_per_window, self.gateway.limits.presence_window
            ),
        )
        echoed = []
        if isinstance(raw_bindings, list):
            for raw in raw_bindings:
                if not isinstance(raw, dict):
                    continue
                echo = {k: raw[k] for k in ("event", "schema", "table", "filter", "select") if k in raw}
                select = raw.get("select")
                binding = Binding(
                    id=binding_id(echo),
                    event=str(raw.get("event", "*")),
                    schema=str(raw.get("schema") or "public"),
                    table=raw.get("table") if isinstance(raw.get("table"), str) else None,
                    filter=raw.get("filter") if isinstance(raw.get("filter"), str) else None,
                    echo=echo,
                    select=frozenset(str(c) for c in select) if isinstance(select, list) and select else None,
                )
                channel.bindings.append(binding)
                echoed.append({**echo, "id": binding.id})
        self.channels[frame.topic] = channel
        self.gateway.attach(channel)
        self.push(protocol.reply(frame.topic, frame.ref, "ok", {"postgres_changes": echoed}, frame.join_ref))
        if as_bool(broadcast.get("replication_ready", False)):
            channel.push_system("system", "Replication connection established")
        if channel.presence_enabled:
            await self.gateway.send_presence_state(channel)
        if channel.bindings:
            await self.gateway.subscribe_changes(channel)

    async def refresh_token(self, channel: Channel, payload: Any) -> None:
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if auth.is_ignored(token) or token == channel.identity.token:
            return
        assert isinstance(token, str)
        try:
            identity = auth.identify(self.gateway.secret, token)
        except auth.TokenError as error:
            await self.stop_channel(channel, error.message)
            return
        if channel.private:
            # As Supabase: the policies are evaluated again with the new claims (writes on the next send or track);
            # no read left, or a read the old token had and this one has not, ends the channel.
            previous = channel.policies or authorization.Policies()
            try:
                policies = await authorization.read(
                    self.gateway.db, identity, channel.name, presence=previous.presence_read is not None
                )
            except authorization.AuthorizationError as error:
                log.warning("realtime: RlsPolicyError on %s: %s", channel.topic, error)
                policies = authorization.Policies(broadcast_read=False, presence_read=False)
            if not policies.may_join:
                await self.stop_channel(
                    channel, f"You do not have permissions to read from this Channel topic: {channel.name}"
                )
                return
            if (previous.broadcast_read and not policies.broadcast_read) or (
                previous.presence_read and not policies.presence_read
            ):
                await self.stop_channel(
                    channel, f"You no longer have permission to read from this Channel topic: {channel.name}"
                )
                return
            channel.policies = policies
        channel.identity = identity
        await self.gateway.reauthorize(channel)

    async def stop_channel(self, channel: Channel, reason: str) -> None:
        """Supabase's way to end a channel: a system error, then phx_close (realtime-py drops it, no rejoin)."""
        if channel.state is ChannelState.CLOSED:
            return
        channel.push_system("system", reason, "error")
        await self._drop_channel(channel)
        self.push(protocol.close(channel.topic, channel.join_ref))

    async def _drop_channel(self, channel: Channel) -> None:
        if channel.state is ChannelState.CLOSED:
            return
        channel.state = ChannelState.CLOSED
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        await self.gateway.detach(channel)
