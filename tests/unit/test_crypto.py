import base64
import os

import pytest

from tripsage.crypto import Keyring, parse_key
from tripsage.exceptions import ConfigurationError, CryptoError


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_round_trip_and_fresh_nonce() -> None:
    keys = Keyring(new_key())
    first = keys.encrypt(b"sk-live-123", "tripsage:api_keys")
    second = keys.encrypt(b"sk-live-123", "tripsage:api_keys")
    assert first != second
    assert b"sk-live-123" not in first
    assert keys.decrypt(first, "tripsage:api_keys") == b"sk-live-123"


def test_purpose_binds_ciphertext() -> None:
    keys = Keyring(new_key())
    blob = keys.encrypt(b"secret", "tripsage:api_keys")
    with pytest.raises(CryptoError, match="authentication"):
        keys.decrypt(blob, "tripsage:webhook_configs")


def test_tampering_is_detected() -> None:
    keys = Keyring(new_key())
    blob = bytearray(keys.encrypt(b"secret", "p"))
    blob[-1] ^= 1
    with pytest.raises(CryptoError):
        keys.decrypt(bytes(blob), "p")


def test_rotation_reads_old_ciphertext_with_previous_key() -> None:
    old, new = new_key(), new_key()
    blob = Keyring(old).encrypt(b"secret", "p")
    rotated = Keyring(new, [old])
    assert rotated.needs_rotation(blob)
    assert rotated.decrypt(blob, "p") == b"secret"
    with pytest.raises(CryptoError, match="neither TRIPSAGE_ENCRYPTION_KEY"):
        Keyring(new).decrypt(blob, "p")


def test_bad_keys_are_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        parse_key(base64.b64encode(b"short").decode())
    with pytest.raises(ConfigurationError, match="base64"):
        parse_key("not base64 !!!")


def test_lookup_hash_is_keyed() -> None:
    a, b = Keyring(new_key()), Keyring(new_key())
    assert a.lookup_hash(b"x", "p") == a.lookup_hash(b"x", "p")
    assert a.lookup_hash(b"x", "p") != b.lookup_hash(b"x", "p")
