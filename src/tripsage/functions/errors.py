"""Errors a function answers with: an HTTP status and a stable code, as JSON `{"error": {"code", "message"}}`."""

from __future__ import annotations


class FunctionError(Exception):
    """A request a function refuses or cannot complete."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequest(FunctionError):
    """The body is not what the function accepts (missing fields, wrong types, unknown event, too large)."""

    status = 400
    code = "invalid_request"


class Unauthorized(FunctionError):
    """No valid JWT and no valid webhook signature."""

    status = 401
    code = "unauthorized"


class Forbidden(FunctionError):
    """Authenticated, but this caller may not do this."""

    status = 403
    code = "forbidden"


class Unavailable(FunctionError):
    """A dependency (the database, the embedding model) failed; the caller should retry."""

    status = 503
    code = "unavailable"
