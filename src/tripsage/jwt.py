"""Project JWTs (HS256, signed with TRIPSAGE_JWT_SECRET), shaped like Supabase's anon and service_role keys."""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt

from tripsage.exceptions import TripSageError

ISSUER = "tripsage"
KEY_LIFETIME = 10 * 365 * 24 * 3600  # seconds: the anon and service_role keys are long-lived, as Supabase's are


class InvalidToken(TripSageError):
    """The token is not a valid JWT for this project."""


def sign(secret: str, claims: dict[str, Any]) -> str:
    return pyjwt.encode(claims, secret, algorithm="HS256")


def api_key(secret: str, role: str, *, lifetime: int = KEY_LIFETIME) -> str:
    """The project's `anon` or `service_role` key."""
    now = int(time.time())
    return sign(secret, {"iss": ISSUER, "role": role, "iat": now, "exp": now + lifetime})


def user_token(
    secret: str,
    user_id: str,
    *,
    lifetime: int = 3600,
    email: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An access token for a signed-in user, as GoTrue would issue it."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": user_id,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + lifetime,
        **(extra or {}),
    }
    if email:
        claims["email"] = email
    return sign(secret, claims)


def verify(secret: str, token: str, *, leeway: int = 0) -> dict[str, Any]:
    """The claims of a valid token; InvalidToken (with the reason) otherwise. `role` and `exp` are required."""
    try:
        claims: dict[str, Any] = pyjwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp", "role"], "verify_aud": False},
            leeway=leeway,
        )
    except pyjwt.ExpiredSignatureError as error:
        raise InvalidToken("Token has expired") from error
    except pyjwt.InvalidTokenError as error:
        raise InvalidToken(f"The token provided is not a valid JWT: {error}") from error
    return claims
