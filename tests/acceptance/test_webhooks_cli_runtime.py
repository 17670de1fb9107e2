"""From outside: `tripsage webhooks ...` as a subprocess, and the real runtime delivering over HTTP (NOTIFY-woken),
pointing the seed configs at itself under `tripsage up`'s setting, and executing pg_net calls."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from standardwebhooks.webhooks import Webhook
from testkit.runtime import run_tripsage, running_runtime, runtime_settings

from tests.integration.webhooks.conftest import Receiver, serving
from tripsage.crypto import Keyring
from tripsage.db import vault
from tripsage.db.connector import Database

WAIT = 30.0  # seconds a test waits for the runtime before giving up (a bound, not a measurement)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_tripsage("webhooks", *args, env=env)


@pytest.fixture
async def hook_receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as receiver:
        yield receiver


async def test_cli_commands(embedded_database: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    key = base64.b64encode(os.urandom(32)).decode()
    env.update(
        DATABASE_URL=embedded_database,
        TRIPSAGE_DATA_DIR=str(tmp_path),
        TRIPSAGE_ENCRYPTION_KEY=key,
        TRIPSAGE_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
    )
    added = cli(
        "add",
        "crm",
        "http://127.0.0.1:9/hook",
        "--events",
        "booking.*,trip.collaborator.*",
        "--events",
        "api_key.expiring",
        "--header",
        "X-A=1",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    async with Database(embedded_database) as db:
        assert await vault.get_webhook_secrets(db, Keyring(key), "crm") == [secret]
    refused = cli("add", "evil", "https://169.254.169.254/latest", env=env)
    assert refused.returncode == 1 and "cloud metadata address" in refused.stderr
    plain = cli("add", "plain", "http://example.com/x", env=env)
    assert plain.returncode == 1 and "plain http is allowed only" in plain.stderr
    bad = cli("add", "bad", "not a url", env=env)
    assert bad.returncode == 1 and "invalid webhook URL" in bad.stderr
    listing = cli("list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    configs = {c["name"]: c for c in json.loads(listing.stdout)}
    assert configs["crm"]["events"] == ["booking.*", "trip.collaborator.*", "api_key.expiring"] and configs["crm"][
        "headers"
    ] == {"X-A": "1"}
    assert "trip_events" in configs
    tested = cli("test", "crm", env=env)
    assert tested.returncode == 0 and json.loads(tested.stdout)["status"] == "pending"
    unknown = cli("test", "nope", env=env)
    assert unknown.returncode == 1 and 'unknown webhook config "nope"' in unknown.stderr
    stats = cli("stats", "crm", "--json", env=env)
    assert json.loads(stats.stdout)[0]["pending"] == 1
    assert cli("disable", "crm", env=env).returncode == 0
    after = {c["name"]: c for c in json.loads(cli("list", "--json", env=env).stdout)}
    assert after["crm"]["is_active"] is False and after["crm"]["disabled_reason"] == "disabled by an operator"
    assert cli("enable", "crm", env=env).returncode == 0
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        conn.execute("UPDATE webhooks.deliveries SET status = 'dead', last_error = 'HTTP 500'")
    dead = cli("dead", "--json", env=env)
    assert [d["config_name"] for d in json.loads(dead.stdout)] == ["crm"]
    replayed = cli("replay", "--all-dead", env=env)
    assert replayed.returncode == 0 and "replayed 1 delivery" in replayed.stdout
    missing = cli("replay", "999999", env=env)
    assert missing.returncode == 1
    assert cli("logs", "--json", env=env).returncode == 0
    rotated = cli("rotate", "crm", env=env)
    assert rotated.returncode == 0
    async with Database(embedded_database) as db:
        assert await vault.get_webhook_secrets(db, Keyring(key), "crm") == [
            rotated.stdout.strip().splitlines()[-1],
            secret,
        ]


async def test_runtime_delivers_signed_events_and_executes_pg_net(
    embedded_database: str, tmp_path: Path, hook_receiver: Receiver
) -> None:
    url, got = hook_receiver.url, hook_receiver.received
    settings = runtime_settings(
        tmp_path,
        webhook_allow_hosts="127.0.0.1",
        net_allow_hosts="127.0.0.1",
        webhook_point_seed=True,
        public_url="http://127.0.0.1:5999",
    )
    with psycopg.connect(embedded_database, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "INSERT INTO webhook_configs (name, url, events) VALUES ('receiver', %s, '{booking.confirmed}')",
            [url + "/in"],
        )
        async with running_runtime(settings, embedded_database):
            seeds = conn.execute(
                "SELECT name, url, is_active, secret IS NOT NULL AS has_secret FROM webhook_configs"
                " WHERE name IN ('trip_events', 'ai_processing', 'receiver') ORDER BY name"
            ).fetchall()
            assert seeds == [
                {
                    "name": "ai_processing",
                    "url": "http://127.0.0.1:5999/functions/v1/ai-processing",
                    "is_active": True,
                    "has_secret": True,
                },
                {"name": "receiver", "url": url + "/in", "is_active": True, "has_secret": True},
                {
                    "name": "trip_events",
                    "url": "http://127.0.0.1:5999/functions/v1/trip-events",
                    "is_active": True,
                    "has_secret": True,
                },
            ]
            conn.execute("SELECT emit_event('booking.confirmed', '{\"n\": 1}')")
            conn.execute('SELECT net.http_post(%s, \'{"via": "pg_net"}\')', [url + "/net"])
            for _ in range(int(WAIT / 0.05)):
                if len(got) >= 2:
                    break
                await asyncio.sleep(0.05)
            async with Database(embedded_database) as db:
                [secret] = await vault.get_webhook_secrets(db, Keyring(settings.encryption_key), "receiver")
            signed = [r for r in got if "webhook-id" in r.headers]
            assert len(signed) == 1
            assert Webhook(secret).verify(signed[0].body, signed[0].headers)["data"] == {"n": 1}
            assert any(json.loads(r.body) == {"via": "pg_net"} for r in got if "webhook-id" not in r.headers)
