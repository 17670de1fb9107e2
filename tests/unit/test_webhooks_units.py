"""Signing (checked against the standardwebhooks library), the SSRF guard's decisions, and the retry policy."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from tripsage import ssrf, standard_webhooks
from tripsage.webhooks import retry

ALLOW_LOCAL = ssrf.AllowList.parse("127.0.0.1, tripsage.internal, 10.1.0.0/16")
NONE = ssrf.AllowList.parse("")


@settings(max_examples=50, deadline=None)
@given(
    body=st.text(max_size=512),
    message_id=st.from_regex(r"msg_[A-Za-z0-9_-]{1,40}", fullmatch=True),
    timestamp=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
)
def test_signature_matches_standardwebhooks(body: str, message_id: str, timestamp: int) -> None:
    secret = standard_webhooks.generate_secret()
    ours = standard_webhooks.sign(message_id, timestamp, body.encode(), [standard_webhooks.secret_key(secret)])
    theirs = Webhook(secret).sign(message_id, dt.datetime.fromtimestamp(timestamp, dt.UTC), body)
    assert ours == theirs


def test_signature_header_has_one_entry_per_secret() -> None:
    keys = [standard_webhooks.secret_key(standard_webhooks.generate_secret()) for _ in range(3)]
    header = standard_webhooks.sign("msg_1", 1_700_000_000, b"{}", keys)
    assert [part.split(",")[0] for part in header.split(" ")] == ["v1", "v1", "v1"]
    with pytest.raises(ValueError, match="must not contain"):
        standard_webhooks.sign("msg.1", 1, b"", keys)


@pytest.mark.parametrize("bad", ["whsec_", "whsec_!!!", "secret", "whsec_" + "QUJD"])
def test_invalid_secrets_are_refused(bad: str) -> None:
    with pytest.raises(standard_webhooks.InvalidSecret):
        standard_webhooks.secret_key(bad)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "must be http(s)"),
        ("https:///nohost", "must be http(s)"),
        ("https://example.com:99999/", "invalid webhook URL"),
        ("http://example.com/hook", "plain http is allowed only"),
        ("https://localhost/hook", "loopback"),
        ("https://127.0.0.2/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://10.0.0.5/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://172.16.0.1/hook", "private"),
        ("https://169.254.169.254/latest", "cloud metadata"),
        ("https://[fd00:ec2::254]/", "cloud metadata"),
        ("https://100.100.100.200/", "cloud metadata"),
        ("https://169.254.1.1/", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fc00::1]/", "unique-local"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://0.0.0.0/", "unicast"),
        ("https://100.64.0.1/", "carrier-grade"),
    ],
)
def test_unsafe_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ssrf.UnsafeTarget, match=message.replace("(", r"\(").replace(")", r"\)")):
        ssrf.check_url(url, NONE)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "https://93.184.216.34/hook",
        "http://127.0.0.1:8080/functions/v1/trip-events",
        "http://tripsage.internal/x",
        "https://10.1.2.3/x",
    ],
)
def test_safe_or_allowlisted_urls_pass(url: str) -> None:
    ssrf.check_url(url, ALLOW_LOCAL)


def test_allowlist_parsing() -> None:
    allow = ssrf.AllowList.parse(" a.example , 192.168.0.0/24,, [::1] ")
    assert allow.allows_host("A.example.") and allow.allows_host("192.168.0.7") and allow.allows_host("::1")
    assert not allow.allows_host("192.168.1.7")
    assert allow.allows_address(ipaddress.ip_address("192.168.0.1"))


async def test_resolved_names_are_checked() -> None:
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    if not all(ssrf.blocked_reason(ipaddress.ip_address(a)) for a in addresses):
        pytest.skip(f"{host} resolves to a public address here")
    with pytest.raises(ssrf.UnsafeTarget, match=r"resolves to"):
        await ssrf.check_resolved(f"https://{host}/", NONE)
    await ssrf.check_resolved("http://127.0.0.1/", ALLOW_LOCAL)


def test_default_schedule_is_svixs() -> None:
    policy = retry.RetryPolicy.from_config({"jitter": 0})
    rng = random.Random(1)
    delays = [policy.next_delay(n, None, rng) for n in range(1, 9)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, None]
    assert policy.max_attempts == 8
    assert policy.next_delay(1, 600, rng) == 600  # Retry-After longer than the schedule wins
    assert policy.next_delay(1, 10**9, rng) == retry.MAX_RETRY_AFTER


def test_retry_after_parsing() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert retry.parse_retry_after("120", now) == 120
    assert retry.parse_retry_after("Tue, 01 Jan 2030 00:01:00 GMT", now) == 60
    assert retry.parse_retry_after("soon", now) is None
    assert retry.parse_retry_after(None, now) is None
    assert not retry.is_success(301) and retry.is_success(204) and not retry.is_success(410)
