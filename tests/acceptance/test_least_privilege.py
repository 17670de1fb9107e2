"""The runtime connected as the documented least-privilege role tripsage_automation, acting as service_role."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import psycopg
import pytest

from tests import servers
from tests.runtime import running_runtime, runtime_settings


async def test_runtime_runs_as_tripsage_automation(
    embedded_server: servers.Server, embedded_database: str, tmp_path: Path
) -> None:
    with embedded_server.admin() as conn:
        conn.execute("ALTER ROLE tripsage_automation LOGIN")
    try:
        url = psycopg.conninfo.make_conninfo(embedded_database, user="tripsage_automation")
        settings = runtime_settings(tmp_path, db_role="service_role")
        async with running_runtime(settings, url) as running:
            async with aiohttp.ClientSession() as session, session.get(f"{running.base_url}/health") as response:
                health = json.loads(await response.text())
            assert response.status == 200 and health["database"]["status"] == "ok"
            assert health["database"]["role"] == "service_role"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET ROLE service_role")
            assert conn.execute("SELECT count(*) FROM webhook_configs").fetchone() is not None
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE TABLE public.not_allowed (id int)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("ALTER TABLE public.trips DISABLE ROW LEVEL SECURITY")
    finally:
        with embedded_server.admin() as conn:
            conn.execute("ALTER ROLE tripsage_automation NOLOGIN")
