"""The Vault cipher's Python reference (tripsage.db.supabase_vault): round trips, binding to the secret's id, keys."""

from __future__ import annotations

import os

import pytest

from tripsage.crypto import Keyring
from tripsage.db import supabase_vault
from tripsage.exceptions import CryptoError

KEY = supabase_vault.session_key(Keyring("A" * 43 + "="))


@pytest.mark.parametrize("plaintext", ["", "x", "é" * 33, "https://project-ref.supabase.co" * 5])
def test_round_trip(plaintext: str) -> None:
    nonce = os.urandom(16)
    sealed = supabase_vault.seal(KEY, plaintext, "id-1", nonce)
    assert plaintext == supabase_vault.unseal(KEY, sealed, "id-1", nonce)
    if len(plaintext) >= 8:  # a shorter text can occur in any base64 string by chance
        assert plaintext not in sealed


def test_bound_to_id_nonce_and_key() -> None:
    nonce = os.urandom(16)
    sealed = supabase_vault.seal(KEY, "secret", "id-1", nonce)
    with pytest.raises(CryptoError, match="failed authentication"):
        supabase_vault.unseal(KEY, sealed, "id-2", nonce)
    with pytest.raises(CryptoError, match="failed authentication"):
        supabase_vault.unseal(KEY, sealed, "id-1", os.urandom(16))
    other = supabase_vault.session_key(Keyring("B" * 43 + "="))
    with pytest.raises(CryptoError, match="encrypted under key"):
        supabase_vault.unseal(other, sealed, "id-1", nonce)


def test_session_options_keep_existing_options() -> None:
    assert supabase_vault.session_options(KEY, "-c x.y=1") == f"-c x.y=1 -c tripsage.vault_key={KEY.hex()}"
    assert KEY != Keyring("A" * 43 + "=").current  # derived: the Vault key opens nothing else
