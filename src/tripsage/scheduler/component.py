"""The emulated pg_cron in the runtime: one leader among the replicas runs the jobs of cron.job.

- Leadership: `pg_try_advisory_lock` held on a dedicated connection; followers retry every second, so a dead
  leader (its session ends with the process) is replaced within about a second.
- Exactly once: a tick runs only if its (jobid, tick) row could be inserted into cron.job_tick; the lock is only an
  optimisation, the primary key is the guarantee.
- Changes to cron.job wake the leader (NOTIFY tripsage_cron from a statement trigger); it also re-reads every second.
- A job still running at its next tick is not started again: the tick is recorded as 'skipped'.
- A new leader marks runs left unfinished as failed ('server restarted'), and resumes each job after its last
  recorded tick (at most CATCH_UP seconds back), so a tick due during a failover runs late rather than never.
- When pg_cron is native in the database, pg_cron runs the jobs and this component stays idle.

Why the leader has a loop of its own rather than `tasks.work_loop` (the dispatcher's, the email sender's, the
realtime reader's and the net worker's): work_loop runs a round after a wake-up or a fixed poll interval, runs the
next at once when a round was full, and retries a failed round in place after a backoff. The leader instead sleeps
until the next tick, a different time every round (the nearest tick less PREPARE_AHEAD, at most POLL_INTERVAL); no
round is ever "full"; and an error ends its leadership rather than one round (`_lead` closes the lock's connection,
waits ERROR_BACKOFF and competes for the lock again; the new leader's catch-up then covers the gap). Followers retry
the lock every FOLLOWER_RETRY seconds. The wake-or-timeout wait itself is shared: `tasks.wait_for_wake`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from tripsage import cron, queries_for
from tripsage.db import supabase_vault, vault
from tripsage.db.connector import Connection, Database, connect, execute_on, fetch_one_on, listen
from tripsage.db.cron_timezone import schedule_timezone
from tripsage.db.job_sessions import Session, close_quietly
from tripsage.exceptions import ConfigurationError, TripSageError
from tripsage.scheduler.runner import Job, execute, open_session
from tripsage.tasks import cancel_all, wait_for_wake

if TYPE_CHECKING:
    from tripsage.config import Settings
    from tripsage.runtime import Runtime

log = logging.getLogger(__name__)
Q = queries_for("tripsage.scheduler")

CHANNEL = "tripsage_cron"
LEADER_LOCK = 0x7472_6970_6372_6F6E  # "tripcron": the advisory lock key of the scheduler's leader (per database)
POLL_INTERVAL = 1.0  # seconds: re-read cron.job, and the longest sleep between ticks
FOLLOWER_RETRY = 1.0  # seconds between a follower's attempts to become the leader
CATCH_UP = timedelta(seconds=10)  # how far back a new leader runs ticks nobody ran
ERROR_BACKOFF = 1.0  # seconds
PREPARE_AHEAD = 0.5  # seconds before a tick its connection is opened, so the run starts on time


class SchedulerComponent:
    name = "scheduler"

    def __init__(self) -> None:
        self.mode = "unknown"  # native | emulated | missing
        self.leader = False
        self.runs_started = 0
        self.ticks_skipped = 0
        self.last_error: str | None = None
        self.timezone = "UTC"  # of the schedules: TRIPSAGE_CRON_TIMEZONE, else the server's cron.timezone
        self._runtime: Runtime | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[int, asyncio.Task[None]] = {}
        self._cursor: dict[int, datetime] = {}  # per job: ticks after this are due
        self._schedules: dict[int, tuple[str, cron.Schedule]] = {}
        self._prepared: dict[int, tuple[Job, asyncio.Task[Session]]] = {}  # per job: a session opened ahead
        self._closing: set[asyncio.Task[None]] = set()
        self._runids: dict[int, asyncio.Task[None]] = {}  # runs in progress in this process
        self._vault_key: bytes | None = None  # handed to jobs that may read Vault's secrets (docs/vault.md)

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.mode = str(await runtime.database.fetch_value(Q["cron_mode"]))
        if self.mode != "emulated":  # native pg_cron runs its own jobs; without either there is nothing to run
            return
        if not runtime.settings.cron_enabled:
            self.mode = "disabled"
            return
        self._vault_key = jobs_vault_key(runtime.settings)
        self.timezone = await schedule_timezone(runtime.settings, runtime.database)
        self._tasks = [
            asyncio.create_task(self._listen(runtime.database_url), name="scheduler-listen"),
            asyncio.create_task(self._lead(), name="scheduler-leader"),
        ]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []
        for _job, session in self._prepared.values():
            self._discard(session)
        self._prepared = {}
        # Runs in progress finish (or are cut by their statement timeout) on their own connections; wait briefly,
        # then leave them: the next leader marks whatever is left unfinished as failed.
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=5)
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=5)
        self.leader = False

    def health(self) -> dict[str, Any]:
        if self.mode != "emulated":
            return {
                "status": "ok",
                "emulated": False,
                "mode": self.mode,
                "note": {
                    "native": "pg_cron runs the jobs",
                    "disabled": "TRIPSAGE_CRON_ENABLED is false: other replicas run the jobs",
                }.get(self.mode, "no cron schema"),
            }
        alive = all(not t.done() for t in self._tasks)
        return {
            "status": "ok" if alive else "degraded",
            "emulated": True,
            "leader": self.leader,
            "running": len(self._running),
            "runs_started": self.runs_started,
            "ticks_skipped": self.ticks_skipped,
            "timezone": self.timezone,
            "last_error": self.last_error,
        }

    def _now(self) -> datetime:
        """The runtime's wall clock (injected: tests may move it), as an aware UTC datetime."""
        return datetime.fromtimestamp(self.runtime.clock.time(), UTC)

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None
        return self._runtime

    async def _listen(self, url: str) -> None:
        async for _notification in listen(url, [CHANNEL]):
            self._wake.set()

    # -- leadership --------------------------------------------------------------------------------------------

    async def _lead(self) -> None:
        while True:
            try:
                lock = await connect(self.runtime.database_url, application_name="tripsage-scheduler-leader")
            except TripSageError as error:
                self.last_error = str(error)
                await asyncio.sleep(ERROR_BACKOFF)
                continue
            try:
                while not await self._try_lock(lock):
                    await asyncio.sleep(FOLLOWER_RETRY)
                self.leader = True
                log.info("scheduler: this replica is the leader")
                await self._schedule(lock)
            except TripSageError as error:
                self.last_error = str(error)
                log.warning("scheduler: leadership lost or failed (%s)", error)
                await asyncio.sleep(ERROR_BACKOFF)
            except Exception as error:  # a bug must not end the leader task silently: say it, then lead again
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("scheduler: the leader failed unexpectedly")
                await asyncio.sleep(ERROR_BACKOFF)
            finally:
                self.leader = False
                with contextlib.suppress(Exception):
                    await lock.close()

    @staticmethod
    async def _try_lock(lock: Connection) -> bool:
        row = await fetch_one_on(lock, Q["try_leadership"], {"key": LEADER_LOCK})
        return bool(row and row["leader"])

    # -- the leader's loop -------------------------------------------------------------------------------------

    async def _schedule(self, lock: Connection) -> None:
        db = self.runtime.database
        for _job, session in self._prepared.values():
            self._discard(session)
        self._prepared = {}
        ours = [runid for runid, task in self._runids.items() if not task.done()]
        for row in await db.fetch_all(Q["interrupted_runs"], {"ours": ours}):
            log.warning("scheduler: run %s was interrupted; marked failed (server restarted)", row["runid"])
        resume = {r["jobid"]: r["tick"] for r in await db.fetch_all(Q["last_ticks"])}
        started = self._now()
        self._cursor = {jobid: max(tick, started - CATCH_UP) for jobid, tick in resume.items()}
        self._schedules = {}
        boot = (await db.fetch_one(Q["server_started"]) or {}).get("started")
        jobs = await self._load()
        for job in jobs.values():
            if isinstance(self._parsed(job), cron.Reboot) and boot is not None:
                await self._claim([(job, boot)])
        checked = time.monotonic()
        while True:
            self._wake.clear()
            now = self._now()
            next_due: float | None = None  # seconds until the loop has something to do
            claims: list[tuple[Job, datetime]] = []
            for job in jobs.values():
                due, _ = self._due(job, now)
                for tick in due[:-1]:  # several ticks due at once (a stall): the last one runs, the others are skipped
                    await self._skip(job, tick)
                if due:
                    claims.append((job, due[-1]))
            # Jobs due at the same tick are claimed in one statement, not one round trip after another.
            await self._claim(claims)
            # The periodic checks come after the due ticks, so they never delay a run.
            if time.monotonic() - checked >= POLL_INTERVAL:
                await execute_on(lock, Q["ping"])  # still holding the lock: the session is alive
                jobs = await self._load()
                checked = time.monotonic()
            for job in jobs.values():
                upcoming = self._upcoming(job)
                if upcoming is None:
                    continue
                until = (upcoming - self._now()).total_seconds()
                if until <= PREPARE_AHEAD:
                    self._prepare(job)
                else:
                    until -= PREPARE_AHEAD  # wake up in time to open its connection
                if next_due is None or until < next_due:
                    next_due = until
            wait = POLL_INTERVAL - (time.monotonic() - checked)
            if next_due is not None:
                wait = min(wait, next_due)
            if wait > 0 and await wait_for_wake(self._wake, wait):  # cron.job changed
                jobs = await self._load()
                checked = time.monotonic()

    async def _load(self) -> dict[int, Job]:
        jobs: dict[int, Job] = {}
        now = self._now()
        for row in await self.runtime.database.fetch_all(Q["load_jobs"]):
            job = Job.from_row(row)
            try:
                parsed = self._parsed(job)
            except cron.InvalidSchedule:
                continue
            if isinstance(parsed, cron.Reboot):
                jobs[job.jobid] = job
                continue
            jobs[job.jobid] = job
            self._cursor.setdefault(job.jobid, now)  # a new job starts from now
        for jobid in list(self._cursor):
            if jobid not in jobs:
                del self._cursor[jobid]
        for jobid in list(self._prepared):
            if jobid not in jobs or self._prepared[jobid][0] != jobs[jobid]:
                self._discard(self._prepared.pop(jobid)[1])
        return jobs

    def _parsed(self, job: Job) -> cron.Schedule:
        cached = self._schedules.get(job.jobid)
        if cached is None or cached[0] != job.schedule:
            if cached is not None:  # the schedule changed: start from now
                self._cursor[job.jobid] = self._now()
            cached = (job.schedule, cron.parse(job.schedule))
            self._schedules[job.jobid] = cached
        return cached[1]

    def _due(self, job: Job, now: datetime) -> tuple[list[datetime], datetime | None]:
        """Ticks of `job` due by `now` (after its cursor), and the next one after `now`."""
        parsed = self._parsed(job)
        cursor = self._cursor.get(job.jobid)
        if isinstance(parsed, cron.Reboot) or cursor is None:
            return [], None
        tz = self.timezone
        due: list[datetime] = []
        while True:
            tick = cron.next_tick(parsed, cursor, tz)
            if tick is None:
                return due, None
            if tick > now:
                return due, tick
            due.append(tick)
            cursor = tick
            self._cursor[job.jobid] = tick

    def _upcoming(self, job: Job) -> datetime | None:
        """The job's next tick after its cursor (None for @reboot, a schedule that never fires, or no cursor)."""
        cursor = self._cursor.get(job.jobid)
        parsed = self._parsed(job)
        if isinstance(parsed, cron.Reboot) or cursor is None:
            return None
        return cron.next_tick(parsed, cursor, self.timezone)

    async def _skip(self, job: Job, tick: datetime) -> None:
        await self.runtime.database.execute(Q["skip_tick"], {"jobid": job.jobid, "tick": tick})
        self.ticks_skipped += 1
        self.runtime.metrics.scheduler_ticks.labels(outcome="skipped").inc()

    async def _claim(self, due: list[tuple[Job, datetime]]) -> None:
        """Start the runs of these (job, tick) pairs: one statement claims them all (a tick another replica already
        claimed is left out), then each run starts on its own connection."""
        wanted: list[tuple[Job, datetime]] = []
        for job, tick in due:
            running = self._running.get(job.jobid)
            if running is not None and not running.done():
                await self._skip(job, tick)
            else:
                wanted.append((job, tick))
        if not wanted:
            return
        rows = await self.runtime.database.fetch_all(
            Q["claim_ticks"],
            {
                "jobids": [job.jobid for job, _ in wanted],
                "ticks": [tick for _, tick in wanted],
                "databases": [job.database for job, _ in wanted],
                "usernames": [job.username for job, _ in wanted],
                "commands": [job.command for job, _ in wanted],
            },
        )
        claimed = {row["jobid"]: row for row in rows}
        for job, tick in wanted:
            prepared = self._prepared.pop(job.jobid, None)
            session: asyncio.Task[Session] | None = None
            if prepared is not None:
                if prepared[0] == job:
                    session = prepared[1]
                else:
                    self._discard(prepared[1])
            row = claimed.get(job.jobid)
            if row is None:  # another replica ran this tick
                if session is not None:
                    self._discard(session)
                continue
            runid = row["runid"]
            self.runs_started += 1
            self.runtime.metrics.scheduler_ticks.labels(outcome="started").inc()
            task = asyncio.create_task(self._run(job, runid, tick, session), name=f"scheduler-run-{runid}")
            self._running[job.jobid] = task
            self._runids[runid] = task
            task.add_done_callback(functools.partial(self._forget_run, runid))

    def _prepare(self, job: Job) -> None:
        """Open the session of the job's next run now (it is due within PREPARE_AHEAD), unless it is running."""
        running = self._running.get(job.jobid)
        if job.jobid in self._prepared or (running is not None and not running.done()):
            return
        session = asyncio.create_task(
            open_session(
                self.runtime.database_url,
                job,
                self.runtime.settings.cron_statement_timeout_s,
                "tripsage-scheduler-job",
                self._vault_key,
            ),
            name=f"scheduler-prepare-{job.jobid}",
        )
        self._prepared[job.jobid] = (job, session)

    def _discard(self, session: asyncio.Task[Session]) -> None:
        """Close a session opened ahead that will not be used (or forget its failure)."""

        async def close() -> None:
            try:
                conn = await session
            except BaseException:  # its failure mattered only to a run that will not happen
                return
            await close_quietly(conn)

        closing = asyncio.get_running_loop().create_task(close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def _forget_run(self, runid: int, _task: asyncio.Task[None]) -> None:
        self._runids.pop(runid, None)

    async def _run(self, job: Job, runid: int, tick: datetime, session: asyncio.Task[Session] | None) -> None:
        try:
            outcome = await execute(
                self.runtime.database,
                self.runtime.database_url,
                job,
                runid,
                self.runtime.settings.cron_statement_timeout_s,
                "tripsage-scheduler-job",
                session,
                self._vault_key,
            )
            self.runtime.metrics.scheduler_runs.labels(status=outcome.status).inc()
            if outcome.started is not None:
                self.runtime.metrics.scheduler_delay.observe(max(0.0, (outcome.started - tick).total_seconds()))
            if outcome.status == "failed":
                log.warning("scheduler: job %s (run %s) failed: %s", job.jobname or job.jobid, runid, outcome.message)
        finally:
            if self._running.get(job.jobid) is asyncio.current_task():
                del self._running[job.jobid]


def jobs_vault_key(settings: Settings) -> bytes | None:
    """The Vault key the jobs get (docs/vault.md), or None, with a warning that says why, when the settings have no
    usable encryption key (the jobs then read no Vault secret and fail with the error that says so)."""
    try:
        return supabase_vault.session_key(vault.keyring(settings))
    except ConfigurationError as error:
        log.warning("scheduler: jobs get no Vault key: %s", error)
        return None


async def run_now(
    db: Database, base_url: str, name: str, default_timeout_s: float = 600.0, vault_key: bytes | None = None
) -> dict[str, Any]:
    """`tripsage jobs run NAME`: run a job now, recorded like a scheduled run (native pg_cron or emulated), with the
    Vault key a scheduled run gets."""
    row = await db.fetch_one(Q["job_by_name"], {"name": name})
    if row is None:
        raise LookupError(f"unknown job: {name}")
    job = Job.from_row(row)
    mode = await db.fetch_value(Q["cron_mode"])
    params = {"jobid": job.jobid, "database": job.database, "username": job.username, "command": job.command}
    claimed = await db.fetch_one(Q["manual_run" if mode == "emulated" else "manual_run_native"], params)
    assert claimed is not None
    outcome = await execute(
        db, base_url, job, claimed["runid"], default_timeout_s, "tripsage-jobs-run", vault_key=vault_key
    )
    return {"job": name, "runid": outcome.runid, "status": outcome.status, "message": outcome.message}
