"""The functions component: the two endpoints, the embedding provider, and the email sender that drains
functions.email_outbox (claims with SKIP LOCKED and a lease, so any number of replicas may send)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Route

from tripsage import queries_for
from tripsage.ai.chat_extraction import ChatPreferenceExtractor
from tripsage.ai.embeddings import EmbeddingProvider, LocalProvider, provider_from_settings
from tripsage.exceptions import ConfigurationError, DatabaseError
from tripsage.functions import ai_processing, trip_events
from tripsage.functions.app import Context, FunctionEndpoint, not_found
from tripsage.functions.email import Email, Mailer, SmtpConfig
from tripsage.tasks import cancel_all, work_loop

if TYPE_CHECKING:
    from tripsage.runtime import Runtime

log = logging.getLogger(__name__)
Q = queries_for("tripsage.functions")

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAIL_POLL_INTERVAL = 2.0  # seconds between looks for due emails when nothing wakes the sender
MAIL_BATCH = 20  # emails claimed at once
MAIL_LEASE = 120.0  # seconds an email in flight stays claimed
MAIL_MAX_ATTEMPTS = 8
MAIL_RETRY_BASE = 10.0  # seconds; doubled per attempt, capped at an hour
ERROR_BACKOFF = 1.0  # seconds after a database error
RETENTION_INTERVAL = 3600.0  # seconds between retention passes
RETENTION = 30 * 24 * 3600.0  # seconds idempotency records and sent emails are kept
RETENTION_BATCH = 10000  # rows deleted per statement


class FunctionsComponent:
    name = "functions"

    def __init__(self, *, provider: EmbeddingProvider | None = None) -> None:
        self.trip_events = FunctionEndpoint("trip-events", "trip_events", trip_events.HANDLERS, users_allowed=False)
        self.ai_processing = FunctionEndpoint(
            "ai-processing", "ai_processing", ai_processing.HANDLERS, users_allowed=True
        )
        self.provider = provider
        self.mailer: Mailer | None = None
        self.chat_extractor: ChatPreferenceExtractor | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.emails_sent = 0
        self.emails_failed = 0

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/functions/v1/trip-events", self.trip_events.handle, methods=ALL_METHODS),
            Route("/functions/v1/ai-processing", self.ai_processing.handle, methods=ALL_METHODS),
            Route("/functions/v1/{name}", not_found, methods=ALL_METHODS),
        ]

    async def start(self, runtime: Runtime) -> None:
        settings = runtime.settings
        if self.provider is None:
            self.provider = provider_from_settings(settings)
        if settings.smtp_url:
            self.mailer = Mailer(SmtpConfig.parse(settings.smtp_url), settings.smtp_from)
        else:
            log.warning("SMTP_URL is not set: functions write notifications but send no email")
        if settings.preference_extractor == "openai":
            if not settings.openai_api_key:
                raise ConfigurationError("TRIPSAGE_PREFERENCE_EXTRACTOR=openai needs OPENAI_API_KEY")
            self.chat_extractor = ChatPreferenceExtractor(
                api_key=settings.openai_api_key, base_url=settings.openai_base_url, model=settings.openai_chat_model
            )
        context = Context(
            runtime.database, self.provider, self.mailer is not None, self._wake.set, chat_extractor=self.chat_extractor
        )
        for endpoint in (self.trip_events, self.ai_processing):
            endpoint.runtime = runtime
            endpoint.context = context
        self._stopping = False
        self._tasks = [asyncio.create_task(self._retention_loop(runtime), name="functions-retention")]
        if self.mailer is not None:
            self._tasks.append(asyncio.create_task(self._mail_loop(runtime), name="functions-mail"))

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await cancel_all(self._tasks)
        self._tasks = []
        if self.provider is not None:
            await self.provider.close()
        if self.chat_extractor is not None:
            await self.chat_extractor.close()
            self.chat_extractor = None

    def health(self) -> dict[str, Any]:
        provider = self.provider
        report: dict[str, Any] = {
            "status": "ok",
            "email": "smtp" if self.mailer is not None else "disabled (SMTP_URL not set)",
            "emails_sent": self.emails_sent,
            "emails_failed": self.emails_failed,
        }
        if provider is not None:
            report["embedding_model"] = provider.model
            if isinstance(provider, LocalProvider):
                report["embedding_model_loaded"] = provider.loaded
        report["preference_extractor"] = self.chat_extractor.model if self.chat_extractor is not None else "rules"
        return report

    async def prune(self, runtime: Runtime, older_than_s: float = RETENTION) -> int:
        """Delete idempotency records and sent emails older than the retention; the rows deleted."""
        deleted = 0
        for name in ("prune_processed_webhooks", "prune_sent_emails"):
            while True:
                count = await runtime.database.execute(
                    Q[name], {"older_than_s": older_than_s, "limit": RETENTION_BATCH}
                )
                deleted += count
                if count < RETENTION_BATCH:
                    break
        return deleted

    async def _retention_loop(self, runtime: Runtime) -> None:
        while not self._stopping:
            try:
                await self.prune(runtime)
            except DatabaseError as error:
                log.warning("functions retention: %s", error)
            await asyncio.sleep(RETENTION_INTERVAL)

    async def _mail_loop(self, runtime: Runtime) -> None:
        async def send() -> bool:
            return await self.send_due(runtime) >= MAIL_BATCH

        await work_loop(
            send,
            self._wake,
            poll_interval=MAIL_POLL_INTERVAL,
            error_backoff=ERROR_BACKOFF,
            on_error=lambda error: log.warning("email outbox: %s", error),
            errors=(DatabaseError,),
            running=lambda: not self._stopping,
        )

    async def send_due(self, runtime: Runtime) -> int:
        """Send one batch of due emails; the number claimed."""
        assert self.mailer is not None
        rows = await runtime.database.fetch_all(Q["claim_emails"], {"limit": MAIL_BATCH, "lease_s": MAIL_LEASE})
        await asyncio.gather(*(self._send(runtime, row) for row in rows))
        return len(rows)

    async def _send(self, runtime: Runtime, row: dict[str, Any]) -> None:
        assert self.mailer is not None
        item = Email(row["recipient"], row["subject"], row["body_text"], row["body_html"])
        try:
            await self.mailer.send(item, message_key=row["dedupe_key"])
        except Exception as error:  # every SMTP or network failure is retried the same way
            self.emails_failed += 1
            runtime.metrics.function_emails.labels(outcome="failed").inc()
            delay = min(3600.0, MAIL_RETRY_BASE * 2 ** (row["attempts"] - 1))
            result = await runtime.database.fetch_one(
                Q["email_failed"],
                {"id": row["id"], "max_attempts": MAIL_MAX_ATTEMPTS, "delay_s": delay, "error": str(error)[:500]},
            )
            level = logging.ERROR if result and result["status"] == "dead" else logging.WARNING
            log.log(
                level, "email %s to %s failed (attempt %s): %s", row["id"], row["recipient"], row["attempts"], error
            )
            return
        self.emails_sent += 1
        runtime.metrics.function_emails.labels(outcome="sent").inc()
        await runtime.database.execute(Q["email_sent"], {"id": row["id"]})
