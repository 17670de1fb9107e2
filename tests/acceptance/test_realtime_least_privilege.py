"""Realtime with the runtime connected as the least-privilege role tripsage_automation acting as service_role: the
gateway starts and delivers changes, presence, and private channels with broadcasts from the database."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from testkit.runtime import running_runtime, runtime_settings
from testkit.waiting import eventually

from tests.integration.realtime.conftest import subscribe, user_token


async def test_realtime_runs_as_tripsage_automation(
    least_privilege_url: str, embedded_database: str, tmp_path: Path
) -> None:
    url = least_privilege_url
    owner = str(uuid.uuid4())
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id) VALUES (%s)", [owner])
    settings = runtime_settings(tmp_path, db_role="service_role")
    async with running_runtime(settings, url) as running:
        component = next(c for c in running.runtime.components if c.name == "realtime")
        assert component.health()["status"] == "ok"
        sub = await subscribe(
            running.base_url, user_token(owner), "lp", [{"event": "*", "table": "trips", "schema": "public"}]
        )
        try:
            with psycopg.connect(embedded_database, autocommit=True) as conn:
                trip = conn.execute(
                    "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
                    " VALUES (%s, 'least privilege', 'X', '2026-01-01', '2026-01-02') RETURNING id",
                    [owner],
                ).fetchone()[0]  # type: ignore[index]
            await eventually(lambda: [c["data"]["record"]["id"] for c in sub.changes] == [trip])
            presence = {"config": {"broadcast": {}, "presence": {"key": "me", "enabled": True}, "private": False}}
            room = await subscribe(
                running.base_url, user_token(owner), "lp-room", [], client=sub.client, params=presence
            )
            await room.channel.track({"online": True})  # presence rows and the relay, as service_role
            await eventually(lambda: set(room.channel.presence_state()) == {"me"})
            # A private channel: the authorization probes (insert_probes, then acting as authenticated) and a
            # broadcast from the database.
            private = {"config": {"broadcast": {}, "presence": {"key": "me", "enabled": True}, "private": True}}
            trip_room = await subscribe(
                running.base_url, user_token(owner), f"trip:{trip}", [], client=sub.client, params=private
            )
            heard: list[dict[str, object]] = []
            trip_room.channel.on_broadcast("note", heard.append)
            with psycopg.connect(embedded_database, autocommit=True) as conn:
                conn.execute("SELECT realtime.send('{\"x\": 1}', 'note', %s)", [f"trip:{trip}"])
            await eventually(lambda: len(heard) == 1)
        finally:
            await sub.client.close()
