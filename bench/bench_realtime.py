"""Realtime benchmark: postgres_changes with RLS and Broadcast from Database on private channels with Realtime
Authorization, commit-to-client latency and delivered messages per second, at 100 and 500 subscribers, beside a bare
NOTIFY-to-websocket relay (no authorization) measured in the same run.

Setup: one trip whose owner and collaborators are the subscribers (4 in 5 of them; the fifth are strangers who must
receive nothing), each on its own websocket joined to `itinerary_items` INSERTs filtered on the trip
(`trip_id=eq.<trip>`) with its own user JWT, so every delivery is authorized by the RLS audience. The runtime is a real
`tripsage serve` process (testkit/harness.py) on the embedded PostgreSQL; the subscribers are plain websocket clients in
this process speaking the V1 protocol exactly as realtime-py does.

- Latency: one change per committed transaction at a fixed rate; latency = arrival at the client - the wall time
  written into the row just before its INSERT (so it includes the INSERT and the commit: conservative).
- Throughput: a burst of changes (transactions of 50 rows); delivered messages/s = frames received by all clients /
  (last arrival - first commit).
- Broadcast from Database: the same users join the private channel `trip:<trip>` (Realtime Authorization: the read
  probe against realtime.messages' policies at each join; strangers are refused), and a row trigger on
  itinerary_items calls `realtime.send(.., 'trip:<trip>', private => true)`; same workload. It replaces
  postgres_changes, as Supabase recommends, so itinerary_items leaves the publication during this leg.
- Baseline: the same subscribers connected to a bare relay (uvicorn + starlette, LISTEN, one trigger doing pg_notify
  with the row, every notification sent to every socket; no auth, no filter; the runtime's websocket stack, without
  permessage-deflate as the runtime by default), same workload, same run.

Run: .venv/bin/python bench/bench_realtime.py [--full] [--subscribers 100,500] [--py-spy DIR]
     .venv/bin/python bench/bench_realtime.py --fanout   (the gateway's own work per delivered frame, in-process)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import websockets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testkit.harness import (  # noqa: E402
    JWT_SECRET,
    Cluster,
    Replica,
    cost_line,
    cpu_seconds,
    free_port,
    machine,
    new_encryption_key,
    percentile,
)

from tripsage import jwt  # noqa: E402

SUPABASE_RLS_PLATEAU = "3,000-4,000"  # msgs/s, Supabase's postgres_changes with RLS (docs' estimator data)
GOAL_RATIO = 0.5  # delivered msgs/s with the RLS audience / the bare relay's, at each size (issue #19)
GOAL_P99 = 50.0  # ms
MEMBER_FRACTION = 0.8
BURST_MESSAGES = 100_000  # frames per throughput burst (per subscriber count)
BATCH = 50  # rows per transaction in the burst
HEARTBEAT_INTERVAL = 25.0  # seconds, realtime-py's default

# The baseline relay's trigger (bench only): the row, as JSON, in a NOTIFY.
BASELINE_SQL = """
CREATE OR REPLACE FUNCTION public.bench_relay_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bench_relay', json_build_object('record', to_jsonb(NEW))::text);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS bench_relay_notify ON public.itinerary_items;
CREATE TRIGGER bench_relay_notify AFTER INSERT ON public.itinerary_items
    FOR EACH ROW EXECUTE FUNCTION public.bench_relay_notify();
"""
DROP_BASELINE_SQL = "DROP TRIGGER IF EXISTS bench_relay_notify ON public.itinerary_items"

# Broadcast from Database (bench only): each inserted row sent to the trip's private channel, as Supabase documents it,
# instead of postgres_changes (the table leaves the publication meanwhile, so its rows are not captured twice).
BROADCAST_SQL = """
ALTER PUBLICATION supabase_realtime DROP TABLE public.itinerary_items;
CREATE OR REPLACE FUNCTION public.bench_broadcast() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM realtime.send(jsonb_build_object('record', to_jsonb(NEW)), 'INSERT', 'trip:' || NEW.trip_id, true);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS bench_broadcast ON public.itinerary_items;
CREATE TRIGGER bench_broadcast AFTER INSERT ON public.itinerary_items
    FOR EACH ROW EXECUTE FUNCTION public.bench_broadcast();
