"""AES-256-GCM for secrets at rest (users' API keys, webhook secrets), with the key outside the database.

Ciphertext layout: version byte 0x01 | key id (8 bytes, SHA-256 of the key) | nonce (12 bytes) | ciphertext + tag.
The key id lets old ciphertext be read after a rotation (TRIPSAGE_PREVIOUS_ENCRYPTION_KEYS) until
`tripsage secrets rotate` re-encrypts it under the current key. The associated data binds a ciphertext to its
purpose (for example the table), so it cannot be moved elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tripsage.exceptions import ConfigurationError, CryptoError

VERSION = b"\x01"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HEADER_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES


def parse_key(encoded: str) -> bytes:
    """A 32-byte key from its base64 (standard or url-safe) text."""
    text = encoded.strip()
    try:
        key = base64.b64decode(
            text + "=" * (-len(text) % 4),
            altchars=b"-_" if ("-" in text or "_" in text) else None,
            validate=True,
        )
    except (binascii.Error, ValueError) as error:
        raise ConfigurationError("TRIPSAGE_ENCRYPTION_KEY is not valid base64") from error
    if len(key) != 32:
        raise ConfigurationError(
            f"TRIPSAGE_ENCRYPTION_KEY must be 32 bytes (AES-256) encoded in base64, not {len(key)} bytes; "
            "make one with: python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'"
        )
    return key


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


class Keyring:
    """The current key (encrypts) and older keys (still decrypt)."""

    def __init__(self, current: str, previous: list[str] | None = None) -> None:
        self.current = parse_key(current)
        self._keys = {key_id(self.current): self.current}
        for old in previous or []:
            key = parse_key(old)
            self._keys.setdefault(key_id(key), key)

    @property
    def current_id(self) -> bytes:
        return key_id(self.current)

    def encrypt(self, plaintext: bytes, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current).encrypt(nonce, plaintext, purpose.encode())
        return VERSION + self.current_id + nonce + sealed

    def decrypt(self, blob: bytes, purpose: str) -> bytes:
        if len(blob) <= HEADER_BYTES or blob[:1] != VERSION:
            raise CryptoError("not a TripSage ciphertext (unknown format)")
        kid, nonce, sealed = (
            blob[1 : 1 + KEY_ID_BYTES],
            blob[1 + KEY_ID_BYTES : HEADER_BYTES],
            blob[HEADER_BYTES:],
        )
        key = self._keys.get(kid)
        if key is None:
            raise CryptoError(
                f"ciphertext was made with key {kid.hex()}, which is neither TRIPSAGE_ENCRYPTION_KEY nor in "
                "TRIPSAGE_PREVIOUS_ENCRYPTION_KEYS"
            )
        try:
            return AESGCM(key).decrypt(nonce, sealed, purpose.encode())
        except InvalidTag as error:
            raise CryptoError("ciphertext failed authentication (tampered, or used for another purpose)") from error

    def needs_rotation(self, blob: bytes) -> bool:
        return blob[1 : 1 + KEY_ID_BYTES] != self.current_id

    def lookup_hash(self, plaintext: bytes, purpose: str) -> str:
        """A keyed hash for equality lookups: useless without the key, unlike a bare SHA-256 of a short secret."""
        mac_key = hashlib.sha256(b"tripsage-lookup:" + self.current).digest()
        return hmac.new(mac_key, purpose.encode() + b"\0" + plaintext, hashlib.sha256).hexdigest()
