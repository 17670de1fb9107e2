"""Standard Webhooks 1.0: `whsec_` secrets, the three headers, one v1 signature per active secret, and verification
with a timestamp tolerance. The one home of the HMAC: the webhook dispatcher signs with it, the functions verify.

Why not the `standardwebhooks` package at run time (it stays a dev dependency: the tests check our signatures with
it, so the two cannot drift apart): its `verify` decodes the body as UTF-8 text (a body that is not raises
UnicodeDecodeError instead of failing verification), reads the wall clock (no clock to inject), takes one secret per
`Webhook` (a rotation has several active), reports every failure as one exception with free text (the functions
answer stable codes: `invalid_signature`, `webhook_timestamp_out_of_range`), raises ValueError on a signature part
without a comma, and accepts a key without the `whsec_` prefix or of any length; and its `sign` takes one secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec allows 24-64 random bytes
TOLERANCE = 300  # seconds a webhook-timestamp may differ from now (the spec's recommendation)
MAX_WEBHOOK_ID = 256  # characters


class InvalidSecret(ValueError):
    """A webhook secret that is not `whsec_` followed by base64 of 24 to 64 bytes."""


class VerificationFailed(ValueError):
    """A signed request that does not verify; `code` says why, for the caller's answer."""

    def __init__(self, message: str, code: str = "invalid_signature") -> None:
        super().__init__(message)
        self.code = code


def generate_secret() -> str:
    """A new random `whsec_` secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret (its base64 part, decoded)."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("a webhook secret starts with whsec_")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError as error:
        raise InvalidSecret("a webhook secret is whsec_ followed by base64") from error
    if not 24 <= len(key) <= 64:
        raise InvalidSecret("a webhook secret encodes 24 to 64 bytes")
    return key


def _signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> bytes:
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def sign(message_id: str, timestamp: int, body: bytes, keys: list[bytes]) -> str:
    """The `webhook-signature` header: `v1,<base64 HMAC-SHA256>` per key, space-separated."""
    if "." in message_id:
        raise ValueError("a webhook-id must not contain '.'")
    return " ".join("v1," + _signature(key, message_id, timestamp, body).decode() for key in keys)


def headers(message_id: str, timestamp: int, body: bytes, keys: list[bytes]) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(message_id, timestamp, body, keys),
    }


def has_signature(request_headers: Mapping[str, str]) -> bool:
    """Whether a request claims to be a signed webhook."""
    return "webhook-signature" in request_headers or "webhook-id" in request_headers


def verify(request_headers: Mapping[str, str], body: bytes, active: list[str], *, now: float | None = None) -> str:
    """The webhook-id of a request signed with one of the `active` secrets; VerificationFailed otherwise."""
    message_id = request_headers.get("webhook-id", "")
    timestamp_text = request_headers.get("webhook-timestamp", "")
    signature = request_headers.get("webhook-signature", "")
    if not message_id or not timestamp_text or not signature:
        raise VerificationFailed("a signed request needs webhook-id, webhook-timestamp and webhook-signature")
    if len(message_id) > MAX_WEBHOOK_ID or "." in message_id:
        raise VerificationFailed("webhook-id is malformed")
    try:
        timestamp = int(timestamp_text)
    except ValueError as error:
        raise VerificationFailed("webhook-timestamp is not an integer") from error
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE:
        raise VerificationFailed(
            f"webhook-timestamp is more than {TOLERANCE} seconds from now", code="webhook_timestamp_out_of_range"
        )
    if not active:
        raise VerificationFailed("this function has no webhook secret configured")
    expected = [_signature(secret_key(secret), message_id, timestamp, body) for secret in active]
    for part in signature.split(" "):
        version, _, value = part.partition(",")
        if version == "v1" and any(hmac.compare_digest(value.encode(), candidate) for candidate in expected):
            return message_id
    raise VerificationFailed("webhook-signature does not match")
