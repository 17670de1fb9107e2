"""The runtime connected as the documented least-privilege role tripsage_automation, acting as service_role."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import psycopg
import pytest

from tests.runtime import TEST_JWT_SECRET, running_runtime, runtime_settings
from tripsage import jwt

SERVICE_KEY = jwt.api_key(TEST_JWT_SECRET, "service_role")


async def test_runtime_runs_as_tripsage_automation(
    least_privilege_url: str, embedded_database: str, tmp_path: Path
) -> None:
    url = least_privilege_url
    settings = runtime_settings(tmp_path, db_role="service_role")
    async with running_runtime(settings, url) as running:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{running.base_url}/health", headers={"Authorization": f"Bearer {SERVICE_KEY}"}) as response,
        ):
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