"""
DROP_BROADCAST_SQL = """
DROP TRIGGER IF EXISTS bench_broadcast ON public.itinerary_items;
ALTER PUBLICATION supabase_realtime ADD TABLE public.itinerary_items;
"""


# -- the bare relay (run as a subprocess: `bench_realtime.py --relay PORT DATABASE_URL`) -----------------------------


def run_relay(port: int, database_url: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    queues: set[asyncio.Queue[str]] = set()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        queue: asyncio.Queue[str] = asyncio.Queue()
        queues.add(queue)

        async def drain() -> None:
            while True:
                await websocket.send_text(await queue.get())

        writer = asyncio.create_task(drain())
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            queues.discard(queue)
            writer.cancel()

    async def listen() -> None:
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        await conn.execute("LISTEN bench_relay")
        async for notify in conn.notifies():
            for queue in list(queues):
                queue.put_nowait(notify.payload)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        task = asyncio.create_task(listen())
        yield
        task.cancel()

    app = Starlette(routes=[WebSocketRoute("/websocket", endpoint)], lifespan=lifespan)
    # The runtime's websocket stack: uvicorn's websockets-sansio, without permessage-deflate (its default,
    # TRIPSAGE_REALTIME_COMPRESSION=false, as Supabase Realtime).
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio", ws_per_message_deflate=False
    )


# -- clients ---------------------------------------------------------------------------------------------------------


@dataclass
class Clients:
    sockets: list[Any] = field(default_factory=list)
    received: list[int] = field(default_factory=list)  # frames per client
    latencies: list[float] = field(default_factory=list)  # ms
    last_arrival: float = 0.0
    measure_latency: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self, measure_latency: bool) -> None:
        self.received = [0] * len(self.sockets)
        self.latencies = []
        self.last_arrival = 0.0
        self.measure_latency = measure_latency

    async def reader(self, index: int, ws: Any, event: str) -> None:
        async for text in ws:
            now = time.time()
            if event not in text[:40]:
                continue
            self.received[index] += 1
            self.last_arrival = now
            if self.measure_latency:
                frame = json.loads(text)
                if "record" in frame:
                    record = frame["record"]
                elif event == "broadcast":
                    record = frame["payload"]["payload"]["record"]
                else:
                    record = frame["payload"]["data"]["record"]
                self.latencies.append((now - float(record["title"])) * 1000)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for ws in self.sockets:
            with contextlib.suppress(Exception):
                await ws.close()


async def connect_gateway(base_url: str, tokens: list[str], trip: int) -> Clients:
    clients = Clients()
    url = base_url.replace("http://", "ws://") + "/realtime/v1/websocket?apikey="
    for token in tokens:
        ws = await websockets.connect(url + token, max_queue=None)
        binding = {"event": "INSERT", "schema": "public", "table": "itinerary_items", "filter": f"trip_id=eq.{trip}"}
        join = {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": False,
                "postgres_changes": [binding],
            },
            "access_token": token,
        }
        await ws.send(json.dumps({"event": "phx_join", "payload": join, "topic": "realtime:bench", "ref": "1"}))
        while "Subscribed to PostgreSQL" not in await ws.recv():
            pass
        clients.sockets.append(ws)
    clients.reset(False)
    clients.tasks = [
        asyncio.create_task(clients.reader(i, ws, "postgres_changes")) for i, ws in enumerate(clients.sockets)
    ]
    clients.tasks.append(asyncio.create_task(heartbeats(clients.sockets)))
    return clients


async def connect_private(base_url: str, tokens: list[str], trip: int) -> tuple[Clients, int]:
    """Every user joins the private channel trip:<trip> (refused ones keep their socket, to show they get nothing);
    the number of refused joins."""
    clients = Clients()
    url = base_url.replace("http://", "ws://") + "/realtime/v1/websocket?apikey="
    refused = 0
    for token in tokens:
        ws = await websockets.connect(url + token, max_queue=None)
        join = {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": True,
            },
            "access_token": token,
        }
        await ws.send(json.dumps({"event": "phx_join", "payload": join, "topic": f"realtime:trip:{trip}", "ref": "1"}))
        reply = json.loads(await ws.recv())
        refused += reply["payload"]["status"] != "ok"
        clients.sockets.append(ws)
    clients.reset(False)
    clients.tasks = [asyncio.create_task(clients.reader(i, ws, "broadcast")) for i, ws in enumerate(clients.sockets)]
    clients.tasks.append(asyncio.create_task(heartbeats(clients.sockets)))
    return clients, refused


async def heartbeats(sockets: list[Any]) -> None:
    """Every 25 s, as realtime-py does (the gateway closes a socket silent for 60 s)."""
    heartbeat = json.dumps({"event": "heartbeat", "payload": {}, "topic": "phoenix", "ref": None})
    while True:
        await asyncio.sleep(HEARTBEAT_INTERVAL)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.send(heartbeat)


async def connect_relay(port: int, count: int) -> Clients:
    clients = Clients()
    for _ in range(count):
        clients.sockets.append(await websockets.connect(f"ws://127.0.0.1:{port}/websocket", max_queue=None))
    clients.reset(False)
    clients.tasks = [asyncio.create_task(clients.reader(i, ws, "record")) for i, ws in enumerate(clients.sockets)]
    return clients


# -- workload --------------------------------------------------------------------------------------------------------


async def latency_run(url: str, clients: Clients, trip: int, rate: float, seconds: float) -> tuple[float, float, int]:
    clients.reset(True)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    sent = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        await conn.execute(
            "INSERT INTO public.itinerary_items (trip_id, title) VALUES (%s, %s)", [trip, repr(time.time())]
        )
        sent += 1
        delay = began + sent / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await conn.close()
    await settle(clients)
    return percentile(clients.latencies, 0.5), percentile(clients.latencies, 0.99), sent


@dataclass
class Cpu:
    """CPU seconds used by PostgreSQL (every process of the cluster) and by the runtime (the replica process) over a
    burst; the inserting backend is counted (it runs the capture trigger and the audience function)."""

    cluster: Cluster
    replica: Replica
    runtime_pid: int | None = None  # another process as the runtime (the bare relay's)
    postgres_s: float = 0.0
    runtime_s: float = 0.0
    _pids: list[int] = field(default_factory=list)

    profile: Path | None = None  # py-spy's raw output for the replica over the burst (--py-spy)
    _spy: subprocess.Popen[bytes] | None = None

    def begin(self) -> None:
        if self.profile is not None and self.replica.process is not None:
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(self.replica.process.pid)]
            self._spy = subprocess.Popen(
                [*spy, "-r", "200", "-f", "raw", "-o", str(self.profile)], stdout=subprocess.DEVNULL
            )
            time.sleep(1.0)  # py-spy attaches
        self._pids = self.cluster.pids()
        self.postgres_s, self.runtime_s = -cpu_seconds(self._pids), -self.runtime_cpu_s()

    def runtime_cpu_s(self) -> float:
        return cpu_seconds([self.runtime_pid]) if self.runtime_pid is not None else self.replica.cpu_seconds()

    def end(self) -> None:
        self.postgres_s += cpu_seconds(self._pids)
        self.runtime_s += self.runtime_cpu_s()
        if self._spy is not None:
            self._spy.send_signal(signal.SIGINT)
            self._spy.wait(timeout=60)


async def burst_run(
    url: str, clients: Clients, trip: int, changes: int, cpu: Cpu | None = None
) -> tuple[float, int, Cpu | None]:
    clients.reset(False)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    if cpu is not None:
        cpu.begin()
    first_commit = 0.0
    for start in range(0, changes, BATCH):
        rows = min(BATCH, changes - start)
        await conn.execute(
            "INSERT INTO public.itinerary_items (trip_id, title) SELECT %s, 'burst' FROM generate_series(1, %s)",
            [trip, rows],
        )
        if not first_commit:
            first_commit = time.time()
    await settle(clients)
    if cpu is not None:
        cpu.end()  # before the inserting backend exits
    await conn.close()
    total = sum(clients.received)
    return total / max(1e-9, clients.last_arrival - first_commit), total, cpu


async def settle(clients: Clients, quiet: float = 3.0, timeout: float = 300.0) -> None:
    """Wait until no frame arrived for `quiet` seconds."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        total = sum(clients.received)
        await asyncio.sleep(quiet)
        if sum(clients.received) == total:
            return


