"""Workloads the chaos, soak and scale-out runs drive against real replicas (see testkit/harness.py).

- `WebhookSink`: an aiohttp receiver counting what arrives per event number and under which webhook-id.
- `RealtimeFleet`: many websocket clients speaking the Supabase Realtime V1 protocol (the frames realtime-py sends),
  each signed in as a user and subscribed to INSERTs on `trips`; a client whose socket drops reconnects to the next
  replica and joins again, as the official clients do.
- Cron ticks: a `1 seconds` job scheduled with `cron.schedule`, and the accounting of its runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from psycopg.types.json import Jsonb

from testkit.runtime import serve_app
from tripsage import jwt, standard_webhooks
from tripsage.crypto import Keyring
from tripsage.db import vault

EVENT_TYPE = "booking.confirmed"
# Short retries and leases, so deliveries a killed replica held come back within a run's patience.
FAST_RETRY = {"schedule_s": [0, 0.5, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2], "jitter": 0, "lease_margin_s": 2}
HEARTBEAT_S = 20.0


# --- webhooks -----------------------------------------------------------------------------------------------------


@dataclass
class WebhookSink:
    ids_by_n: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    first_at: dict[int, float] = field(default_factory=dict)  # event number -> when it first arrived (epoch s)
    requests: int = 0
    url: str = ""
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.ids_by_n[int(body["data"]["n"])].add(request.headers["webhook-id"])
        self.first_at.setdefault(int(body["data"]["n"]), time.time())
        self.requests += 1
        return web.Response(text="ok")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/sink", self.handle)
        port = await self._stack.enter_async_context(serve_app(app))
        self.url = f"http://127.0.0.1:{port}/sink"
        return self.url

    async def close(self) -> None:
        await self._stack.aclose()

    def report(self, expected: int) -> dict[str, int]:
        """Lost events, duplicate requests, and events that arrived under more than one webhook-id."""
        return {
            "events": expected,
            "received": len(self.ids_by_n),
            "lost": expected - len(self.ids_by_n),
            "duplicate_requests": self.requests - len(self.ids_by_n),
            "ids_changed": sum(1 for ids in self.ids_by_n.values() if len(ids) > 1),
        }


def configure_webhook(db_url: str, encryption_key: str, sink_url: str, name: str = "sink") -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO webhook_configs (name, url, events, retry_config, timeout_ms, secret)"
            " VALUES (%s, %s, %s, %s, 2000, %s)",
            [
                name,
                sink_url,
                [EVENT_TYPE],
                Jsonb(FAST_RETRY),
                vault.encrypt_webhook_secrets(Keyring(encryption_key), [standard_webhooks.generate_secret()]),
            ],
        )


def produce_events(db_url: str, start: int, count: int) -> None:
    """Events start..start+count-1 in one transaction."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "SELECT emit_event(%s, jsonb_build_object('n', n)) FROM generate_series(%s::int, %s::int) AS n",
            [EVENT_TYPE, start, start + count - 1],
        )


