"""The runtime connected as the documented least-privilege role tripsage_automation, acting as service_role."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from testkit import servers
from testkit.runtime import detailed_health, running_runtime, runtime_settings


async def test_runtime_runs_as_tripsage_automation(
    least_privilege_url: str, embedded_database: str, tmp_path: Path
) -> None:
    url = least_privilege_url
    settings = runtime_settings(tmp_path, db_role="service_role")
    async with running_runtime(settings, url) as running:
        health = await asyncio.to_thread(detailed_health, running.base_url)  # raises unless 200
        assert health["database"]["status"] == "ok"
        assert health["database"]["role"] == "service_role"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET ROLE service_role")
        assert conn.execute("SELECT count(*) FROM webhook_configs").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.not_allowed (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE public.trips DISABLE ROW LEVEL SECURITY")


SEED_JOBS = (
    "cleanup-expired-search-cache",
    "archive-old-session-memories",
    "update-table-statistics",
    "monitor-expiring-api-keys",
    "archive-completed-trips",
    "vacuum-maintenance",
    "generate-memory-embeddings",
    "monitor-database-health",
    "cleanup-job-run-details",
    "cleanup-system-metrics",
)


def latest_runs(url: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (j.jobname) j.jobname, d.status, d.return_message FROM cron.job_run_details d "
            "JOIN cron.job j USING (jobid) WHERE d.status IN ('succeeded', 'failed') ORDER BY j.jobname, d.runid DESC"
        ).fetchall()
    return {str(name): (str(status), str(message)) for name, status, message in rows}


async def run_every_seed_job(admin_url: str, runtime_url: str, tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Every seed job due every 2 seconds, here (a test database is a copy of a template the jobs were scheduled
    in), under a runtime connected as `runtime_url`, acting as service_role; the latest outcome of each."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in SEED_JOBS:
            conn.execute(
                "SELECT cron.alter_job(jobid, schedule := '2 seconds', database := current_database()) "
                "FROM cron.job WHERE jobname = %s",
                (name,),
            )
    async with running_runtime(runtime_settings(tmp_path, db_role="service_role"), runtime_url):
        deadline = time.monotonic() + 60
        while set(latest_runs(admin_url)) != set(SEED_JOBS) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    return latest_runs(admin_url)


def check_no_role_gained_a_privilege(admin_url: str) -> None:
    """The job role can only run the maintenance functions (and VACUUM where it may), tripsage_automation has no
    table privileges of its own, service_role cannot write cron.job."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        checks = conn.execute(
            "SELECT r.rolcanlogin, r.rolbypassrls, r.rolsuper, "
            "has_table_privilege('tripsage_maintenance', 'public.search_destinations', 'SELECT,DELETE'), "
            "has_table_privilege('tripsage_maintenance', 'public.trips', 'SELECT,INSERT,UPDATE,DELETE'), "
            "has_table_privilege('tripsage_automation', 'public.search_destinations', 'DELETE'), "
            "has_table_privilege('service_role', 'cron.job', 'INSERT,UPDATE,DELETE') "
            "FROM pg_roles r WHERE r.rolname = 'tripsage_maintenance'"
        ).fetchone()
    assert checks == (False, False, False, False, False, False, False)


async def test_seed_jobs_succeed_under_tripsage_automation(
    least_privilege_url: str, embedded_database: str, tmp_path: Path
) -> None:
    runs = await run_every_seed_job(embedded_database, least_privilege_url, tmp_path)
    outcomes = {name: runs.get(name, ("never ran", ""))[0] for name in SEED_JOBS}
    assert outcomes == dict.fromkeys(SEED_JOBS, "succeeded"), runs
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        # VACUUM did vacuum (it skips, with a warning, the tables a role may not maintain).
        vacuumed = conn.execute(
            "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relid = 'public.trips'::regclass"
        )
        assert vacuumed.fetchone() == (True,)
    check_no_role_gained_a_privilege(embedded_database)


@pytest.fixture
def system_least_privilege(system_server: servers.Server) -> Iterator[tuple[str, str]]:
    """A deployed database of the system server (PostgreSQL 15), as the superuser and as tripsage_automation."""
    name = system_server.create_database()
    with system_server.admin() as conn:
        conn.execute("ALTER ROLE tripsage_automation LOGIN")
    try:
        admin_url = system_server.url(name)
        yield admin_url, psycopg.conninfo.make_conninfo(admin_url, user="tripsage_automation")
    finally:
        with system_server.admin() as conn:
            conn.execute("ALTER ROLE tripsage_automation NOLOGIN")
        system_server.drop_database(name)


async def test_seed_jobs_under_tripsage_automation_before_postgresql_17(
    system_least_privilege: tuple[str, str], tmp_path: Path
) -> None:
    # Before PostgreSQL 17 only a table's owner may VACUUM it (no MAINTAIN privilege): vacuum-maintenance stays
    # with the deploying user, which the runtime cannot become (docs/scheduler.md, Limits); every other job succeeds.
    admin_url, runtime_url = system_least_privilege
    runs = await run_every_seed_job(admin_url, runtime_url, tmp_path)
    outcomes = {name: runs.get(name, ("never ran", "")) for name in SEED_JOBS}
    expected = {name: ("succeeded", outcomes[name][1]) for name in SEED_JOBS}
    expected["vacuum-maintenance"] = ("failed", 'ERROR:  permission denied to set role "postgres"\n')
    assert outcomes == expected
    check_no_role_gained_a_privilege(admin_url)
