"""The outbox seen from Python: secrets of endpoints, dead letters and replay (for the dashboard and the CLI).

Every function takes a `Database` and runs the named queries of this package; none keeps state in memory.
"""

from __future__ import annotations

from typing import Any

from tripsage import queries_for
from tripsage.crypto import Keyring
from tripsage.db.connector import Database
from tripsage.db.vault import WEBHOOK_SECRET_PURPOSE
from tripsage.webhooks import signing

Q = queries_for("tripsage.webhooks")


def encrypt_secrets(keys: Keyring, active: list[str]) -> bytes:
    """The `webhook_configs.secret` value for these active secrets (newest first)."""
    return keys.encrypt(signing.pack_secrets(active).encode(), WEBHOOK_SECRET_PURPOSE)


def decrypt_secrets(keys: Keyring, blob: bytes) -> list[str]:
    return signing.unpack_secrets(keys.decrypt(blob, WEBHOOK_SECRET_PURPOSE).decode())


async def ensure_secrets(db: Database, keys: Keyring) -> list[str]:
    """Give every endpoint without a secret a new `whsec_` one; return the names of those that got one."""
    named = []
    for row in await db.fetch_all(Q["configs_without_secret"]):
        blob = encrypt_secrets(keys, [signing.generate_secret()])
        if await db.execute(Q["set_secret_if_missing"], {"id": row["id"], "secret": blob}):
            named.append(str(row["name"]))
    return named


async def get_secrets(db: Database, keys: Keyring, name: str) -> list[str]:
    """The active secrets of endpoint `name`, newest first ([] when it has none yet)."""
    row = await db.fetch_one(Q["get_secret"], {"name": name})
    if row is None:
        raise LookupError(f'unknown webhook config "{name}"')
    return [] if row["secret"] is None else decrypt_secrets(keys, bytes(row["secret"]))


async def set_secrets(db: Database, keys: Keyring, name: str, active: list[str]) -> None:
    """Replace the active secrets of endpoint `name` (several during a rotation, newest first)."""
    if not await db.fetch_one(Q["set_secret"], {"name": name, "secret": encrypt_secrets(keys, active)}):
        raise LookupError(f'unknown webhook config "{name}"')


async def rotate_secret(db: Database, keys: Keyring, name: str, *, keep_previous: bool = True) -> str:
    """Add a new secret in front of the current ones (or replace them); return it."""
    new = signing.generate_secret()
    current = await get_secrets(db, keys, name) if keep_previous else []
    await set_secrets(db, keys, name, [new, *current])
    return new


async def list_dead_letters(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """Dead deliveries, newest first: id, config_name, event_type, attempts, last_error, created_at (and more)."""
    return await db.fetch_all(Q["dead_letters"], {"limit": limit})


async def dead_letter_count(db: Database) -> int:
    return int(await db.fetch_value(Q["dead_letter_count"]))


async def replay_delivery(db: Database, delivery_id: int) -> int:
    """Queue one dead (or finished) delivery again, same webhook-id; the number replayed (0 or 1)."""
    return 1 if await db.fetch_value(Q["replay_delivery"], {"id": delivery_id}) else 0


async def replay_dead(db: Database, config_name: str | None = None) -> int:
    """Queue every dead delivery (of one endpoint, or all) again; the number replayed."""
    return int(await db.fetch_value(Q["replay_dead"], {"name": config_name}))