def outbox_depth(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT webhook_outbox_depth()").fetchone()
    return int(row[0]) if row else 0


# --- users and trips ----------------------------------------------------------------------------------------------


def create_users(db_url: str, count: int) -> list[str]:
    users = [str(uuid.uuid4()) for _ in range(count)]
    with psycopg.connect(db_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO auth.users (id, email) VALUES (%s, %s)", [(u, f"{u[:8]}@bench.example") for u in users]
        )
    return users


INSERT_TRIPS = (
    "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
    " SELECT o::uuid, %s, 'Lisbon', current_date, current_date + 3 FROM unnest(%s::text[]) WITH ORDINALITY AS t (o, i)"
    " ORDER BY i RETURNING id"
)


def insert_trips(db_url: str, owners: list[str], label: str) -> list[int]:
    """One trip per owner (in one transaction); their ids, in the owners' order."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(INSERT_TRIPS, [label, owners]).fetchall()
    return [int(r[0]) for r in rows]


def insert_trip_rounds(db_url: str, owners: list[str], rounds: int) -> dict[str, list[int]]:
    """`rounds` transactions of one trip per owner, back to back on one connection; trip ids by owner."""
    trips: dict[str, list[int]] = {}
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i in range(rounds):
            for owner, row in zip(owners, conn.execute(INSERT_TRIPS, [f"round {i}", owners]).fetchall(), strict=True):
                trips.setdefault(owner, []).append(int(row[0]))
    return trips


# --- realtime -----------------------------------------------------------------------------------------------------


def _commit_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class RealtimeClient:
    index: int
    user: str
    token: str
    received: dict[int, float] = field(default_factory=dict)  # trip id -> receive time
    latencies: list[float] = field(default_factory=list)  # seconds from commit to receipt
    subscribed: bool = False
    postgres_ok: int = 0  # "Subscribed to PostgreSQL" frames: one per join, one more each time the database came back
    joins: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)


class RealtimeFleet:
    """`clients` sockets spread over `base_urls`; client i is user `users[i % len(users)]`."""

    def __init__(self, base_urls: list[str], users: list[str], clients: int, jwt_secret: str) -> None:
        self.base_urls = base_urls
        self.apikey = jwt.api_key(jwt_secret, "anon")
        self.clients = [
            RealtimeClient(i, users[i % len(users)], jwt.user_token(jwt_secret, users[i % len(users)], lifetime=86400))
            for i in range(clients)
        ]
        self.owners: dict[int, str] = {}  # trip id -> owner, filled by the run, for the leak count
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def ws_url(self, attempt: int, index: int) -> str:
        base = self.base_urls[(index + attempt) % len(self.base_urls)]
        return base.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={self.apikey}&vsn=1.0.0"

    async def start(self, timeout: float = 60.0) -> None:
        for client in self.clients:
            self._tasks.append(asyncio.create_task(self._run(client)))
            await asyncio.sleep(0)  # stagger the connects a little
        await self.wait_subscribed(timeout)

    async def wait_subscribed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.subscribed for c in self.clients):
                return
            await asyncio.sleep(0.1)
        missing = [c.index for c in self.clients if not c.subscribed]
        errors = [e for c in self.clients for e in c.errors][-5:]
        raise TimeoutError(f"{len(missing)} realtime clients not subscribed after {timeout} s; last errors: {errors}")

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, client: RealtimeClient) -> None:
        import websockets

        for attempt in itertools.count():
            if self._closing:
                return
            try:
                async with websockets.connect(
                    self.ws_url(attempt, client.index), open_timeout=10, max_size=2**22
                ) as socket:
                    await self._session(socket, client)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the replica died or restarted: reconnect, as the official clients do
                client.errors.append(f"{type(error).__name__}: {error}"[:200])
            client.subscribed = False
            client.reconnects += 1
            await asyncio.sleep(0.5)

    async def _session(self, socket: Any, client: RealtimeClient) -> None:
        refs = itertools.count(1)
        topic = f"realtime:trips-{client.index}"
        join = {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": False,
                "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "trips"}],
            },
            "access_token": client.token,
        }
        await socket.send(
            json.dumps({"event": "phx_join", "payload": join, "topic": topic, "ref": str(next(refs)), "join_ref": None})
        )
        client.joins += 1

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                frame = {"event": "heartbeat", "payload": {}, "topic": "phoenix", "ref": str(next(refs))}
                await socket.send(json.dumps(frame))

        beat = asyncio.create_task(heartbeat())
        try:
            async for raw in socket:
                now = time.time()
                frame = json.loads(raw)
                event, payload = frame.get("event"), frame.get("payload") or {}
                if event == "system" and payload.get("extension") == "postgres_changes":
                    if payload.get("status") == "ok":
                        client.subscribed = True
                        client.postgres_ok += 1
                    else:
                        client.errors.append(str(payload.get("message")))
                elif event == "postgres_changes":
                    data = payload["data"]
                    trip = int(data["record"]["id"])
                    if trip not in client.received:
                        client.received[trip] = now
                        client.latencies.append(now - _commit_time(data["commit_timestamp"]))
                elif event == "phx_reply" and payload.get("status") != "ok":
                    client.errors.append(json.dumps(payload)[:200])
                elif event in {"phx_error", "phx_close"}:
                    return
        finally:
            beat.cancel()

    def expected(self, trips_by_owner: dict[str, list[int]]) -> int:
        return sum(len(trips_by_owner.get(c.user, [])) for c in self.clients)

    def missing(self, trips_by_owner: dict[str, list[int]]) -> int:
        """Trips of a client's user that it did not receive."""
        return sum(1 for c in self.clients for t in trips_by_owner.get(c.user, []) if t not in c.received)

    def foreign(self) -> int:
        """Trips a client received that belong to another user (an RLS leak; must be 0)."""
        return sum(1 for c in self.clients for t in c.received if self.owners.get(t, c.user) != c.user)

    def latencies(self) -> list[float]:
        return [x for c in self.clients for x in c.latencies]


async def wait_received(fleet: RealtimeFleet, trips_by_owner: dict[str, list[int]], timeout: float) -> int:
    """Wait until every client has every trip of its user (or time runs out); the number still missing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fleet.missing(trips_by_owner) == 0:
            return 0
        await asyncio.sleep(0.1)
    return fleet.missing(trips_by_owner)


# --- cron ---------------------------------------------------------------------------------------------------------

TICK_JOB = "bench-tick"


def schedule_tick_job(db_url: str) -> int:
    """A `1 seconds` job through pg_cron's API (native or TripSage's emulation); its jobid."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT cron.schedule(%s, '1 seconds', 'SELECT 1')", [TICK_JOB]).fetchone()
    assert row is not None
    return int(row[0])


