"""Supabase Vault's SQL API (supabase/vault 0.3) with the key outside the database, on both servers.

The documentation's "Scheduling Edge Functions" pattern runs unmodified apart from its URL: secrets created with
vault.create_secret, a cron job run by the emulated scheduler that reads them from vault.decrypted_secrets into
net.http_post, a real receiver. Where the key is not handed (a plain session), reading or creating a secret fails
with an error that says why; no secret or key reaches pg_dump, pg_stat_statements or the server's log."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from testkit import servers
from testkit.runtime import run_tripsage, running_runtime, runtime_settings

from tests.integration.webhooks.conftest import Receiver, serving
from tripsage.config import load_settings
from tripsage.crypto import Keyring
from tripsage.db import supabase_vault
from tripsage.db.vault import rotate_all
from tripsage.exceptions import CryptoError

WAIT = 90.0  # seconds: the documented job runs every minute (a bound, never asserted as a timing)
KEY_MISSING = "the Vault key is not available in this session"
PROJECT_KEY = "sb_publishable_0123456789abcdefSECRET"
# docs: guides/functions/schedule-functions, "Invoke the Edge Function every minute" (vault variant).
DOCUMENTED_SECRETS = """
select vault.create_secret('{url}', 'project_url');
select vault.create_secret('{key}', 'publishable_key');
"""
DOCUMENTED_JOB = """
select
  cron.schedule(
    'invoke-function-every-minute',
    '* * * * *', -- every minute
    $$
    select
      net.http_post(
          url:= (select decrypted_secret from vault.decrypted_secrets where name = 'project_url') || '/functions/v1/function-name',
          headers:=jsonb_build_object(
            'Content-type', 'application/json',
            'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'publishable_key')
          ),
          body:=concat('{"time": "', now(), '"}')::jsonb
      ) as request_id;
    $$
  );
