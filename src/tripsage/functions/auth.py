"""Who is calling: a project JWT (`Authorization: Bearer`), or our dispatcher's Standard Webhooks signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from tripsage import jwt
from tripsage.functions.errors import Forbidden, Unauthorized
from tripsage.webhooks import signing

TOLERANCE = 300  # seconds a webhook-timestamp may differ from now (Standard Webhooks' recommendation)
MAX_WEBHOOK_ID = 256  # characters


@dataclass(frozen=True)
class Caller:
    """`service` (service_role JWT), `user` (a signed-in user's JWT) or `webhook` (a verified signature)."""

    kind: Literal["service", "user", "webhook"]
    user_id: str | None = None
    webhook_id: str | None = None

    @property
    def trusted(self) -> bool:
        return self.kind != "user"


def has_signature(headers: Mapping[str, str]) -> bool:
    return "webhook-signature" in headers or "webhook-id" in headers


def verify_signature(
    headers: Mapping[str, str], body: bytes, secrets: list[str], *, now: float | None = None
) -> Caller:
    """A webhook caller, or Unauthorized naming what is wrong."""
    message_id = headers.get("webhook-id", "")
    timestamp_text = headers.get("webhook-timestamp", "")
    signature = headers.get("webhook-signature", "")
    if not message_id or not timestamp_text or not signature:
        raise Unauthorized(
            "a signed request needs webhook-id, webhook-timestamp and webhook-signature", code="invalid_signature"
        )
    if len(message_id) > MAX_WEBHOOK_ID or "." in message_id:
        raise Unauthorized("webhook-id is malformed", code="invalid_signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError as error:
        raise Unauthorized("webhook-timestamp is not an integer", code="invalid_signature") from error
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE:
        raise Unauthorized(
            f"webhook-timestamp is more than {TOLERANCE} seconds from now", code="webhook_timestamp_out_of_range"
        )
    if not secrets:
        raise Unauthorized("this function has no webhook secret configured", code="invalid_signature")
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    expected = [
        base64.b64encode(hmac.new(signing.secret_key(secret), signed, hashlib.sha256).digest()) for secret in secrets
    ]
    for part in signature.split(" "):
        version, _, value = part.partition(",")
        if version == "v1" and any(hmac.compare_digest(value.encode(), candidate) for candidate in expected):
            return Caller("webhook", webhook_id=message_id)
    raise Unauthorized("webhook-signature does not match", code="invalid_signature")


def verify_bearer(headers: Mapping[str, str], jwt_secret: str) -> Caller:
    """A service or user caller from `Authorization: Bearer <JWT>`; Unauthorized or Forbidden otherwise."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing Authorization: Bearer <JWT> (or a webhook signature)", code="missing_credentials")
    try:
        claims = jwt.verify(jwt_secret, token.strip())
    except jwt.InvalidToken as error:
        raise Unauthorized(str(error), code="invalid_jwt") from error
    role = claims.get("role")
    if role == "service_role":
        return Caller("service")
    if role == "authenticated" and isinstance(claims.get("sub"), str) and claims["sub"]:
        return Caller("user", user_id=claims["sub"])
    raise Forbidden(f"the role {role!r} may not call functions", code="role_not_allowed")