def profile(args: Any, path: str, subscribers: int) -> Path | None:
    return Path(args.py_spy) / f"{path}-{subscribers}.txt" if args.py_spy else None


async def scenario(
    cluster: Cluster, replica: Replica, relay_port: int, relay_pid: int, subscribers: int, args: Any
) -> dict[str, Any]:
    cluster_url, gateway_url = cluster.url, replica.base_url
    with psycopg.connect(cluster_url, autocommit=True) as conn:
        users = [str(uuid.uuid4()) for _ in range(subscribers)]
        conn.execute("INSERT INTO auth.users (id) SELECT unnest(%s::uuid[])", [users])
        trip = conn.execute(
            "INSERT INTO public.trips (user_id, name, destination, start_date, end_date) "
            "VALUES (%s, 'bench', 'X', '2026-01-01', '2026-01-02') RETURNING id",
            [users[0]],
        ).fetchone()[0]  # type: ignore[index]
        members = users[1 : int(subscribers * MEMBER_FRACTION)]
        conn.execute(
            "INSERT INTO public.trip_collaborators (trip_id, user_id) SELECT %s, unnest(%s::uuid[])", [trip, members]
        )
    audience = 1 + len(members)
    tokens = [jwt.user_token(JWT_SECRET, user, lifetime=3600) for user in users]
    rate = args.rate_per_subscriber_msgs / subscribers
    changes = max(BATCH, BURST_MESSAGES * args.scale // audience)
    result: dict[str, Any] = {"subscribers": subscribers, "audience": audience, "rate": rate}

    ours = await connect_gateway(gateway_url, tokens, trip)
    try:
        result["ours_latency"] = await latency_run(cluster_url, ours, trip, rate, args.seconds)
        result["ours_burst"] = await burst_run(
            cluster_url, ours, trip, changes, Cpu(cluster, replica, profile=profile(args, "changes", subscribers))
        )
        strangers = ours.received[int(subscribers * MEMBER_FRACTION) :]
        result["leaked"] = sum(strangers)
    finally:
        await ours.close()

    with psycopg.connect(cluster_url, autocommit=True) as conn:
        conn.execute(BROADCAST_SQL)
    private, result["refused"] = await connect_private(gateway_url, tokens, trip)
    try:
        result["broadcast_latency"] = await latency_run(cluster_url, private, trip, rate, args.seconds)
        result["broadcast_burst"] = await burst_run(
            cluster_url, private, trip, changes, Cpu(cluster, replica, profile=profile(args, "broadcast", subscribers))
        )
        result["broadcast_leaked"] = sum(private.received[int(subscribers * MEMBER_FRACTION) :])
    finally:
        await private.close()
        with psycopg.connect(cluster_url, autocommit=True) as conn:
            conn.execute(DROP_BROADCAST_SQL)

    with psycopg.connect(cluster_url, autocommit=True) as conn:
        conn.execute(BASELINE_SQL)
    relay = await connect_relay(relay_port, subscribers)
    try:
        await asyncio.sleep(0.5)
        result["relay_latency"] = await latency_run(cluster_url, relay, trip, rate, args.seconds)
        result["relay_burst"] = await burst_run(
            cluster_url, relay, trip, changes, Cpu(cluster, replica, runtime_pid=relay_pid)
        )
    finally:
        await relay.close()
        with psycopg.connect(cluster_url, autocommit=True) as conn:
            conn.execute(DROP_BASELINE_SQL)
    return result


def fanout_cost(receivers: int = 400, messages: int = 200) -> tuple[float, float]:
    """The gateway's own work per delivered frame, in-process and without sockets (frames are only queued): a broadcast
    from the database to `receivers` private channels, and a postgres_changes change with an RLS audience to as many
    subscribers with a filter. Returns microseconds per frame (broadcast, postgres_changes)."""
    import datetime as dt

    from tripsage.realtime import auth, authorization, filters, relay
    from tripsage.realtime.channels import Binding, Channel, Connection, binding_id
    from tripsage.realtime.gateway import Gateway
    from tripsage.realtime.postgres_changes import Change, Table

    async def measure() -> tuple[float, float]:
        gateway = Gateway(None, "", JWT_SECRET)  # type: ignore[arg-type]  # no database: nothing is read
        key = ("public", "itinerary_items")
        columns = [("id", "int8"), ("trip_id", "int8"), ("title", "text"), ("price", "numeric"), ("metadata", "jsonb")]
        columns += [(f"extra_{n}", "text") for n in range(10)]
        table = gateway.catalog.tables[key] = Table(*key, columns, ["id"])
        # the role's SELECTable columns, as Catalog loads them from the database
        gateway.catalog._selectable["authenticated"] = {key: frozenset(name for name, _ in columns)}
        users = [str(uuid.uuid4()) for _ in range(receivers)]
        echo = {"event": "INSERT", "schema": "public", "table": "itinerary_items", "filter": "trip_id=eq.1"}
        for user in users:
            identity = auth.Identity("t", {"role": "authenticated", "sub": user, "exp": time.time() + 3600})
            connection = Connection(gateway, None, identity, "1.0.0")  # type: ignore[arg-type]  # never run
            policies = authorization.Policies(broadcast_read=True)
            channel = Channel(connection, "realtime:trip:1", None, identity, private=True, policies=policies)
            binding = Binding(binding_id(echo), "INSERT", "public", "itinerary_items", "trip_id=eq.1", echo)
            binding.conditions = filters.parse(binding.filter, table.column_types)
            channel.bindings.append(binding)
            gateway.by_topic[channel.topic].add(channel)
            gateway.by_table[key].add(channel)
        record: dict[str, Any] = {name: "x" for name, _ in columns} | {"id": 1, "trip_id": 1, "price": 0}
        began = time.perf_counter()
        for _ in range(messages):
            row = {"id": str(uuid.uuid4()), "topic": "trip:1", "event": "INSERT", "private": True}
            relay.receive_database_broadcast(gateway, row | {"payload": {"record": record}, "binary": None})
        broadcast = time.perf_counter() - began
        audience = "{" + ",".join(users) + "}"
        began = time.perf_counter()
        for n in range(messages):
            change = Change.from_row(
                {
                    "id": n,
                    "xid": "1",
                    "captured_at": dt.datetime.now(dt.UTC),
                    "schema_name": "public",
                    "table_name": "itinerary_items",
                    "type": "INSERT",
                    "record": json.dumps(record),
                    "old_record": None,
                    "audience": audience,
                }
            )
            gateway.dispatch(change)
        changes = time.perf_counter() - began
        frames = messages * receivers / 1e6
        return broadcast / frames, changes / frames

    return asyncio.run(measure())


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--relay":
        run_relay(int(sys.argv[2]), sys.argv[3])
        return
    if len(sys.argv) == 2 and sys.argv[1] == "--fanout":
        broadcast, changes = fanout_cost()
        print(f"gateway work per delivered frame: broadcast {broadcast:.2f} us, postgres_changes {changes:.2f} us")
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="longer latency runs and 5x larger bursts")
    parser.add_argument("--subscribers", default="100,500")
    parser.add_argument("--seconds", type=float, default=None, help="duration of each fixed-rate latency run")
    parser.add_argument(
        "--rate-per-subscriber-msgs",
        type=float,
        default=5000.0,
        help="messages/s offered in the latency run (changes/s = this / subscribers)",
    )
    parser.add_argument("--py-spy", metavar="DIR", help="profile the replica with py-spy over each burst (raw, in DIR)")
    args = parser.parse_args()
    args.seconds = args.seconds or (20.0 if args.full else 5.0)
    args.scale = 5 if args.full else 1

    cluster = Cluster()
    cluster.start()
    replica = Replica(cluster.url, new_encryption_key())
    logs = Path(tempfile.mkdtemp(prefix="tsg-bench-logs-"))
    relay_port = free_port()
    relay = subprocess.Popen(
        [sys.executable, __file__, "--relay", str(relay_port), cluster.url],
        stdout=subprocess.DEVNULL,
        stderr=(logs / "relay.log").open("wb"),
    )
    results = []
    try:
        replica.start(logs)
        replica.wait_healthy()
        for count in (int(n) for n in args.subscribers.split(",")):
            results.append(asyncio.run(scenario(cluster, replica, relay_port, relay.pid, count, args)))
    finally:
        relay.terminate()
        relay.wait(timeout=30)
        sys.stderr.write((logs / "relay.log").read_text())
        replica.stop()
        cluster.close()
        shutil.rmtree(logs, ignore_errors=True)

    print("## Realtime\n")
    print(
        f"{machine()}; `tripsage serve` (one process) on the embedded PostgreSQL; subscribers are websocket clients "
        f"in one process, {int(MEMBER_FRACTION * 100)} % of them members of the trip (the rest must receive nothing); "
        f"latency over {args.seconds:.0f} s at {args.rate_per_subscriber_msgs:,.0f} msgs/s offered, one change per "
        f"transaction; bursts of {BURST_MESSAGES * args.scale:,} messages in transactions of {BATCH} rows.\n"
    )
    print(
        "| figure | postgres_changes (RLS audience) | broadcast from database (private, authorized) "
        "| bare NOTIFY relay (no auth) | goal |"
    )
    print("|---|---:|---:|---:|---|")
    for r in results:
        n = r["subscribers"]
        (p50, p99, sent), (bp50, bp99, _), (rp50, rp99, _) = (
            r["ours_latency"],
            r["broadcast_latency"],
            r["relay_latency"],
        )
        (rate, total, _), (b_rate, b_total, _), (relay_rate, relay_total, _) = (
            r["ours_burst"],
            r["broadcast_burst"],
            r["relay_burst"],
        )
        print(
            f"| {n} subscribers: delivered msgs/s (burst) | {rate:,.0f} ({total:,} msgs) | "
            f"{b_rate:,.0f} ({b_total:,} msgs) | {relay_rate:,.0f} ({relay_total:,} msgs) | "
            f">= {GOAL_RATIO}x the relay (Supabase with RLS: {SUPABASE_RLS_PLATEAU}) |"
        )
        relay_rate = max(relay_rate, 1e-9)
        print(
            f"| {n} subscribers: x the bare relay | {rate / relay_rate:.2f}x | {b_rate / relay_rate:.2f}x | 1.00x "
            f"| >= {GOAL_RATIO}x |"
        )
        label = f"{n} subscribers: commit->client"
        print(
            f"| {label} p50 ({sent} changes at {r['rate']:.0f}/s) | {p50:.1f} ms | {bp50:.1f} ms | {rp50:.1f} ms | - |"
        )
        print(f"| {label} p99 | {p99:.1f} ms | {bp99:.1f} ms | {rp99:.1f} ms | <= {GOAL_P99:.0f} ms |")
        print(
            f"| {n} subscribers: frames to non-members | {r['leaked']} | {r['broadcast_leaked']} "
            f"({r['refused']} joins refused) | (no auth: all) | 0 |"
        )
    print()
    for r in results:
        paths = (
            ("ours_burst", "postgres_changes with the RLS audience"),
            ("broadcast_burst", "broadcast from database"),
            ("relay_burst", "the bare NOTIFY relay (baseline; its process as the runtime)"),
        )
        for key, path in paths:
            _, total, cpu = r[key]
            if total and cpu is not None:
                note = f"{path}, {r['subscribers']} subscribers"
                print(cost_line("realtime messages delivered", total, cpu.postgres_s, cpu.runtime_s, note))


if __name__ == "__main__":
    main()
