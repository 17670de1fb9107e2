"""Secrets at rest: users' API keys and the webhook endpoints' `whsec_` secrets, encrypted in the runtime
(tripsage.crypto) before they reach the database, and their rotation under a new key.

The plaintext travels only as a bound parameter of nothing: it is encrypted first, so neither it nor the key appear
in SQL text, pg_stat_statements or logs. Reads and rotations are recorded in audit_log (writes by trigger).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from tripsage import queries_for, standard_webhooks
from tripsage.config import Settings
from tripsage.crypto import Keyring
from tripsage.db import supabase_vault
from tripsage.db.connector import Database, connect, mapped_errors

Q = queries_for("tripsage.db")
API_KEY_PURPOSE = "tripsage:api_keys"
WEBHOOK_SECRET_PURPOSE = "tripsage:webhook_configs"


def keyring(settings: Settings) -> Keyring:
    return Keyring(settings.encryption_key, settings.old_encryption_keys)


@dataclass
class ApiKeyVault:
    db: Database
    keys: Keyring

    async def create(
        self,
        *,
        user_id: str,
        service_name: str,
        key_name: str,
        plaintext: str,
        expires_at: dt.datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        secret = plaintext.encode()
        row = await self.db.fetch_one(
            Q["insert_api_key"],
            {
                "user_id": user_id,
                "service_name": service_name,
                "key_name": key_name,
                "encrypted_key": self.keys.encrypt(secret, API_KEY_PURPOSE),
                "key_hash": self.keys.lookup_hash(secret, API_KEY_PURPOSE),
                "key_hint": plaintext[-4:] if len(plaintext) >= 12 else None,
                "expires_at": expires_at,
                "metadata": Jsonb(metadata or {}),
            },
        )
        assert row is not None
        return int(row["id"])

    async def reveal(self, key_id: int, *, purpose: str = "use") -> str:
        """The plaintext of one key (recorded in audit_log as a read)."""
        row = await self.db.fetch_one(Q["get_api_key"], {"id": key_id})
        if row is None:
            raise LookupError(f"no API key with id {key_id}")
        plaintext = self.keys.decrypt(bytes(row["encrypted_key"]), API_KEY_PURPOSE).decode()
        await self.db.execute(
            Q["audit_secret_access"],
            {
                "action": "read",
                "table": "api_keys",
                "record_id": str(key_id),
                "details": Jsonb({"purpose": purpose}),
            },
        )
        await self.db.execute(Q["touch_api_key"], {"id": key_id})
        return plaintext


# -- webhook endpoints' secrets (public.webhook_configs.secret) ---------------------------------------------------


def pack_webhook_secrets(active: list[str]) -> str:
    """The stored form (before encryption): the active secrets, newest first, separated by single spaces."""
    for secret in active:
        standard_webhooks.secret_key(secret)
    return " ".join(active)


def unpack_webhook_secrets(text: str) -> list[str]:
    return [part for part in text.split(" ") if part]


def encrypt_webhook_secrets(keys: Keyring, active: list[str]) -> bytes:
    """The `webhook_configs.secret` value for these active secrets (newest first)."""
    return keys.encrypt(pack_webhook_secrets(active).encode(), WEBHOOK_SECRET_PURPOSE)


def decrypt_webhook_secrets(keys: Keyring, blob: bytes) -> list[str]:
    return unpack_webhook_secrets(keys.decrypt(blob, WEBHOOK_SECRET_PURPOSE).decode())


async def ensure_webhook_secrets(db: Database, keys: Keyring) -> list[str]:
    """Give every endpoint without a secret a new `whsec_` one; return the names of those that got one."""
    named = []
    for row in await db.fetch_all(Q["webhook_configs_without_secret"]):
        blob = encrypt_webhook_secrets(keys, [standard_webhooks.generate_secret()])
        if await db.execute(Q["set_webhook_secret_if_missing"], {"id": row["id"], "secret": blob}):
            named.append(str(row["name"]))
    return named


async def get_webhook_secrets(db: Database, keys: Keyring, name: str) -> list[str]:
    """The active secrets of endpoint `name`, newest first ([] when it has none yet)."""
    row = await db.fetch_one(Q["get_webhook_secret"], {"name": name})
    if row is None:
        raise LookupError(f'unknown webhook config "{name}"')
    return [] if row["secret"] is None else decrypt_webhook_secrets(keys, bytes(row["secret"]))


async def set_webhook_secrets(db: Database, keys: Keyring, name: str, active: list[str]) -> None:
    """Replace the active secrets of endpoint `name` (several during a rotation, newest first)."""
    if not await db.fetch_one(Q["set_webhook_secret"], {"name": name, "secret": encrypt_webhook_secrets(keys, active)}):
        raise LookupError(f'unknown webhook config "{name}"')


async def rotate_webhook_secret(db: Database, keys: Keyring, name: str, *, keep_previous: bool = True) -> str:
    """Add a new secret in front of the current ones (or replace them); return it."""
    new = standard_webhooks.generate_secret()
    current = await get_webhook_secrets(db, keys, name) if keep_previous else []
    await set_webhook_secrets(db, keys, name, [new, *current])
    return new


async def rotate_all(url: str, settings: Settings) -> dict[str, int]:
    """Re-encrypt every API key, webhook secret and Vault secret under the current key, in one transaction."""
    keys = keyring(settings)
    counts = {"api_keys": 0, "webhook_configs": 0}
    conn = await connect(url, autocommit=False, application_name="tripsage-rotate")
    try:
        with mapped_errors("secrets rotate"):
            async with conn.transaction():
                for row in await (await conn.execute(Q["api_keys_for_rotation"].sql)).fetchall():
                    blob = bytes(row["encrypted_key"])
                    if not keys.needs_rotation(blob):
                        continue
                    secret = keys.decrypt(blob, API_KEY_PURPOSE)
                    await conn.execute(
                        Q["reencrypt_api_key"].sql,
                        {
                            "id": row["id"],
                            "encrypted_key": keys.encrypt(secret, API_KEY_PURPOSE),
                            "key_hash": keys.lookup_hash(secret, API_KEY_PURPOSE),
                        },
                    )
                    await conn.execute(
                        Q["audit_secret_access"].sql,
                        {
                            "action": "rotate",
                            "table": "api_keys",
                            "record_id": str(row["id"]),
                            "details": Jsonb({"key_id": keys.current_id.hex()}),
                        },
                    )
                    counts["api_keys"] += 1
                for row in await (await conn.execute(Q["webhook_secrets_for_rotation"].sql)).fetchall():
                    blob = bytes(row["secret"])
                    if not keys.needs_rotation(blob):
                        continue
                    secret = keys.decrypt(blob, WEBHOOK_SECRET_PURPOSE)
                    await conn.execute(
                        Q["reencrypt_webhook_secret"].sql,
                        {"id": row["id"], "secret": keys.encrypt(secret, WEBHOOK_SECRET_PURPOSE)},
                    )
                    await conn.execute(
                        Q["audit_secret_access"].sql,
                        {
                            "action": "rotate",
                            "table": "webhook_configs",
                            "record_id": str(row["id"]),
                            "details": Jsonb({"key_id": keys.current_id.hex()}),
                        },
                    )
                    counts["webhook_configs"] += 1
                counts["vault.secrets"] = await supabase_vault.rotate(
                    conn, settings.encryption_key, settings.old_encryption_keys
                )
    finally:
        await conn.close()
    return counts