"""  # noqa: E501 - the documentation's lines


def keyed(url: str, key: bytes) -> psycopg.Connection[tuple[Any, ...]]:
    """A session holding the Vault key, as `tripsage vault session-options` gives one."""
    existing = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
    return psycopg.connect(url, autocommit=True, options=supabase_vault.session_options(key, str(existing)))


@pytest.fixture
def key() -> bytes:
    return supabase_vault.session_key(Keyring("A" * 43 + "="))


def test_shape_and_privileges_are_supabases(database: str) -> None:
    with psycopg.connect(database) as conn:
        columns = conn.execute(
            "SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns "
            "WHERE table_schema = 'vault' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert columns == [
            (
                "decrypted_secrets",
                ["id", "name", "description", "secret", "decrypted_secret", "key_id", "nonce", "created_at",
                 "updated_at"],
            ),
            ("secrets", ["id", "name", "description", "secret", "key_id", "nonce", "created_at", "updated_at"]),
        ]  # fmt: skip
        signatures = dict(
            conn.execute(
                "SELECT p.proname, pg_get_function_arguments(p.oid) || ' -> ' || pg_get_function_result(p.oid) "
                "FROM pg_proc p WHERE p.pronamespace = 'vault'::regnamespace AND p.proname NOT LIKE '\\_%'"
            ).fetchall()
        )
        assert signatures == {
            "create_secret": "new_secret text, new_name text DEFAULT NULL::text, "
            "new_description text DEFAULT ''::text, new_key_id uuid DEFAULT NULL::uuid -> uuid",
            "update_secret": "secret_id uuid, new_secret text DEFAULT NULL::text, new_name text DEFAULT NULL::text, "
            "new_description text DEFAULT NULL::text, new_key_id uuid DEFAULT NULL::uuid -> void",
        }
        privileges = conn.execute(
            "SELECT r, has_schema_privilege(r, 'vault', 'USAGE'), "
            "has_table_privilege(r, 'vault.decrypted_secrets', 'SELECT'), "
            "has_function_privilege(r, 'vault.create_secret(text, text, text, uuid)', 'EXECUTE') "
            "FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r ORDER BY r"
        ).fetchall()
        assert privileges == [
            ("anon", False, False, False),
            ("authenticated", False, False, False),
            ("service_role", True, True, True),
        ]


def test_without_the_key_nothing_is_read_or_stored(database: str, key: bytes) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=KEY_MISSING) as raised:
            conn.execute("select vault.create_secret('s3cr3t-value', 'project_url')")
        assert "TRIPSAGE_ENCRYPTION_KEY" in str(raised.value.diag.message_hint)
        assert conn.execute("SELECT count(*) FROM vault.secrets").fetchone() == (0,)
    with keyed(database, key) as conn:
        conn.execute("select vault.create_secret('s3cr3t-value', 'project_url')")
    with psycopg.connect(database, autocommit=True) as conn:
        # Names and descriptions stay readable; the secret is an error that says why, never NULL or plaintext.
        assert conn.execute("SELECT name FROM vault.decrypted_secrets").fetchall() == [("project_url",)]
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=KEY_MISSING):
            conn.execute("SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = 'project_url'")
        stored = conn.execute("SELECT secret FROM vault.secrets").fetchone()
        assert stored is not None and "s3cr3t" not in stored[0]


def test_sql_and_python_ciphers_agree(database: str, key: bytes) -> None:
    plaintext = "é" * 40 + " https://project-ref.supabase.co"  # several keystream blocks, multibyte UTF-8
    with keyed(database, key) as conn:
        row = conn.execute("SELECT vault.create_secret(%s, 'long')", [plaintext]).fetchone()
        assert row is not None
        secret_id = str(row[0])
        secret, nonce = conn.execute("SELECT secret, nonce FROM vault.secrets WHERE id = %s", [secret_id]).fetchone()  # type: ignore[misc]
        assert supabase_vault.unseal(key, secret, secret_id, bytes(nonce)) == plaintext
        # And the other way: Python's ciphertext is read by SQL.
        other_nonce = uuid.uuid4().bytes
        conn.execute(
            "UPDATE vault.secrets SET secret = %s, nonce = %s WHERE id = %s",
            [supabase_vault.seal(key, "from python", secret_id, other_nonce), other_nonce, secret_id],
        )
        assert conn.execute("SELECT decrypted_secret FROM vault.decrypted_secrets").fetchone() == ("from python",)
    with pytest.raises(CryptoError, match="failed authentication"):
        supabase_vault.unseal(key, secret, str(uuid.uuid4()), bytes(nonce))


def test_update_duplicates_tampering_and_another_key(database: str, key: bytes) -> None:
    with keyed(database, key) as conn:
        row = conn.execute("SELECT vault.create_secret('one', 'name-1', 'first')").fetchone()
        assert row is not None
        secret_id = row[0]
        conn.execute("SELECT vault.update_secret(%s, 'two', 'name-2')", [secret_id])
        assert conn.execute("SELECT name, description, decrypted_secret FROM vault.decrypted_secrets").fetchall() == [
            ("name-2", "first", "two")
        ]
        with pytest.raises(psycopg.errors.UniqueViolation, match="secrets_name_idx"):
            conn.execute("SELECT vault.create_secret('dup-plaintext', 'name-2')")
        assert conn.execute("SELECT count(*) FROM vault.secrets").fetchone() == (1,)
        # A ciphertext moved to another secret fails authentication.
        other = conn.execute("SELECT vault.create_secret('other')").fetchone()
        assert other is not None
        conn.execute(
            "UPDATE vault.secrets SET (secret, nonce) = (SELECT secret, nonce FROM vault.secrets WHERE id = %s) "
            "WHERE id = %s",
            [secret_id, other[0]],
        )
        with pytest.raises(psycopg.errors.DataCorrupted, match="failed authentication"):
            conn.execute("SELECT decrypted_secret FROM vault.decrypted_secrets WHERE id = %s", [other[0]])
    with keyed(database, supabase_vault.session_key(Keyring("B" * 43 + "="))) as conn:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="not under this session's key"):
            conn.execute("SELECT decrypted_secret FROM vault.decrypted_secrets WHERE id = %s", [secret_id])


async def test_rotation_reencrypts_vault_secrets(
    database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old, new = "A" * 43 + "=", "B" * 43 + "="
    with keyed(database, supabase_vault.session_key(Keyring(old))) as conn:
        conn.execute("select vault.create_secret('rotated-plaintext', 'rotated')")
    monkeypatch.setenv("TRIPSAGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRIPSAGE_ENCRYPTION_KEY", new)
    monkeypatch.setenv("TRIPSAGE_PREVIOUS_ENCRYPTION_KEYS", old)
    assert (await rotate_all(database, load_settings()))["vault.secrets"] == 1
    assert (await rotate_all(database, load_settings()))["vault.secrets"] == 0
    with keyed(database, supabase_vault.session_key(Keyring(new))) as conn:
        assert conn.execute("SELECT decrypted_secret FROM vault.decrypted_secrets").fetchone() == ("rotated-plaintext",)


def test_psql_with_session_options_runs_the_documented_snippets(
    server: servers.Server, database: str, tmp_path: Path
) -> None:
    encryption_key = "C" * 43 + "="
    env = os.environ | {"TRIPSAGE_ENCRYPTION_KEY": encryption_key, "TRIPSAGE_DATA_DIR": str(tmp_path)}
    printed = run_tripsage("vault", "session-options", env=env)
    assert printed.returncode == 0, printed.stderr
    options = printed.stdout.strip()
    assert options == supabase_vault.session_options(supabase_vault.session_key(Keyring(encryption_key)))
    psql = [str(server.bin_dir / "psql"), database, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At"]
    snippets = DOCUMENTED_SECRETS.format(url="https://project-ref.supabase.co", key=PROJECT_KEY)
    done = subprocess.run([*psql, "-c", snippets], env=env | {"PGOPTIONS": options}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    read = "select decrypted_secret from vault.decrypted_secrets where name = 'publishable_key'"
    keyed_psql = subprocess.run([*psql, "-c", read], env=env | {"PGOPTIONS": options}, capture_output=True, text=True)
    assert keyed_psql.stdout.strip() == PROJECT_KEY
    plain_psql = subprocess.run([*psql, "-c", read], env=env, capture_output=True, text=True)
    assert plain_psql.returncode != 0 and KEY_MISSING in plain_psql.stderr


def server_logs(server: servers.Server) -> str:
    assert server.data_dir is not None
    paths = [server.data_dir / "pgdata" / "log" / "server.log", server.data_dir / "server.log"]
    return "".join(path.read_text(errors="replace") for path in paths if path.exists())


def pg_dump(server: servers.Server, url: str) -> str:
    return subprocess.run([str(server.bin_dir / "pg_dump"), url], check=True, capture_output=True, text=True).stdout


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as recv:
        yield recv


async def test_documented_scheduling_pattern_end_to_end(
    server: servers.Server,
    database: str,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the runtime's own log, every level
    monkeypatch.setenv("TRIPSAGE_NET_ALLOW_HOSTS", "127.0.0.1")
    settings = runtime_settings(tmp_path)
    key = supabase_vault.session_key(Keyring(settings.encryption_key))
    with keyed(database, key) as conn:
        conn.execute(DOCUMENTED_SECRETS.format(url=receiver.url, key=PROJECT_KEY))
    name = psycopg.conninfo.conninfo_to_dict(database)["dbname"]
    with server.admin() as conn:
        conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET log_statement = 'all'").format(psycopg.sql.Identifier(name))
        )
    async with running_runtime(settings, database):
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(DOCUMENTED_JOB)
        deadline = asyncio.get_running_loop().time() + WAIT
        while not receiver.received:
            assert asyncio.get_running_loop().time() < deadline, "the job's request never arrived"
            await asyncio.sleep(0.2)
    request = receiver.received[0]
    assert request.path == "/functions/v1/function-name"
    assert request.headers["Authorization"] == f"Bearer {PROJECT_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert set(json.loads(request.body)) == {"time"}

    with psycopg.connect(database, autocommit=True) as conn:
        runs = conn.execute("SELECT status, return_message FROM cron.job_run_details").fetchall()
        assert runs and all(status == "succeeded" for status, _ in runs), runs
        conn.execute("DELETE FROM net.http_request_queue")  # pg_net's queue: gone once sent (unlogged in pg_net)
        statements = " ".join(
            str(row[0])
            for row in conn.execute(
                "SELECT query FROM extensions.pg_stat_statements WHERE dbid = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchall()
        )
    dump = pg_dump(server, database)
    logs = server_logs(server)
    checked = (
        (dump, "pg_dump"),
        (statements, "pg_stat_statements"),
        (logs, "the server log"),
        (caplog.text, "our log"),
    )
    for text, where in checked:
        assert PROJECT_KEY not in text, f"the secret is in {where}"
        assert key.hex() not in text, f"the Vault key is in {where}"
    assert "vault.decrypted_secrets" in logs, "the job's statements were logged (the check above means something)"


async def test_native_pg_cron_job_gets_the_clear_error(system_server: servers.Server) -> None:
    # Native pg_cron runs jobs inside PostgreSQL, where the key never is: the run fails with the reason, never a
    # NULL header or a plaintext copy.
    key = supabase_vault.session_key(Keyring("D" * 43 + "="))
    name = "vault-native-probe"
    with keyed(system_server.admin_url, key) as conn:
        row = conn.execute("SELECT vault.create_secret('native-plaintext', %s)", [name]).fetchone()
        assert row is not None
        secret_id = row[0]
    try:
        with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
            conn.execute(
                "SELECT cron.schedule(%s, '* * * * *', %s)",
                [name, "select decrypted_secret from vault.decrypted_secrets where name = 'vault-native-probe'"],
            )
            deadline = asyncio.get_running_loop().time() + WAIT
            while True:
                run = conn.execute(
                    "SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid) "
                    "WHERE j.jobname = %s AND d.status IN ('succeeded', 'failed')",
                    [name],
                ).fetchone()
                if run is not None:
                    break
                assert asyncio.get_running_loop().time() < deadline, "native pg_cron never ran the job"
                await asyncio.sleep(0.5)
        assert run[0] == "failed" and KEY_MISSING in run[1], run
    finally:
        with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
            conn.execute("SELECT cron.unschedule(%s)", [name])
            conn.execute("DELETE FROM vault.secrets WHERE id = %s", [secret_id])
