"""Supabase Vault's key, kept outside the database (schema: supabase/schemas/12_supabase.sql; docs/vault.md).

`vault.secrets` holds ciphertext only. The key that opens it is derived from TRIPSAGE_ENCRYPTION_KEY and reaches a
database session only as the startup option `tripsage.vault_key` of a connection the runtime opens: never as SQL
text, a bound parameter or a log line, so it is in no table, pg_stat_statements entry or server log. The scheduler
hands it to the sessions of jobs whose user may read `vault.decrypted_secrets` (scheduler/runner.py), and
`tripsage vault session-options` prints it for a session of the operator's own (PGOPTIONS).

The cipher, the same as the SQL's: HMAC-SHA256 in counter mode under a random 16-byte nonce, then HMAC-SHA256 over
(header, nonce, the secret's id, ciphertext); stored as base64 of version byte 1 | key id (8 bytes) | ciphertext |
tag (32 bytes). It is here so the tests hold the SQL to a reference, and for tools that re-encrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

import psycopg

from tripsage import queries_for
from tripsage.crypto import Keyring, parse_key
from tripsage.db.connector import connect
from tripsage.exceptions import CryptoError

Q = queries_for("tripsage.db")
KEY_SETTING = "tripsage.vault_key"
VERSION = 1
KEY_ID_BYTES = 8
TAG_BYTES = 32
_ENCRYPT = b"encrypt"
_AUTHENTICATE = b"authenticate"


def session_key(keys: Keyring) -> bytes:
    """The Vault key (32 bytes) for the current TRIPSAGE_ENCRYPTION_KEY: it opens Vault secrets and nothing else."""
    return _derive(keys.current)


def _derive(encryption_key: bytes) -> bytes:
    return hmac.new(encryption_key, b"tripsage:vault", hashlib.sha256).digest()


def session_options(key: bytes, existing: str = "") -> str:
    """libpq `options` that give a session the Vault key (after any `existing` options)."""
    return f"{existing} -c {KEY_SETTING}={key.hex()}".strip()


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


def _prf(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _keystream_xor(key: bytes, nonce: bytes, data: bytes) -> bytes:
    stream = b"".join(_prf(key, nonce + block.to_bytes(4, "big")) for block in range((len(data) + 31) // 32))
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def seal(key: bytes, plaintext: str, secret_id: str, nonce: bytes) -> str:
    """The `vault.secrets.secret` text of `plaintext` for the secret `secret_id` with `nonce`."""
    header = bytes([VERSION]) + key_id(key)
    sealed = _keystream_xor(_prf(key, _ENCRYPT), nonce, plaintext.encode())
    tag = _prf(_prf(key, _AUTHENTICATE), header + nonce + secret_id.encode() + sealed)
    return base64.b64encode(header + sealed + tag).decode()


def unseal(key: bytes, secret: str, secret_id: str, nonce: bytes) -> str:
    """The plaintext of a `vault.secrets.secret` text; CryptoError when it is not ours, or was changed."""
    blob = base64.b64decode(secret)
    if len(blob) < 1 + KEY_ID_BYTES + TAG_BYTES or blob[0] != VERSION:
        raise CryptoError(f"vault: secret {secret_id} is not a TripSage Vault ciphertext")
    header, sealed, tag = blob[: 1 + KEY_ID_BYTES], blob[1 + KEY_ID_BYTES : -TAG_BYTES], blob[-TAG_BYTES:]
    if header[1:] != key_id(key):
        raise CryptoError(f"vault: secret {secret_id} was encrypted under key {header[1:].hex()}")
    expected = _prf(_prf(key, _AUTHENTICATE), header + nonce + secret_id.encode() + sealed)
    if not hmac.compare_digest(tag, expected):
        raise CryptoError(f"vault: secret {secret_id} failed authentication")
    return _keystream_xor(_prf(key, _ENCRYPT), nonce, sealed).decode()


async def reads_vault(conn: psycopg.AsyncConnection[Any], username: str) -> bool:
    """Whether `username` may read vault.decrypted_secrets in `conn`'s database (False where there is no vault)."""
    row = await (await conn.execute(Q["vault_reader"].sql, {"username": username})).fetchone()
    return bool(row and row["reads"])


async def connect_with_key(url: str, key: bytes, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
    """A connection to `url` whose session holds the Vault key."""
    existing = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
    return await connect(url, options=session_options(key, str(existing)), **kwargs)


async def rotate(conn: psycopg.AsyncConnection[Any], current_key: str, previous_keys: list[str]) -> int:
    """Re-encrypt, in `conn`'s transaction, every Vault secret made under one of `previous_keys` (the base64
    TRIPSAGE_PREVIOUS_ENCRYPTION_KEYS) under `current_key`; return how many."""
    row = await (await conn.execute(Q["vault_is_ours"].sql)).fetchone()
    if not row or not row["ours"]:
        return 0
    current = _derive(parse_key(current_key))
    known = {key_id(derived): derived for derived in (_derive(parse_key(old)) for old in previous_keys)}
    count = 0
    for secret in await (await conn.execute(Q["vault_secrets_for_rotation"].sql)).fetchall():
        made_with = base64.b64decode(secret["secret"])[1 : 1 + KEY_ID_BYTES]
        if made_with == key_id(current):
            continue
        old_key = known.get(made_with)
        if old_key is None:
            raise CryptoError(
                f"vault: secret {secret['id']} was encrypted under key {made_with.hex()}, which is neither "
                "TRIPSAGE_ENCRYPTION_KEY nor in TRIPSAGE_PREVIOUS_ENCRYPTION_KEYS"
            )
        plaintext = unseal(old_key, secret["secret"], secret["id"], bytes(secret["nonce"]))
        nonce = os.urandom(16)
        await conn.execute(
            Q["reencrypt_vault_secret"].sql,
            {"id": secret["id"], "secret": seal(current, plaintext, secret["id"], nonce), "nonce": nonce},
        )
        count += 1
    return count
