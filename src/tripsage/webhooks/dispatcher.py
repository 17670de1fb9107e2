"""The dispatcher: claims due deliveries (SKIP LOCKED, with a lease), signs and POSTs them, records every attempt.

At least once: a delivery is leased until its timeout plus a margin; if this process dies mid-flight, the lease
expires and any dispatcher takes it again (same webhook-id, so receivers can dedupe). A result is recorded only while
this dispatcher still holds the lease for that attempt (fencing), so two replicas never both complete one delivery.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from tripsage import __version__, queries_for, redact, ssrf, standard_webhooks
from tripsage.clock import Clock, SystemClock, utc_now
from tripsage.crypto import Keyring
from tripsage.db import vault
from tripsage.db.connector import Database, Jsonb
from tripsage.metrics import Metrics
from tripsage.webhooks import retry

log = logging.getLogger(__name__)
Q = queries_for("tripsage.webhooks")

BATCH_SIZE = 200  # deliveries claimed per statement
LEASE_MARGIN = 30.0  # seconds a lease outlives the endpoint's timeout
RESPONSE_EXCERPT = 1024  # bytes of a response body kept in webhook_logs
MAX_CONNECTIONS = 256  # open connections across all endpoints
USER_AGENT = f"TripSage-Webhooks/{__version__}"


@dataclass
class Outcome:
    """One attempt's result, as recorded in webhooks.deliveries and webhook_logs."""

    delivery_id: int
    config_id: int
    config_name: str
    attempt: int
    status: str  # succeeded | retrying | dead
    next_at: dt.datetime | None
    code: int | None
    body: str | None
    duration_ms: int
    error: str | None
    gone: bool = False  # 410: the endpoint asked to be disabled
    event_created_at: dt.datetime | None = None  # when the event was committed (for the latency metric)


@dataclass
class Endpoint:
    """One endpoint's settings as sent with, decoded once per version of its webhook_configs row (not per delivery)."""

    id: int
    version: str  # the row's xmin: a claimed delivery naming another version makes the dispatcher read it again
    name: str
    url: str
    secret: bytes
    headers: dict[str, str]  # the endpoint's own headers and Content-Type; each attempt adds its signature
    timeout: aiohttp.ClientTimeout
    timeout_ms: int
    policy: retry.RetryPolicy
    semaphore: asyncio.Semaphore
    failing: bool  # failing_since is set (a success must clear it)
    signing_keys: list[bytes] | None = None  # decrypted at its first attempt (a bad secret fails that delivery only)


