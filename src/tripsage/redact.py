"""Redaction of secrets in text we store, show or log: one function, `redact`, used by every capability.

What it hides: a URL's password (or its whole userinfo when there is no password: a bare token), the values of
secret-looking query parameters (`apikey`, `access_token`, `token`, `key`, `secret`, `password`, `signature`, ...),
`Bearer` credentials, JWTs and Standard Webhooks secrets wherever they appear. `LogRedactor` applies it to log records
(the access log's request lines included); `install` puts it on the handlers of the runtime's loggers.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# scheme://user:password@  -> scheme://user:***@ ; scheme://token@ -> scheme://***@
_USERINFO_WITH_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@]*):[^\s/?#@]*@")
_USERINFO_ALONE = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s:/?#@]+@")
# ?apikey=...&token=... : any parameter whose name looks like a credential.
_SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&;](?:[a-z0-9_.-]*(?:key|token|secret|passw|pwd|signature|sig|auth|credential|session))"
    r"[a-z0-9_.-]*=)[^&#\s'\"]*",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/=]+")


def redact(text: str) -> str:
    """`text` with URL credentials, secret query parameters, bearer tokens, JWTs and webhook secrets masked."""
    text = _USERINFO_WITH_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    text = _USERINFO_ALONE.sub(rf"\g<head>{MASK}@", text)
    text = _SECRET_PARAMETER.sub(rf"\g<head>{MASK}", text)
    text = _BEARER.sub(rf"\g<head>{MASK}", text)
    text = _JWT.sub(MASK, text)
    return _WEBHOOK_SECRET.sub(f"whsec_{MASK}", text)


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


def _redacted_argument(value: object) -> object:
    if isinstance(value, bool | int | float) or value is None:
        return value  # kept as is, so %d and %.2f still format
    return redact(value if isinstance(value, str) else str(value))


class LogRedactor(logging.Filter):
    """A handler filter: the record's message, its arguments and its traceback text, redacted.

    The arguments are redacted one by one (not merged into the message) because formatters such as uvicorn's
    access formatter read them by position.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_argument(value) for value in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted_argument(value) for key, value in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


REDACTED_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def install() -> None:
    """Put a LogRedactor on every handler of the root and uvicorn loggers (once each)."""
    for name in REDACTED_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, LogRedactor) for f in handler.filters):
                handler.addFilter(LogRedactor())