def unschedule_tick_job(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT cron.unschedule(%s)", [TICK_JOB])


def tick_runs(db_url: str, jobid: int) -> list[tuple[float, str, str | None]]:
    """(tick, status, message) of every recorded run of the tick job. With the emulation the tick is the scheduled
    second from cron.job_tick (whose primary key is what makes a tick run once); with native pg_cron, which records
    no tick, the run's start time stands in for it."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        emulated = conn.execute("SELECT to_regclass('cron.job_tick') IS NOT NULL").fetchone()
        if emulated and emulated[0]:
            query = (
                "SELECT extract(epoch FROM coalesce(t.tick, d.start_time))::float8, d.status, d.return_message"
                " FROM cron.job_run_details d LEFT JOIN cron.job_tick t ON t.runid = d.runid"
                " WHERE d.jobid = %s AND d.start_time IS NOT NULL ORDER BY 1"
            )
        else:
            query = (
                "SELECT extract(epoch FROM start_time)::float8, status, return_message FROM cron.job_run_details"
                " WHERE jobid = %s AND start_time IS NOT NULL ORDER BY start_time"
            )
        rows = conn.execute(query, [jobid]).fetchall()
    return [(float(r[0]), str(r[1]), r[2]) for r in rows]


def account_ticks(
    runs: list[tuple[float, str, str | None]], since: float, until: float, outages: list[tuple[float, float]]
) -> dict[str, Any]:
    """Each second tick in [since, until): ran once, ran twice (a duplicate), or missed. A missed tick is accounted
    for when it falls in an outage window (PostgreSQL down, or no leader yet after the leader was killed)."""
    per_second: dict[int, int] = defaultdict(int)
    for tick, _status, _message in runs:
        per_second[round(tick)] += 1
    ticks = range(int(since) + 1, int(until))
    missed = [t for t in ticks if per_second.get(t, 0) == 0]
    unexplained = [t for t in missed if not any(a - 1 <= t <= b + 1 for a, b in outages)]
    return {
        "ticks": len(ticks),
        "ran": sum(1 for t in ticks if per_second.get(t, 0) >= 1),
        "duplicates": sum(1 for t in ticks if per_second.get(t, 0) > 1),
        "missed_in_outages": len(missed) - len(unexplained),
        "missed_unexplained": len(unexplained),
        "failed_server_restarted": sum(1 for _s, st, m in runs if st == "failed" and m and "restart" in m),
    }


# --- a whole rig: cluster, receiver, users, replicas, clients ------------------------------------------------------


@dataclass
class Rig:
    """Everything a chaos or soak run needs, started in order and closed in reverse by `close`."""

    replicas_wanted: int
    clients_wanted: int
    users_wanted: int
    log_dir: Any
    cluster: Any = None
    sink: WebhookSink = field(default_factory=WebhookSink)
    key: str = ""
    users: list[str] = field(default_factory=list)
    replicas: list[Any] = field(default_factory=list)
    fleet: RealtimeFleet | None = None
    cron: bool = False
    pooler: str | None = None  # "session": the replicas reach PostgreSQL through a real pgbouncer in session mode
    bouncer: Any = None

    async def start(self) -> None:
        from testkit.harness import JWT_SECRET, Cluster, Replica, new_encryption_key

        self.cluster = Cluster()
        await asyncio.to_thread(self.cluster.start)
        self.key = new_encryption_key()
        configure_webhook(self.cluster.url, self.key, await self.sink.start())
        self.users = create_users(self.cluster.url, self.users_wanted)
        with psycopg.connect(self.cluster.url, autocommit=True) as conn:
            row = conn.execute("SELECT to_regprocedure('cron.schedule(text,text,text)') IS NOT NULL").fetchone()
        self.cron = bool(row and row[0])
        runtime_url = self.cluster.url
        if self.pooler is not None:
            from testkit import pgbouncer

            self.bouncer = pgbouncer.start(self.cluster.url, self.pooler)  # type: ignore[arg-type]
            runtime_url = self.bouncer.url(self.cluster.url)
        self.replicas = [Replica(runtime_url, self.key) for _ in range(self.replicas_wanted)]
        for replica in self.replicas:
            replica.start(self.log_dir)
        for replica in self.replicas:
            await asyncio.to_thread(replica.wait_healthy)
        self.fleet = RealtimeFleet([r.base_url for r in self.replicas], self.users, self.clients_wanted, JWT_SECRET)
        await self.fleet.start()

    def alive(self) -> int:
        return sum(1 for r in self.replicas if r.process is not None and r.process.poll() is None)

    def log_errors(self) -> list[str]:
        """ERROR lines and tracebacks in the replicas' logs."""
        found: list[str] = []
        for replica in self.replicas:
            if replica.log_path is not None and replica.log_path.exists():
                for line in replica.log_path.read_text(errors="replace").splitlines():
                    if "Traceback" in line or " ERROR " in line or line.startswith("ERROR"):
                        found.append(line[:300])
        return found

    async def close(self) -> None:
        if self.fleet is not None:
            await self.fleet.close()
        for replica in self.replicas:
            await asyncio.to_thread(replica.stop)
        await self.sink.close()
        if self.bouncer is not None:
            self.bouncer.stop()
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.close)


# --- running a checked scenario -----------------------------------------------------------------------------------

Check = tuple[str, bool, str]  # what is checked, whether it held, the figures


def checks_table(checks: list[Check]) -> list[str]:
    lines = ["| check | result | figures |", "|---|---|---|"]
    return lines + [f"| {name} | {'pass' if ok else 'FAIL'} | {figures} |" for name, ok, figures in checks]


def run_checked(
    prefix: str,
    run: Callable[[Any, Path], Awaitable[dict[str, Any]]],
    report: Callable[[dict[str, Any], Any], str],
    verdicts: Callable[[dict[str, Any], Any], list[Check]],
    args: Any,
) -> int:
    """Run a scenario with its replicas' logs in a temp dir, print its report; 0 when every check held (the logs are
    then removed), 1 otherwise (the logs are kept and their path printed)."""
    log_dir = Path(tempfile.mkdtemp(prefix=prefix))
    result = asyncio.run(run(args, log_dir))
    print(report(result, args))
    passed = all(ok for _name, ok, _figures in verdicts(result, args))
    if passed:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        print(f"\nreplica logs kept in {log_dir}", file=sys.stderr)
    return 0 if passed else 1
