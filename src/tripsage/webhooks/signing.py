"""Standard Webhooks 1.0 signing: `whsec_` secrets, the three headers, one v1 signature per active secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec allows 24-64 random bytes


class InvalidSecret(ValueError):
    """A webhook secret that is not `whsec_` followed by base64 of 24 to 64 bytes."""


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


def pack_secrets(active: list[str]) -> str:
    """The stored form (before encryption): the active secrets, newest first, separated by single spaces."""
    for secret in active:
        secret_key(secret)
    return " ".join(active)


def unpack_secrets(text: str) -> list[str]:
    return [part for part in text.split(" ") if part]


def sign(message_id: str, timestamp: int, body: bytes, keys: list[bytes]) -> str:
    """The `webhook-signature` header: `v1,<base64 HMAC-SHA256>` per key, space-separated."""
    if "." in message_id:
        raise ValueError("a webhook-id must not contain '.'")
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return " ".join("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode() for key in keys)


def headers(message_id: str, timestamp: int, body: bytes, keys: list[bytes]) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(message_id, timestamp, body, keys),
    }
