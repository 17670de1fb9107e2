"""The gateway of one runtime process: who is subscribed to what, the change fan-out, and the relay of broadcasts and
presence between replicas.

postgres_changes: each change carries its audience (computed once, in the writer's transaction, by the table's
audience function); a channel receives it when its role bypasses RLS or its user is in the audience, its role may
SELECT the table, and one of its bindings matches (event, table, filters). Each channel is checked on its own, so one
subscriber's failing check never stalls the others.

Broadcast and presence are relayed through PostgreSQL (rows of tripsage_realtime.changes, which only the runtime
writes, read in commit order with the captured changes; NOTIFY only wakes the reader), so clients connected to
different replicas see each other; presence itself lives in tripsage_realtime.presence so a replica that starts later
knows the state. Broadcasts from the database (realtime.send) arrive the same way (relay.py).

The publication is the configuration: a change of a table the catalog does not know yet (added to supabase_realtime
since the last load; the event trigger installed its capture at once) reloads the catalog and binds every channel
whose bindings match before the change is dispatched, so a schema-wide subscriber never misses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from tripsage import queries_for
from tripsage.clock import Clock, SystemClock
from tripsage.db.connector import Database, listen
from tripsage.exceptions import TripSageError
from tripsage.realtime import broadcast, filters, presence, protocol, relay, rls
from tripsage.realtime.channels import Binding, Channel, ChannelState, Connection
from tripsage.realtime.limits import Limits, SocketCounts
from tripsage.realtime.postgres_changes import EVENTS, Catalog, Change, ChangeReader, Table
from tripsage.tasks import cancel_all, work_loop

if TYPE_CHECKING:
    from tripsage.metrics import Metrics

log = logging.getLogger(__name__)
Q = queries_for("tripsage.realtime")

CHANGES_CHANNEL = "tripsage_realtime"
POLL_INTERVAL = 0.5  # seconds between reads when no NOTIFY arrives
SYNC_INTERVAL = 5.0  # seconds between publication syncs (a fallback: the event trigger applies ALTER PUBLICATION)
HEARTBEAT_INTERVAL = 5.0  # seconds between this gateway's liveness updates
GATEWAY_TIMEOUT = 60.0  # seconds of silence after which a gateway is gone (and capture stops if none is left)
RETENTION = 300.0  # seconds captured changes and relayed messages are kept
CLEANUP_BATCH = 10000
ERROR_BACKOFF = 1.0  # seconds after a database error
LISTEN_CHANNEL = "tripsage_realtime"
EXPIRY_CHECK_INTERVAL = 1.0  # seconds between checks for expired tokens
SUBSCRIBED = "Subscribed to PostgreSQL"
YIELD_FRAMES = 4000  # frames the reader queues before the socket writers run (see _read_round)


class Gateway:
    def __init__(
        self,
        db: Database,
        database_url: str,
        secret: str,
        *,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
        private_only: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.db = db
        self.clock = clock or SystemClock()  # the wall clock of token expiry and latency
        self.database_url = database_url
        self.secret = secret
        self.limits = limits or Limits()
        self.sockets = SocketCounts()
        self.metrics = metrics
        self.private_only = private_only  # Supabase's "Allow public access" off: public joins get PrivateOnly
        self.id = str(uuid.uuid4())
        self.catalog = Catalog()
        self.reader = ChangeReader(db)
        self.connections: set[Connection] = set()
        self.by_table: dict[tuple[str, str], set[Channel]] = defaultdict(set)
        self.subscribed: set[Channel] = set()  # channels whose postgres_changes bindings are live
        self._unknown_tables: set[tuple[str, str]] = set()  # unknown even after a reload (until the next one)
        self.by_topic: dict[str, set[Channel]] = defaultdict(set)
        self.delivered = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._spawned: set[asyncio.Task[Any]] = set()
        self._database_lost = False

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.db.execute(Q["register_gateway"], {"id": self.id})
        await self.db.fetch_value(Q["sync_publication"])
        await self.db.fetch_value(Q["maintain_message_partitions"])
        await self.catalog.load(self.db)
        await self.reader.start()
        self._tasks = [
            asyncio.create_task(self._listen(), name="realtime-listen"),
            asyncio.create_task(self._read_loop(), name="realtime-read"),
            asyncio.create_task(self._housekeeping(), name="realtime-housekeeping"),
            asyncio.create_task(self._expiry_loop(), name="realtime-expiry"),
        ]

    async def stop(self) -> None:
        for connection in list(self.connections):
            connection.close(1012)  # service restart: clients reconnect (to another replica), unlike after 1001
        await cancel_all([*self._tasks, *self._spawned])
        self._tasks = []
        with contextlib.suppress(TripSageError):
            await presence.drop_own(self)
            await self.db.execute(Q["forget_gateway"], {"id": self.id})

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    def health(self) -> dict[str, Any]:
        alive = bool(self._tasks) and all(not t.done() for t in self._tasks)
        return {
            "status": "ok" if alive and not self._database_lost else "degraded",
            "connections": len(self.connections),
            "channels": sum(len(c.channels) for c in self.connections),
            "delivered": self.delivered,
            "tables": sorted(f"{s}.{t}" for s, t in self.catalog.tables),
            "last_error": self.last_error,
        }

    # -- admission ---------------------------------------------------------------------------------------------

    def admit(self, user: str | None, address: str | None) -> str | None:
        """Reserve a socket for `user` from `address`, or the reason it is refused (HTTP 429); `release` after."""
        return self.sockets.reserve(self.limits, len(self.connections), user, address)

    def release(self, user: str | None, address: str | None) -> None:
        self.sockets.release(user, address)

    def close_all(self, code: int) -> None:
        """Close every socket (1011 makes realtime-py reconnect and rejoin)."""
        for connection in list(self.connections):
            connection.close(code)

    # -- channels --------------------------------------------------------------------------------------------

    def attach(self, channel: Channel) -> None:
        self.by_topic[channel.topic].add(channel)
        if self.metrics is not None:
            self.metrics.realtime_channels.inc()

    async def detach(self, channel: Channel) -> None:
        self.by_topic[channel.topic].discard(channel)
        if not self.by_topic[channel.topic]:
            del self.by_topic[channel.topic]
        self.subscribed.discard(channel)
        for subscribers in self.by_table.values():
            subscribers.discard(channel)
        if self.metrics is not None:
            self.metrics.realtime_channels.dec()
        if channel.presence_refs:
            refs = list(channel.presence_refs)
            channel.presence_refs.clear()
            for ref in refs:
                with contextlib.suppress(TripSageError):
                    await self._untrack(channel, ref)

    async def subscribe_changes(self, channel: Channel) -> None:
        """Validate the channel's postgres_changes bindings and start delivering (Supabase's second step)."""
        try:
            await self.catalog.ensure_role(self.db, channel.identity.role)
            keys: list[tuple[str, str]] = []
            for binding in channel.bindings:
                if binding.event not in EVENTS:
                    raise filters.FilterError("event must be one of *, INSERT, UPDATE, DELETE")
                if binding.all_tables or (binding.schema, binding.table) not in self.catalog.tables:
                    # Perhaps added to the publication since the last load: make sure its trigger is installed
                    # (without the event trigger's privilege) and know its columns before subscribing.
                    await self.db.fetch_value(Q["sync_publication"])
                    await self._reload_catalog()
                tables = self._tables_for(binding)
                if not tables:
                    channel.push_system(
                        "postgres_changes",
                        "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for "
                        f"the given connect parameters: [event: {binding.event}, schema: {binding.schema}, "
                        f"table: {binding.table or '*'}, filters: {binding.filter or ''}]",
                        "error",
                    )
                    return
                if binding.all_tables and binding.filter:
                    raise filters.FilterError("a filter needs a table")
                if not binding.all_tables:
                    binding.conditions = filters.parse(binding.filter, tables[0].column_types)
                    if binding.select is not None:
                        unknown = binding.select - set(tables[0].column_types)
                        if unknown:
                            raise filters.FilterError(f"select: unknown columns {', '.join(sorted(unknown))}")
                keys.extend((table.schema, table.name) for table in tables)
        except filters.FilterError as error:
            channel.push_system("postgres_changes", f"Error parsing `filter` params: {error}", "error")
            return
        except TripSageError as error:
            self.last_error = str(error)
            channel.push_system("postgres_changes", "Too many database timeouts", "error")
            return
        if channel.state is ChannelState.CLOSED:
            return
        self.subscribed.add(channel)
        for key in keys:
            self.by_table[key].add(channel)
        channel.push_system("postgres_changes", SUBSCRIBED)

    def _tables_for(self, binding: Binding) -> list[Table]:
        return [
            table
            for key, table in self.catalog.tables.items()
            if key[0] == binding.schema and (binding.all_tables or key[1] == binding.table)
        ]

    async def _reload_catalog(self) -> None:
        """Load the publication's tables again and bind the live channels to the tables their bindings match now
        (a table added to the publication reaches schema-wide and waiting bindings; a dropped one is unbound)."""
        await self.catalog.load(self.db)
        self._unknown_tables.clear()
        by_table: dict[tuple[str, str], set[Channel]] = defaultdict(set)
        for channel in self.subscribed:
            for binding in channel.bindings:
                for table in self._tables_for(binding):
                    by_table[(table.schema, table.name)].add(channel)
        self.by_table = by_table

    async def reauthorize(self, channel: Channel) -> None:
        """A channel's token changed: its role's columns may differ."""
        try:
            await self.catalog.ensure_role(self.db, channel.identity.role)
        except TripSageError as error:
            await channel.connection.stop_channel(channel, f"Unable to refresh the token: {error}")

    # -- postgres_changes fan-out ----------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Wake the reader on NOTIFY tripsage_realtime (and after each reconnect); a lost connection is reported."""
        async for _notification in listen(
            self.database_url,
            [LISTEN_CHANNEL],
            reconnect_delay=ERROR_BACKOFF,
            application_name="tripsage-realtime-listen",
            on_lost=self._set_database_lost,
        ):
            self._wake.set()  # only a wake-up: the payload is never trusted (the reader reads the table)

    def _set_database_lost(self, error: str) -> None:
        if not self._database_lost:
            log.warning("realtime: database connection lost (%s); reconnecting", error)
        self._database_lost = True
        self.last_error = error

    def _database_back(self) -> None:
        if self._database_lost:
            self._database_lost = False
            log.info("realtime: database connection restored")
            for connection in list(self.connections):
                for channel in list(connection.channels.values()):
                    if channel.bindings:
                        channel.push_system("postgres_changes", SUBSCRIBED)

    async def _read_loop(self) -> None:
        await work_loop(
            self._read_round,
            self._wake,
            poll_interval=POLL_INTERVAL,
            error_backoff=ERROR_BACKOFF,
            on_error=lambda error: self._set_database_lost(str(error)),
            errors=(TripSageError,),
        )

    async def _read_round(self) -> bool:
        """Read the changes committed since the last round and deliver them; whether the read was full."""
        changes = await self.reader.read()
        self._database_back()
        queued = 0  # frames queued since the socket writers last ran
        for change in changes:
            if change.key in (relay.RELAY_KEY, relay.MESSAGES_KEY):
                try:
                    if change.key == relay.RELAY_KEY:
                        relay.receive(self, change.record)
                        queued += 1
                    else:
                        sent = relay.receive_database_broadcast(self, change.record)
                        self.delivered += sent
                        queued += sent
                except Exception:  # one bad message (any role may send one) must never stop the reader
                    log.exception("realtime: could not deliver relayed message %s", change.id)
            else:
                if change.key not in self.catalog.tables and change.key not in self._unknown_tables:
                    with contextlib.suppress(TripSageError):
                        await self._reload_catalog()
                    if change.key not in self.catalog.tables:
                        self._unknown_tables.add(change.key)  # not published (any more): no reload per change
                await self._check_rls(change)
                queued += self.dispatch(change) or 1
            # Let the socket writers send once a few thousand frames are queued: a large read must not starve them
            # (frames would only pile up in the queues, and every client would see a silence), but a writer woken
            # for each frame costs more than the frame's send (a task step per frame per socket).
            if queued >= YIELD_FRAMES:
                queued = 0
                await asyncio.sleep(0)
        await asyncio.sleep(0)
        return len(changes) >= self.reader.limit  # a full read: read again at once

    async def _check_rls(self, change: Change) -> None:
        """Per-subscriber RLS checks for a change of a published table without an audience function."""
        table = self.catalog.tables.get(change.key)
        subscribers = self.by_table.get(change.key)
        if change.audience is not None or table is None or not table.rls_enabled or not subscribers:
            return
        if change.type == "DELETE":
            return  # the row is gone: only roles that bypass RLS receive it
        identities = [
            c.identity
            for c in subscribers
            if not c.identity.bypasses_rls and not self.catalog.bypasses_rls(c.identity.role)
        ]
        if identities:
            change.rls_allowed = await rls.allowed(self.db, change, table, identities)

    def dispatch(self, change: Change) -> int:
        """Send one change to every channel allowed to see it; the number of frames queued.

        Work shared by channels is done once per change: each distinct filter is evaluated once, and each distinct
        frame (topic, binding ids, visible columns, protocol) is serialized once.
        """
        subscribers = self.by_table.get(change.key)
        table = self.catalog.tables.get(change.key)
        if not subscribers or table is None:
            return 0
        sent = 0
        row = change.filter_row
        now = self.clock.time()
        route = (change.schema, change.table, change.type)
        audience = change.audience
        catalog = self.catalog
        matches: dict[tuple[filters.Condition, ...], bool] = {}
        frames: dict[tuple[Any, ...], str] = {}
        columns: dict[str, frozenset[str] | None] = {}  # role -> the columns it may SELECT (None: not the key)
        for channel in list(subscribers):
            try:
                wanted = channel.routes.get(route)
                if wanted is None:  # the channel's bindings for this table and event, found once
                    wanted = channel.routes[route] = tuple(b for b in channel.bindings if b.wants(*route))
                if not wanted:
                    continue
                matched = []
                for b in wanted:
                    ok = matches.get(b.conditions)
                    if ok is None:
                        ok = matches[b.conditions] = filters.matches(b.conditions, row)
                    if ok:
                        matched.append(b)
                if not matched:
                    continue
                identity = channel.identity
                if identity.expires_at <= now:
                    continue
                role = identity.role
                if identity.bypasses_rls or catalog.bypasses_rls(role):
                    pass
                elif audience is not None:
                    if identity.user_id not in audience:  # None (no user) is never in it
                        continue
                elif not self._rls_allows(channel, change, table.rls_enabled):
                    continue
                if role in columns:
                    visible = columns[role]
                else:
                    visible = columns[role] = catalog.selectable(role, change.key)
                    if not visible or not all(column in visible for column in table.primary_key):
                        visible = columns[role] = None
                if visible is None:
                    continue  # the role may not read the row's key: Supabase sends Error 401; we send nothing
                if len(matched) == 1:
                    only = matched[0]
                    ids: tuple[int, ...] = (only.id,)
                    if only.select is not None:
                        visible = visible & only.select
                else:
                    ids = tuple(b.id for b in matched)
                    selects = [b.select for b in matched]
                    if all(select is not None for select in selects):
                        visible = visible & frozenset().union(*(s for s in selects if s is not None))
                connection = channel.connection
                key = (channel.topic, ids, visible, connection.vsn, channel.join_ref)
                frame = frames.get(key)
                if frame is None:
                    payload = '{"data":' + change.data_json(table, visible) + ',"ids":' + json.dumps(ids) + "}"
                    frame = frames[key] = protocol.encode_raw_push(
                        channel.topic_json, protocol.POSTGRES_CHANGES, payload, channel.join_ref, connection.vsn
                    )
                connection.push_text(frame)
                sent += 1
            except Exception:  # one subscriber's failure must not stall the others (supabase/realtime#2093)
                log.exception("realtime: could not deliver change %s to %s", change.id, channel.topic)
        if sent and self.metrics is not None:
            self.metrics.realtime_messages.labels(kind="postgres_changes").inc(sent)
            self.metrics.realtime_latency.observe(max(0.0, self.clock.time() - change.captured_at.timestamp()))
        self.delivered += sent
        return sent

    @staticmethod
    def _rls_allows(channel: Channel, change: Change, rls_enabled: bool) -> bool:
        """For a published table without an audience function: its RLS, checked per subscriber (rls.py). (Expiry,
        roles that bypass RLS and the audience are decided in `dispatch`.)"""
        if not rls_enabled:
            return True
        return change.rls_allowed is not None and rls.identity_key(channel.identity) in change.rls_allowed

    # -- housekeeping ----------------------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        last_sync = time.monotonic()
        last_cleanup = 0.0
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            try:
                await self.db.execute(Q["register_gateway"], {"id": self.id})
                if time.monotonic() - last_sync >= SYNC_INTERVAL:
                    last_sync = time.monotonic()
                    changed = await self.db.fetch_value(Q["sync_publication"])
                    await self._reload_catalog()
                    if changed:
                        log.info("realtime: publication changed (%s tables)", changed)
                if time.monotonic() - last_cleanup >= RETENTION / 10:
                    last_cleanup = time.monotonic()
                    params = {"retention_s": RETENTION, "limit": CLEANUP_BATCH}
                    while await self.db.fetch_value(Q["cleanup_changes"], params) >= CLEANUP_BATCH:
                        await asyncio.sleep(0)  # a large backlog goes in batches, without holding the loop
                    await self._expire_gateways()
                    await self.db.fetch_value(Q["maintain_message_partitions"])
            except TripSageError as error:
                self._set_database_lost(str(error))

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_CHECK_INTERVAL)
            await self.close_expired()

    async def close_expired(self) -> None:
        """Close channels whose token expired, as Supabase does."""
        now = self.clock.time()
        for connection in list(self.connections):
            for channel in list(connection.channels.values()):
                expired_for = now - channel.identity.expires_at
                if expired_for >= 0:
                    await connection.stop_channel(channel, f"Token has expired {int(expired_for)} seconds ago")

    # -- broadcast and presence ----------------------------------------------------------------------------

    async def broadcast(self, channel: Channel, frame: protocol.Frame) -> None:
        await broadcast.handle(self, channel, frame)

    async def presence(self, channel: Channel, frame: protocol.Frame) -> None:
        await presence.handle(self, channel, frame)

    async def send_presence_state(self, channel: Channel) -> None:
        await presence.send_state(self, channel)

    async def _untrack(self, channel: Channel, phx_ref: str) -> None:
        await presence.untrack(self, channel, phx_ref)

    async def _expire_gateways(self) -> None:
        await presence.expire_gateways(self, GATEWAY_TIMEOUT)
