"""Issue #17's dashboard repros, from outside: signing out revokes the session on every replica (it is kept in the
database), cross-site and token-less state changes are refused, cookies are HttpOnly and SameSite=Strict, and Secure
when the runtime serves HTTPS itself (with a certificate made here); WSS works on the same port."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from testkit.runtime import TEST_JWT_SECRET, running_runtime, runtime_settings, service_role_key
from websockets.asyncio.client import connect as websocket_connect

from tripsage import jwt

SERVICE_KEY = service_role_key()
COOKIE = "tripsage_dashboard"


@dataclass
class Answer:
    status: int
    text: str
    set_cookie: str


async def request(
    url: str,
    *,
    method: str = "GET",
    cookie: str | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Answer:
    sent = dict(headers or {})
    if cookie is not None:
        sent["Cookie"] = f"{COOKIE}={cookie}"
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.request(
            method, url, data=form, headers=sent, allow_redirects=False, ssl=ssl_context if ssl_context else True
        ) as response,
    ):
        return Answer(response.status, await response.text(), response.headers.get("Set-Cookie", ""))


async def sign_in(base_url: str, ssl_context: ssl.SSLContext | None = None) -> tuple[str, str]:
    """(the session cookie's value, the Set-Cookie header)."""
    answer = await request(
        f"{base_url}/dashboard/login", method="POST", form={"key": SERVICE_KEY}, ssl_context=ssl_context
    )
    assert answer.status == 303, answer
    match = re.match(rf"{COOKIE}=([^;]+);", answer.set_cookie)
    assert match, answer.set_cookie
    return match.group(1), answer.set_cookie


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


def dead_delivery(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """A dead delivery whose endpoint is inactive, so that a replayed one stays pending (nothing sends it)."""
    conn.execute("INSERT INTO webhook_configs (name, url, events) VALUES ('hook', 'http://127.0.0.1:9/h', '{x}')")
    row = conn.execute("SELECT test_webhook('hook')").fetchone()
    assert row is not None
    conn.execute("UPDATE webhooks.deliveries SET status = 'dead', last_error = 'HTTP 500' WHERE id = %s", [row[0]])
    conn.execute("UPDATE webhook_configs SET is_active = false WHERE name = 'hook'")
    return int(str(row[0]))


def status_of(conn: psycopg.Connection[tuple[object, ...]], delivery: int) -> str:
    row = conn.execute("SELECT status FROM webhooks.deliveries WHERE id = %s", [delivery]).fetchone()
    assert row is not None
    return str(row[0])


async def test_sessions_are_revocable_and_state_changes_need_the_origin_and_a_csrf_token(
    database: str, tmp_path: Path
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        delivery = dead_delivery(conn)
        async with (
            running_runtime(runtime_settings(tmp_path / "a"), database) as first,
            running_runtime(runtime_settings(tmp_path / "b"), database) as second,
        ):
            cookie, set_cookie = await sign_in(first.base_url)
            attributes = {part.strip().lower() for part in set_cookie.split(";")[1:]}
            assert {"httponly", "samesite=strict", "path=/dashboard"} <= attributes and "secure" not in attributes
            page = await request(f"{second.base_url}/dashboard", cookie=cookie)  # the other replica knows it
            assert 'id="dead-letters"' in page.text
            csrf = csrf_of(page.text)

            replay = f"{first.base_url}/dashboard/replay/{delivery}"
            cross_site = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
            refused = await request(replay, method="POST", cookie=cookie, form={"csrf_token": csrf}, headers=cross_site)
            assert refused.status == 403
            refused = await request(replay, method="POST", cookie=cookie, headers={"Sec-Fetch-Site": "cross-site"})
            assert refused.status == 403
            refused = await request(replay, method="POST", cookie=cookie, form={"csrf_token": "guessed"})
            assert refused.status == 403
            refused = await request(replay, method="POST", cookie=cookie)
            assert refused.status == 403
            assert status_of(conn, delivery) == "dead"
            login_from_elsewhere = await request(
                f"{first.base_url}/dashboard/login", method="POST", form={"key": SERVICE_KEY}, headers=cross_site
            )
            assert login_from_elsewhere.status == 403 and not login_from_elsewhere.set_cookie

            done = await request(
                replay,
                method="POST",
                cookie=cookie,
                form={"csrf_token": csrf},
                headers={"Origin": first.base_url, "Sec-Fetch-Site": "same-origin"},
            )
            assert done.status == 303 and status_of(conn, delivery) != "dead"

            out = await request(
                f"{second.base_url}/dashboard/logout",
                method="POST",
                cookie=cookie,
                form={"csrf_token": csrf},
                headers={"Origin": second.base_url},
            )
            assert out.status == 303
            dropped = {part.strip().lower() for part in out.set_cookie.split(";")}
            assert {"httponly", "samesite=strict", "path=/dashboard"} <= dropped, out.set_cookie
            # The old cookie no longer works, on either replica.
            for base in (first.base_url, second.base_url):
                page = await request(f"{base}/dashboard", cookie=cookie)
                assert 'id="dead-letters"' not in page.text and 'id="sign-in"' in page.text
            conn.execute("UPDATE webhooks.deliveries SET status = 'dead' WHERE id = %s", [delivery])
            again = await request(replay, method="POST", cookie=cookie, form={"csrf_token": csrf})
            assert again.status == 303 and status_of(conn, delivery) == "dead"


# -- TLS ---------------------------------------------------------------------------------------------------------


@dataclass
class Certificate:
    cert_file: Path
    key_file: Path
    client: ssl.SSLContext


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1, and a client context that trusts exactly it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    client = ssl.create_default_context(cafile=str(cert_file))
    return Certificate(cert_file, key_file, client)


@pytest.fixture
async def tls_runtime(embedded_database: str, tmp_path: Path, certificate: Certificate) -> AsyncIterator[str]:
    settings = runtime_settings(
        tmp_path / "data",
        tls_cert_file=certificate.cert_file,
        tls_key_file=certificate.key_file,
        webhook_point_seed=True,
    )
    async with running_runtime(settings, embedded_database) as running:
        assert running.base_url.startswith("https://")
        yield running.base_url


async def test_the_runtime_serves_https_and_wss_with_secure_cookies(
    tls_runtime: str, certificate: Certificate, embedded_database: str
) -> None:
    health = await request(f"{tls_runtime}/health", ssl_context=certificate.client)
    assert health.status == 200 and json.loads(health.text)["database"]["status"] == "ok"
    _cookie, set_cookie = await sign_in(tls_runtime, certificate.client)
    attributes = {part.strip().lower() for part in set_cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=strict"} <= attributes
    anon = jwt.api_key(TEST_JWT_SECRET, "anon")
    wss = tls_runtime.replace("https://", "wss://") + f"/realtime/v1/websocket?apikey={anon}&vsn=1.0.0"
    async with websocket_connect(wss, ssl=certificate.client) as ws:
        await ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
        assert json.loads(await ws.recv())["payload"]["status"] == "ok"
    with psycopg.connect(embedded_database) as conn:  # the seed webhooks reach this runtime over https
        urls = conn.execute("SELECT url FROM webhook_configs WHERE name IN ('trip_events', 'ai_processing')").fetchall()
    # (at the settings' port: the test server listens on another one)
    assert len(urls) == 2 and all(url.startswith("https://127.0.0.1:") for (url,) in urls), urls
    with pytest.raises(aiohttp.ClientConnectionError):  # plain HTTP is not served on the TLS port
        await request(tls_runtime.replace("https://", "http://") + "/health")