class Dispatcher:
    """Delivers the outbox of one database. Call `open`, then `dispatch_once` (or let the component loop it)."""

    def __init__(
        self,
        db: Database,
        keys: Keyring,
        allow: ssrf.AllowList,
        *,
        worker_id: str | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        batch_size: int = BATCH_SIZE,
        lease_margin: float = LEASE_MARGIN,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.keys = keys
        self.allow = allow
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # One wall clock for everything (leases, retries, Retry-After, webhook-timestamp, latency): the runtime's.
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.batch_size = batch_size
        self.lease_margin = lease_margin
        self.metrics = metrics
        self.session: aiohttp.ClientSession | None = None
        self._limits: dict[int, tuple[int, asyncio.Semaphore]] = {}
        self._endpoints: dict[int, Endpoint] = {}
        self._url_checks: dict[str, str | None] = {}  # url -> the SSRF refusal, or None when it is allowed
        # One claim at a time per dispatcher: concurrent claims of one process only collide on the same rows
        # (SKIP LOCKED walks past each other's), costing PostgreSQL CPU; sends and records still overlap.
        self._claiming = asyncio.Lock()
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, limit_per_host=0, resolver=ssrf.GuardedResolver(self.allow), keepalive_timeout=30
        )
        # Accept-Encoding: identity asks for the response as is (we keep an excerpt of it); set as a header rather
        # than with skip_auto_headers, which costs aiohttp a multidict built and sorted on every request.
        self.session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def dispatch_once(self) -> int:
        """Claim one batch of due deliveries, send them, record the results; the number claimed."""
        async with self._claiming:
            rows = await self._claim()
        if not rows:
            return 0
        endpoints = await self._endpoints_of(rows)
        # A delivery whose endpoint was deleted since the claim went with it (ON DELETE CASCADE): nothing to send.
        outcomes = await asyncio.gather(
            *(self._deliver(row, endpoints[row["config_id"]]) for row in rows if row["config_id"] in endpoints)
        )
        if outcomes:
            await self._record(list(outcomes))
        return len(rows)

    async def _claim(self) -> list[dict[str, Any]]:
        return await self.db.fetch_all(
            Q["claim_deliveries"],
            {
                "now": self._now(),
                "limit": self.batch_size,
                "worker": self.worker_id,
                "lease_margin_s": self.lease_margin,
            },
        )

    # -- endpoints ----------------------------------------------------------------------------------------------

    async def _endpoints_of(self, rows: list[dict[str, Any]]) -> dict[int, Endpoint]:
        """The endpoints of these claimed deliveries, read again only when one's version changed."""
        known = self._endpoints
        stale = {
            r["config_id"] for r in rows if (e := known.get(r["config_id"])) is None or e.version != r["config_version"]
        }
        if stale:
            for config in await self.db.fetch_all(Q["endpoint_configs"], {"ids": sorted(stale)}):
                known[config["id"]] = self._endpoint(config)
        return known

    def _endpoint(self, config: dict[str, Any]) -> Endpoint:
        headers = {str(k): str(v) for k, v in (config["headers"] or {}).items()}
        headers["Content-Type"] = "application/json"
        return Endpoint(
            id=config["id"],
            version=config["version"],
            name=config["name"],
            url=config["url"],
            secret=bytes(config["secret"]) if config["secret"] is not None else b"",
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=config["timeout_ms"] / 1000),
            timeout_ms=config["timeout_ms"],
            policy=retry.RetryPolicy.from_config(config["retry_config"]),
            semaphore=self._semaphore(config["id"], int(config["max_concurrency"])),
            failing=bool(config["failing"]),
        )

    def _semaphore(self, config_id: int, limit: int) -> asyncio.Semaphore:
        known = self._limits.get(config_id)
        if known is None or known[0] != limit:
            known = (limit, asyncio.Semaphore(limit))
            self._limits[config_id] = known
        return known[1]

    def _signing_keys(self, endpoint: Endpoint) -> list[bytes]:
        """The endpoint's Standard Webhooks keys, decrypted once per version of its row (it is decoded anew when
        the secret or the encryption key changes, since both rewrite the row)."""
        if endpoint.signing_keys is None:
            active = vault.decrypt_webhook_secrets(self.keys, endpoint.secret)
            endpoint.signing_keys = [standard_webhooks.secret_key(secret) for secret in active]
        return endpoint.signing_keys

    def _check_url(self, url: str) -> None:
        """ssrf.check_url, remembered per URL (the allow list is fixed for this dispatcher's life)."""
        try:
            refusal = self._url_checks[url]
        except KeyError:
            try:
                ssrf.check_url(url, self.allow)
                refusal = None
            except ssrf.UnsafeTarget as error:
                refusal = str(error)
            if len(self._url_checks) >= 4096:
                self._url_checks.clear()
            self._url_checks[url] = refusal
        if refusal is not None:
            raise ssrf.UnsafeTarget(refusal)

    def _now(self) -> dt.datetime:
        return utc_now(self.clock)

    # -- one attempt ------------------------------------------------------------------------------------------

    async def _deliver(self, row: dict[str, Any], endpoint: Endpoint) -> Outcome:
        assert self.session is not None, "Dispatcher.open() first"
        began = time.perf_counter()
        code: int | None = None
        excerpt: str | None = None
        error: str | None = None
        retry_after: float | None = None
        refused = abort = False
        try:
            self._check_url(endpoint.url)
            body = row["body"].encode()  # built by the claim (see queries.sql)
            # webhook-timestamp is the time of this attempt (receivers check it against theirs).
            headers = endpoint.headers.copy()
            headers.update(
                standard_webhooks.headers(row["webhook_id"], int(self.clock.time()), body, self._signing_keys(endpoint))
            )
            async with (
                endpoint.semaphore,
                self.session.post(
                    endpoint.url, data=body, headers=headers, timeout=endpoint.timeout, allow_redirects=False
                ) as response,
            ):
                code = response.status
                raw = await response.content.read(RESPONSE_EXCERPT)
                excerpt = raw.decode("utf-8", "replace")
                answer = response.headers
                if (asked := answer.get("Retry-After")) is not None:
                    retry_after = retry.parse_retry_after(asked, self._now())
                # Svix's convention: a receiver may ask that this message never be retried.
                abort = answer.get("webhook-delivery", "").lower() == "abort-message"
                if not retry.is_success(code):
                    error = f"HTTP {code}"
        except ssrf.UnsafeTarget as refusal:
            refused, error = True, str(refusal)
        except TimeoutError:
            error = f"timed out after {endpoint.timeout_ms} ms"
        except aiohttp.ClientError as failure:
            error = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
        except Exception as failure:  # a bad secret or header must fail this delivery, not the batch
            log.exception("webhook delivery %s failed unexpectedly", row["id"])
            error = f"{type(failure).__name__}: {failure}"
        duration_ms = round((time.perf_counter() - began) * 1000)
        return self._classify(row, endpoint, code, excerpt, duration_ms, error, retry_after, refused or abort)

    def _classify(
        self,
        row: dict[str, Any],
        endpoint: Endpoint,
        code: int | None,
        excerpt: str | None,
        duration_ms: int,
        error: str | None,
        retry_after: float | None,
        refused: bool,
    ) -> Outcome:
        error = redact.redact_optional(error)  # stored in webhook_logs and shown by /health, the CLI, the dashboard
        base = {
            "delivery_id": row["id"],
            "config_id": endpoint.id,
            "config_name": endpoint.name,
            "attempt": row["attempts"],
            "code": code,
            "body": excerpt,
            "duration_ms": duration_ms,
            "event_created_at": row.get("event_created_at"),
        }
        if code is not None and retry.is_success(code):
            return Outcome(**base, status="succeeded", next_at=None, error=None)
        if code == 410:
            return Outcome(**base, status="dead", next_at=None, error="410 Gone: endpoint disabled", gone=True)
        if refused:  # a policy refusal (or the receiver's abort-message) does not get better by waiting
            return Outcome(**base, status="dead", next_at=None, error=error)
        delay = endpoint.policy.next_delay(row["attempts"], retry_after, self.rng)
        if delay is None:
            return Outcome(**base, status="dead", next_at=None, error=error)
        return Outcome(**base, status="retrying", next_at=self._now() + dt.timedelta(seconds=delay), error=error)

    # -- recording ----------------------------------------------------------------------------------------------

    async def _record(self, outcomes: list[Outcome]) -> None:
        now = self._now()
        await self.db.execute(
            Q["finish_deliveries"],
            {
                "now": now,
                "worker": self.worker_id,
                "ids": [o.delivery_id for o in outcomes],
                "attempts": [o.attempt for o in outcomes],
                "statuses": [o.status for o in outcomes],
                "next_at": [o.next_at for o in outcomes],
                "codes": [o.code for o in outcomes],
                "bodies": [o.body for o in outcomes],
                "durations": [o.duration_ms for o in outcomes],
                "errors": [o.error for o in outcomes],
            },
        )
        succeeded = {o.config_id for o in outcomes if o.status == "succeeded"}
        failing = {o.config_id for o in outcomes if o.status != "succeeded" and not o.gone} - succeeded
        self.delivered += sum(1 for o in outcomes if o.status == "succeeded")
        if self.metrics is not None:
            self._observe(outcomes)
        self.failed += sum(1 for o in outcomes if o.status != "succeeded")
        if failing or len(succeeded) < len(outcomes):
            self.last_error = next((o.error for o in outcomes if o.error), self.last_error)
        # Only endpoints whose failure clock was running when their deliveries were claimed (the clock's start
        # changes the row's version, so the endpoint is read again at the next claim).
        recovered = sorted(i for i in succeeded if (e := self._endpoints.get(i)) is not None and e.failing)
        if recovered:
            await self.db.execute(Q["configs_recovered"], {"ids": recovered})
        disabled: list[dict[str, Any]] = []
        if failing:
            rows = await self.db.fetch_all(
                Q["configs_failing"],
                {"ids": sorted(failing), "now": now, "disable_after_s": retry.DEFAULT_DISABLE_AFTER},
            )
            disabled.extend(row for row in rows if not row["is_active"])
        for config_id in sorted({o.config_id for o in outcomes if o.gone}):
            row = await self.db.fetch_one(Q["disable_config"], {"id": config_id, "reason": "410 Gone"})
            if row is not None:
                disabled.append(row)
        for row in disabled:
            await self._notify_disabled(row)

    def _observe(self, outcomes: list[Outcome]) -> None:
        """Prometheus: attempts by outcome, and commit-to-delivery latency of first attempts that succeeded."""
        assert self.metrics is not None
        finished = self._now()
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
            if o.status == "succeeded" and o.attempt == 1 and o.event_created_at is not None:
                seconds = (finished - o.event_created_at).total_seconds()
                self.metrics.delivery_latency.observe(max(0.0, seconds))
        for status, count in counts.items():
            self.metrics.deliveries.labels(outcome=status).inc(count)

    async def _notify_disabled(self, row: dict[str, Any]) -> None:
        """Tell the operators (log) and any endpoint subscribed to webhook.endpoint.disabled (an event)."""
        log.warning("webhook endpoint %s (%s) disabled: %s", row["name"], row["url"], row["disabled_reason"])
        await self.db.fetch_value(
            Q["emit_event"],
            {
                "event_type": "webhook.endpoint.disabled",
                "payload": Jsonb(
                    {"name": row["name"], "url": redact.redact(row["url"]), "reason": row["disabled_reason"]}
                ),
                "dedupe_key": None,
            },
        )
