"""Who a socket or a channel acts as: the claims of a project JWT (HS256, TRIPSAGE_JWT_SECRET), as Supabase reads them.

The socket's token comes from the `apikey` query parameter (or the `x-api-key` / `apikey` header, which win); a
channel may carry its own `access_token` in `phx_join` and refresh it with the `access_token` event. `sb_...` keys
and null are ignored in favour of the socket's token, as Supabase does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jwt as pyjwt

from tripsage import jwt

BYPASS_ROLES = frozenset({"service_role", "postgres", "supabase_admin"})


class TokenError(Exception):
    """The token is missing, malformed or expired; `code` is Supabase's reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Identity:
    token: str
    claims: dict[str, Any]

    @cached_property
    def role(self) -> str:
        return str(self.claims.get("role") or "anon")

    @cached_property
    def user_id(self) -> str | None:
        sub = self.claims.get("sub")
        return str(sub).lower() if isinstance(sub, str) and sub else None

    @cached_property
    def expires_at(self) -> float:
        return float(self.claims["exp"])

    @cached_property
    def bypasses_rls(self) -> bool:
        return self.role in BYPASS_ROLES


def is_ignored(token: object) -> bool:
    """Tokens that never replace the current one: null, non-strings, empty and `sb_...` keys."""
    return not isinstance(token, str) or not token or token.startswith("sb_")


def identify(secret: str, token: str, *, now: float | None = None) -> Identity:
    """The identity of a valid token; TokenError with Supabase's code and message otherwise."""
    try:
        claims = jwt.verify(secret, token, leeway=0)
    except jwt.InvalidToken as error:
        if str(error) == "Token has expired":
            expired_for = _expired_for(token, now)
            raise TokenError("InvalidJWTToken", f"Token has expired {expired_for} seconds ago") from error
        raise TokenError("MalformedJWT", "The token provided is not a valid JWT") from error
    if not isinstance(claims.get("exp"), int | float) or not isinstance(claims.get("role"), str):
        raise TokenError("MalformedJWT", "The token must carry role and exp claims")
    return Identity(token, claims)


def _expired_for(token: str, now: float | None) -> int:
    try:
        exp = pyjwt.decode(token, options={"verify_signature": False}).get("exp")
    except pyjwt.InvalidTokenError:
        return 0
    if not isinstance(exp, int | float):
        return 0
    return max(0, int((now if now is not None else time.time()) - exp))
