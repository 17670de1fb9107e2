"""Email over SMTP (aiosmtplib): the SMTP_URL setting, messages with plain text and HTML parts, and the sender
that drains functions.email_outbox after the writing transaction commits."""

from __future__ import annotations

import email.message
import email.utils
import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from tripsage.exceptions import ConfigurationError

log = logging.getLogger(__name__)
SMTP_TIMEOUT = 30.0  # seconds per SMTP conversation
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class SmtpConfig:
    """smtp://[user:pass@]host[:port][?starttls=true|false] (default port 25, STARTTLS when offered) or
    smtps://[user:pass@]host[:port] (implicit TLS, default port 465)."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool | None  # None: when the server offers it

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError("SMTP_URL must look like smtp://user:pass@host:port or smtps://host:port")
        query = parse_qs(parts.query)
        starttls: bool | None = None
        if "starttls" in query:
            starttls = query["starttls"][-1].lower() in ("1", "true", "yes", "on")
        try:
            port = parts.port
        except ValueError as error:
            raise ConfigurationError(f"SMTP_URL has a bad port: {error}") from error
        implicit = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=False if implicit else starttls,
        )


@dataclass(frozen=True)
class Email:
    recipient: str
    subject: str
    body_text: str
    body_html: str


def header_text(value: str) -> str:
    """A header value made from user data: control characters (CR and LF above all) become spaces, so the value
    can neither fail the message nor add a header of its own."""
    return " ".join(_CONTROL.sub(" ", value).split())


def build_message(sender: str, item: Email, *, message_key: str) -> email.message.EmailMessage:
    """A multipart/alternative message; its Message-ID is derived from the outbox key, so a resend is recognizable."""
    message = email.message.EmailMessage()
    message["From"] = header_text(sender)
    message["To"] = header_text(item.recipient)
    message["Subject"] = header_text(item.subject)
    message["Date"] = email.utils.formatdate(localtime=False)
    domain = email.utils.parseaddr(sender)[1].partition("@")[2] or "tripsage.local"
    message["Message-ID"] = f"<{message_key.replace(':', '.').replace('@', '.')}@{domain}>"
    message.set_content(item.body_text)
    message.add_alternative(item.body_html, subtype="html")
    return message


class Mailer:
    """Sends one message per call (a connection each: the volume is notifications, not newsletters)."""

    def __init__(self, config: SmtpConfig, sender: str) -> None:
        self.config = config
        self.sender = sender

    async def send(self, item: Email, *, message_key: str) -> None:
        config = self.config
        await aiosmtplib.send(
            build_message(self.sender, item, message_key=message_key),
            hostname=config.hostname,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.implicit_tls,
            start_tls=config.starttls,
            timeout=SMTP_TIMEOUT,
        )
