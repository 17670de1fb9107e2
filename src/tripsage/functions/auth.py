"""Who is calling: a project JWT (`Authorization: Bearer`), or our dispatcher's Standard Webhooks signature."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from tripsage import jwt, standard_webhooks
from tripsage.functions.errors import Forbidden, Unauthorized


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
    return standard_webhooks.has_signature(headers)


def verify_signature(
    headers: Mapping[str, str], body: bytes, secrets: list[str], *, now: float | None = None
) -> Caller:
    """A webhook caller, or Unauthorized naming what is wrong."""
    try:
        message_id = standard_webhooks.verify(headers, body, secrets, now=now)
    except standard_webhooks.VerificationFailed as error:
        raise Unauthorized(str(error), code=error.code) from error
    return Caller("webhook", webhook_id=message_id)


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
