"""The HTTP side of the functions: CORS and OPTIONS, 405, the size limit, authentication, the body's shape, the
idempotency of a webhook-id (or Idempotency-Key), JSON errors with stable codes, and the metrics."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tripsage import jsonlimits, queries_for
from tripsage.ai.chat_extraction import ChatPreferenceExtractor, ExtractionError
from tripsage.ai.embeddings import EmbeddingError, EmbeddingProvider
from tripsage.db import vault
from tripsage.db.connector import Connection, Database, Jsonb, fetch_all_on, fetch_one_on, mapped_errors
from tripsage.db.queries import Query
from tripsage.db.vault import keyring
from tripsage.exceptions import DatabaseError, TripSageError
from tripsage.functions import auth
from tripsage.functions.errors import BadRequest, Forbidden, FunctionError

if TYPE_CHECKING:
    from tripsage.runtime import Runtime

log = logging.getLogger(__name__)
Q = queries_for("tripsage.functions")

MAX_BODY = 1024 * 1024  # bytes: a request body over this is refused (the dispatcher's payloads are <= 256 KB)
MAX_IDEMPOTENCY_KEY = 200  # characters
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        "authorization, x-client-info, apikey, content-type, idempotency-key, "
        "webhook-id, webhook-timestamp, webhook-signature, x-region"
    ),
    "Access-Control-Max-Age": "86400",
}


@dataclass(frozen=True)
class Call:
    """One invocation: the event, its data, the caller, and the key that makes it idempotent (if any)."""

    function: str
    event_type: str
    data: dict[str, Any]
    caller: auth.Caller
    idempotency_id: str | None = None
    timestamp: str | None = None
    # Drawn once per call, so every key of one call without an idempotency id derives from the same base.
    _once: str = field(default_factory=lambda: f"once:{uuid.uuid4()}", repr=False, compare=False)

    @property
    def dedupe_base(self) -> str:
        """What notification and email keys derive from: the idempotency id, else an id of this call alone (the same
        on every access, different from every other call's)."""
        return self.idempotency_id or self._once


@dataclass
class Context:
    """What handlers use: the database, the embedding provider, whether email is on, and the mailer's wake-up."""

    db: Database
    provider: EmbeddingProvider
    email_enabled: bool
    wake_mailer: Callable[[], None] = lambda: None
    chat_extractor: ChatPreferenceExtractor | None = None  # None: the built-in rules


Handler = Callable[[Context, Call], Awaitable[dict[str, Any]]]


class AlreadyProcessed(TripSageError):
    """This webhook-id (or Idempotency-Key) was processed before."""


@dataclass
class Work:
    """One transaction of a handler; `response` is stored with the idempotency key when it commits."""

    conn: Connection
    response: dict[str, Any] = field(default_factory=dict)
    emails_queued: int = 0

    async def fetch_all(self, query: Query, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return await fetch_all_on(self.conn, query, params)

    async def fetch_one(self, query: Query, params: Mapping[str, Any]) -> dict[str, Any] | None:
        return await fetch_one_on(self.conn, query, params)


@contextlib.asynccontextmanager
async def unit_of_work(context: Context, call: Call) -> AsyncIterator[Work]:
    """A transaction that first records the call's idempotency key (a concurrent duplicate waits on the unique key,
    then finds it taken: AlreadyProcessed) and, on success, stores the response with it: all or nothing."""
    with mapped_errors(f"{call.function} transaction"):
        async with context.db.transaction() as conn:
            work = Work(conn)
            if call.idempotency_id:
                claimed = await work.fetch_one(
                    Q["claim_webhook_id"],
                    {"function": call.function, "webhook_id": call.idempotency_id, "event_type": call.event_type},
                )
                if claimed is None:
                    raise AlreadyProcessed()
            yield work
            if call.idempotency_id:
                await work.fetch_all(
                    Q["set_webhook_response"],
                    {"function": call.function, "webhook_id": call.idempotency_id, "response": Jsonb(work.response)},
                )
    if work.emails_queued:
        context.wake_mailer()


async def stored_response(db: Database, call: Call) -> dict[str, Any] | None:
    if not call.idempotency_id:
        return None
    row = await db.fetch_one(Q["processed_response"], {"function": call.function, "webhook_id": call.idempotency_id})
    return None if row is None else dict(row["response"])


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=CORS_HEADERS)


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest(f"the body is over {MAX_BODY} bytes", code="body_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(f"the body is over {MAX_BODY} bytes", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_event(body: bytes) -> tuple[str, dict[str, Any], str | None]:
    """The dispatcher's shape: {"type": str, "timestamp"?: str, "data": object}."""
    if not body.strip():
        raise BadRequest('the body is empty; send {"type": ..., "data": {...}}', code="invalid_body")
    try:
        payload = jsonlimits.loads(body)
    except jsonlimits.TooDeep as error:
        raise BadRequest(str(error), code=jsonlimits.TOO_DEEP) from error
    except ValueError as error:
        raise BadRequest(f"the body is not JSON: {error}", code="invalid_json") from error
    if not isinstance(payload, dict):
        raise BadRequest('the body must be a JSON object {"type": ..., "data": {...}}', code="invalid_body")
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise BadRequest('"type" (the event type, a string) is required', code="invalid_body")
    data = payload.get("data", {})
    if not isinstance(data, dict):
        raise BadRequest('"data" must be a JSON object', code="invalid_body")
    timestamp = payload.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        raise BadRequest('"timestamp" must be a string', code="invalid_body")
    return event_type, data, timestamp


class FunctionEndpoint:
    """One function: /functions/v1/<slug>, its webhook config's name, and its handlers by event type."""

    def __init__(self, slug: str, config_name: str, handlers: Mapping[str, Handler], *, users_allowed: bool) -> None:
        self.slug = slug
        self.config_name = config_name
        self.handlers = dict(handlers)
        self.users_allowed = users_allowed
        self.runtime: Runtime | None = None
        self.context: Context | None = None

    async def authenticate(self, request: Request, body: bytes) -> auth.Caller:
        assert self.runtime is not None
        headers = request.headers
        if auth.has_signature(headers):
            try:
                secrets = await vault.get_webhook_secrets(
                    self.runtime.database, keyring(self.runtime.settings), self.config_name
                )
            except LookupError:
                secrets = []
            return auth.verify_signature(headers, body, secrets)
        caller = auth.verify_bearer(headers, self.runtime.settings.jwt_secret)
        if caller.kind == "user" and not self.users_allowed:
            raise Forbidden(
                f"{self.slug} is called by the service role or our webhooks, not by users", code="role_not_allowed"
            )
        return caller

    async def handle(self, request: Request) -> Response:
        began = time.perf_counter()
        response = await self._respond(request)
        if self.runtime is not None and request.method != "OPTIONS":
            metrics = self.runtime.metrics
            metrics.function_calls.labels(function=self.slug, status=str(response.status_code)).inc()
            metrics.function_latency.labels(function=self.slug).observe(time.perf_counter() - began)
        return response

    async def _respond(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=CORS_HEADERS)
        if request.method != "POST":
            response = error_response(405, "method_not_allowed", f"{request.method} is not allowed; use POST")
            response.headers["Allow"] = "POST, OPTIONS"
            return response
        assert self.context is not None
        try:
            body = await read_body(request)
            caller = await self.authenticate(request, body)
            event_type, data, timestamp = parse_event(body)
            handler = self.handlers.get(event_type)
            if handler is None:
                known = ", ".join(sorted(self.handlers))
                raise BadRequest(
                    f'unknown event type "{event_type}" for {self.slug} (known: {known})', code="unknown_event"
                )
            call = Call(self.slug, event_type, data, caller, self._idempotency_id(request, caller), timestamp)
            stored = await stored_response(self.context.db, call)
            if stored is None:
                try:
                    result = await handler(self.context, call)
                    return JSONResponse({"success": True, "event": event_type, **result}, headers=CORS_HEADERS)
                except AlreadyProcessed:
                    stored = await stored_response(self.context.db, call) or {}
            return JSONResponse(
                {"success": True, "event": event_type, **stored, "duplicate": True}, headers=CORS_HEADERS
            )
        except FunctionError as error:
            return error_response(error.status, error.code, error.message)
        except ExtractionError as error:
            log.warning("%s: preference extraction failed: %s", self.slug, error)
            return error_response(503, "extraction_failed", str(error))
        except EmbeddingError as error:
            log.warning("%s: embedding failed: %s", self.slug, error)
            return error_response(503, "embedding_failed", str(error))
        except DatabaseError as error:
            log.warning("%s: database error: %s", self.slug, error)
            return error_response(503, "database_error", str(error))
        except Exception:
            log.exception("%s failed", self.slug)
            return error_response(500, "internal_error", "the function failed; see the runtime's log")

    @staticmethod
    def _idempotency_id(request: Request, caller: auth.Caller) -> str | None:
        if caller.webhook_id:
            return caller.webhook_id
        key = request.headers.get("idempotency-key")
        if key is None:
            return None
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters", code="invalid_header")
        # A user's keys live apart from the service's and the dispatcher's.
        return f"key:{caller.user_id or caller.kind}:{key}"


async def not_found(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=CORS_HEADERS)
    name = request.path_params.get("name", "")
    return error_response(404, "function_not_found", f'no function "{name}" (trip-events, ai-processing)')


async def acknowledge_test_event(context: Context, call: Call) -> dict[str, Any]:
    """`tripsage webhooks test NAME` (the test.webhook event): acknowledged, nothing written."""
    return {"received": True}


# -- helpers for handlers: the data's fields, with clear 400s ---------------------------------------------------


def field_int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"data.{name} is required and must be an integer", code="invalid_data")
    return value


def field_uuid(data: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"data.{name} is required and must be a UUID string", code="invalid_data")
    try:
        return str(uuid.UUID(value))
    except ValueError as error:
        raise BadRequest(f'data.{name} is not a UUID: "{value[:60]}"', code="invalid_data") from error


def field_text(data: Mapping[str, Any], name: str, *, required: bool = True, default: str = "") -> str:
    value = data.get(name)
    if value is None and not required:
        return default
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(f"data.{name} is required and must be a non-empty string", code="invalid_data")
    return value


def require_own(call: Call, user_id: str | None) -> None:
    """A user may act only on their own data."""
    if call.caller.kind == "user" and call.caller.user_id != user_id:
        raise Forbidden("a user may only process their own data", code="not_own_data")
