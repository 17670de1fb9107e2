"""`tripsage jobs ...` as a subprocess, against the emulation (both servers) and native pg_cron 1.4.2."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess

import psycopg
import pytest
from testkit import servers
from testkit.runtime import run_tripsage

from tripsage.crypto import Keyring
from tripsage.db import supabase_vault


def jobs(url: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    env["DATABASE_URL"] = url
    env.update(extra_env)
    return run_tripsage("jobs", *args, env=env)


def exercise(url: str) -> None:
    listed = jobs(url, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {j["jobname"]: j for j in json.loads(listed.stdout)}
    assert by_name["monitor-database-health"]["schedule"] == "*/5 * * * *"
    assert by_name["monitor-database-health"]["next_run"] is not None

    ran = jobs(url, "run", "monitor-database-health", "--json")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["status"] == "succeeded" and result["message"] == "1 row"  # pg_cron's return_message
    history = json.loads(jobs(url, "history", "monitor-database-health", "--json", "--limit", "1").stdout)
    assert [(h["runid"], h["status"], h["return_message"]) for h in history] == [
        (result["runid"], "succeeded", "1 row")
    ]

    assert jobs(url, "pause", "monitor-database-health").returncode == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT active FROM cron.job WHERE jobname = 'monitor-database-health'").fetchone() == (
            False,
        )
    assert jobs(url, "resume", "monitor-database-health").returncode == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT active FROM cron.job WHERE jobname = 'monitor-database-health'").fetchone() == (
            True,
        )

    unknown = jobs(url, "run", "no-such-job")
    assert unknown.returncode == 1 and "unknown job: no-such-job" in unknown.stderr
    assert jobs(url, "pause", "no-such-job").returncode == 1


def test_jobs_cli_on_the_emulation(database: str) -> None:
    exercise(database)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SELECT cron.schedule('broken', '@daily', 'SELECT 1/0')")
    failed = jobs(database, "run", "broken", "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["message"] == "ERROR:  division by zero\n"
    with psycopg.connect(database) as conn:
        recorded = conn.execute(
            "SELECT t.outcome FROM cron.job_tick t JOIN cron.job j USING (jobid) WHERE j.jobname = 'broken'"
        ).fetchall()
    assert recorded == [("started",)]  # recorded like a scheduled run


def test_jobs_cli_on_native_pg_cron(system_server: servers.Server) -> None:
    try:
        exercise(system_server.admin_url)
    finally:
        with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
            conn.execute("UPDATE cron.job SET active = true WHERE jobname = 'monitor-database-health'")


def test_a_job_run_by_hand_reads_vault_secrets_like_a_scheduled_run(database: str) -> None:
    # The scheduler hands its jobs the Vault key (docs/vault.md); `tripsage jobs run` ran the same job without it, so
    # the documented pattern (a cron job reading vault.decrypted_secrets) failed only when run by hand.
    encryption_key = base64.b64encode(b"k" * 32).decode()
    options = supabase_vault.session_options(supabase_vault.session_key(Keyring(encryption_key)))
    with psycopg.connect(database, autocommit=True, options=options) as conn:
        conn.execute("SELECT vault.create_secret('https://project.example', 'project_url')")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.read_by_hand (url text)")
        conn.execute(
            "SELECT cron.schedule('reads-vault', '@daily', 'INSERT INTO public.read_by_hand SELECT decrypted_secret "
            "FROM vault.decrypted_secrets WHERE name = ''project_url''')"
        )
    ran = jobs(database, "run", "reads-vault", "--json", TRIPSAGE_ENCRYPTION_KEY=encryption_key)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["status"] == "succeeded"
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT url FROM public.read_by_hand").fetchall() == [("https://project.example",)]


@pytest.mark.parametrize("schedule", ["61 seconds", "* * *"])
def test_bad_schedule_is_a_clear_error(embedded_database: str, schedule: str) -> None:
    with (
        psycopg.connect(embedded_database, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InvalidParameterValue) as error,
    ):
        conn.execute("SELECT cron.schedule('x', %s, 'SELECT 1')", (schedule,))
    assert error.value.diag.message_primary == f"invalid schedule: {schedule}"


@pytest.mark.parametrize("command", [("serve",), ("jobs", "list")])
def test_a_mistyped_timezone_stops_the_start_with_one_line(command: tuple[str, ...], tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    env.update({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "TRIPSAGE_CRON_TIMEZONE": "Europe/Berln"})
    result = run_tripsage(*command, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: invalid settings: TRIPSAGE_CRON_TIMEZONE: unknown time zone 'Europe/Berln' "
        "(use an IANA name such as UTC or Europe/Berlin)"
    ]


def test_status_and_jobs_list_show_next_runs_in_the_servers_cron_timezone(database: str) -> None:
    # With no TRIPSAGE_CRON_TIMEZONE, the scheduler reads its schedules in the server's cron.timezone; `tripsage
    # status` (and the dashboard) computed next runs in UTC instead, so they disagreed with `tripsage jobs list`.
    name = psycopg.conninfo.conninfo_to_dict(database)["dbname"]
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET cron.timezone = 'Asia/Tokyo'").format(psycopg.sql.Identifier(name))
        )
        conn.execute("SELECT cron.schedule('nine-in-tokyo', '0 9 * * *', 'SELECT 1')")
    env = {
        k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL", "TRIPSAGE_CRON_TIMEZONE"}
    }
    env["DATABASE_URL"] = database
    listed = {j["jobname"]: j for j in json.loads(run_tripsage("jobs", "list", "--json", env=env).stdout)}
    status = run_tripsage("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    shown = {j["jobname"]: j for j in json.loads(status.stdout)["jobs"]}
    expected = listed["nine-in-tokyo"]["next_run"]
    assert expected.endswith(("00:00:00+00:00", "T00:00:00Z")), expected  # 09:00 in Tokyo is 00:00 UTC
    assert dt.datetime.fromisoformat(str(shown["nine-in-tokyo"]["next_run"])) == dt.datetime.fromisoformat(expected)
