"""`tripsage realtime status` from outside, against a database with a running gateway."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from testkit import servers
from testkit.runtime import running_runtime, runtime_settings

SIX = {"trips", "trip_collaborators", "itinerary_items", "chat_sessions", "chat_messages", "chat_tool_calls"}


async def test_realtime_status_reports_gateways_tables_and_backlog(embedded_database: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    env.update({"DATABASE_URL": embedded_database, "TRIPSAGE_DATA_DIR": str(tmp_path / "cli")})
    command = [sys.executable, "-m", "tripsage", "realtime", "status", "--json"]
    async with running_runtime(runtime_settings(tmp_path), embedded_database):
        result = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=120, cwd=servers.REPO
        )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [g["alive"] for g in report["gateways"]] == [True]
    tables = {t["table_name"].removeprefix("public."): t for t in report["tables"]}
    assert set(tables) == SIX
    assert all(t["capture_trigger"] and t["audience_function"] and t["rls"] for t in tables.values())
    assert report["backlog"]["changes"] >= 0
    human = await asyncio.to_thread(
        subprocess.run, command[:-1], env=env, capture_output=True, text=True, timeout=120, cwd=servers.REPO
    )
    assert human.returncode == 0 and "Publication supabase_realtime" in human.stdout
