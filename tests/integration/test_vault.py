"""API keys at rest: encrypted in the runtime, audited, rotatable; the plaintext never reaches the database."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import psycopg
import pytest
from testkit import servers

from tripsage.config import load_settings
from tripsage.crypto import Keyring
from tripsage.db.connector import Database
from tripsage.db.vault import ApiKeyVault, rotate_all

USER = "00000000-0000-4000-8000-0000000000c1"
PLAINTEXT = "sk-live-" + "7" * 40


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def data_dump(server: servers.Server, database: str) -> str:
    return subprocess.run(
        [str(server.bin_dir / "pg_dump"), "--data-only", database], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def user(database: str) -> str:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id, email) VALUES (%s, 'k@example.test')", [USER])
    return USER


async def test_plaintext_never_reaches_the_database(server: servers.Server, database: str, user: str) -> None:
    keys = Keyring(new_key())
    async with Database(database, max_size=2) as db:
        vault = ApiKeyVault(db, keys)
        key_id = await vault.create(user_id=user, service_name="openai", key_name="main", plaintext=PLAINTEXT)
        assert await vault.reveal(key_id) == PLAINTEXT
    with psycopg.connect(database) as conn:
        stored = conn.execute("SELECT encrypted_key, key_hint FROM api_keys WHERE id = %s", [key_id]).fetchone()
        assert stored is not None and PLAINTEXT.encode() not in bytes(stored[0])
        assert stored[1] == PLAINTEXT[-4:]
        statements = conn.execute("SELECT string_agg(query, ' ') FROM extensions.pg_stat_statements").fetchone()
        assert statements is not None and PLAINTEXT not in (statements[0] or "")
        actions = [
            row[0]
            for row in conn.execute(
                "SELECT action FROM audit_log WHERE table_name = 'api_keys' AND record_id = %s ORDER BY id",
                [str(key_id)],
            ).fetchall()
        ]
    assert actions == ["create", "read"]
    assert PLAINTEXT not in data_dump(server, database)


async def test_audit_records_changes_without_values(database: str, user: str) -> None:
    keys = Keyring(new_key())
    async with Database(database, max_size=2) as db:
        key_id = await ApiKeyVault(db, keys).create(user_id=user, service_name="s", key_name="k", plaintext=PLAINTEXT)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET is_active = false WHERE id = %s", [key_id])
        conn.execute("DELETE FROM api_keys WHERE id = %s", [key_id])
        rows = conn.execute(
            "SELECT action, details FROM audit_log WHERE record_id = %s ORDER BY id", [str(key_id)]
        ).fetchall()
    assert [action for action, _ in rows] == ["create", "update", "delete"]
    assert rows[1][1]["changed_columns"] == ["is_active"]
    assert all("encrypted_key" not in str(details.get("user_id")) for _, details in rows)


async def test_rotation_reencrypts_under_the_new_key(
    database: str, user: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old, new = new_key(), new_key()
    async with Database(database, max_size=2) as db:
        key_id = await ApiKeyVault(db, Keyring(old)).create(
            user_id=user, service_name="s", key_name="k", plaintext=PLAINTEXT
        )
    monkeypatch.setenv("TRIPSAGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRIPSAGE_ENCRYPTION_KEY", new)
    monkeypatch.setenv("TRIPSAGE_PREVIOUS_ENCRYPTION_KEYS", old)
    assert await rotate_all(database, load_settings()) == {"api_keys": 1, "webhook_configs": 0, "vault.secrets": 0}
    assert await rotate_all(database, load_settings()) == {"api_keys": 0, "webhook_configs": 0, "vault.secrets": 0}
    async with Database(database, max_size=2) as db:
        assert await ApiKeyVault(db, Keyring(new)).reveal(key_id) == PLAINTEXT
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'rotate'").fetchone() == (1,)
