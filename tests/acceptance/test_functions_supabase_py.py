"""supabase-py's functions.invoke against the runtime, as an app calls Supabase Edge Functions: it succeeds with the
service_role key and fails (401) with a key signed by another project's secret."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from supabase import AsyncClientOptions, acreate_client
from supabase_functions.errors import FunctionsHttpError
from testkit.runtime import TEST_JWT_SECRET

from tests.integration.functions.conftest import create_trip, create_user, functions_runtime, sql
from tripsage import jwt


def options(http: httpx.AsyncClient) -> AsyncClientOptions:
    # The client's own HTTP client (supabase-py deprecates its timeout parameter in favour of this).
    return AsyncClientOptions(auto_refresh_token=False, httpx_client=http)


async def test_functions_invoke_with_service_role_and_with_a_bad_key(tmp_path: Path, embedded_database: str) -> None:
    async with functions_runtime(tmp_path, embedded_database) as rt, httpx.AsyncClient(timeout=30) as http:
        db = rt.runtime.database
        owner, _ = await create_user(db, "Olivia")
        guest, _ = await create_user(db, "Gustav")
        trip = await create_trip(db, owner)
        service_key = jwt.api_key(TEST_JWT_SECRET, "service_role")
        client = await acreate_client(rt.base_url, service_key, options=options(http))
        answer = await client.functions.invoke(
            "trip-events",
            {
                "body": {
                    "type": "trip.collaborator.added",
                    "data": {"trip_id": trip, "user_id": guest, "permission_level": "edit"},
                },
                "responseType": "json",
            },
        )
        assert answer == {"success": True, "event": "trip.collaborator.added", "notifications": 1, "emails": 0}
        rows = await sql(db, "SELECT type FROM notifications WHERE user_id = %(u)s", {"u": guest})
        assert [r["type"] for r in rows] == ["trip_collaboration_invite"]

        answer = await client.functions.invoke(
            "ai-processing",
            {"body": {"type": "memory.generate.embedding", "data": {"memory_ids": []}}, "responseType": "json"},
        )
        assert answer["success"] is True and answer["embedded"] == 0

        bad_key = jwt.api_key("another-projects-secret-0123456789-abcdefgh", "service_role")
        bad = await acreate_client(rt.base_url, bad_key, options=options(http))
        with pytest.raises(FunctionsHttpError) as error:
            await bad.functions.invoke(
                "trip-events",
                {
                    "body": {
                        "type": "trip.collaborator.added",
                        "data": {"trip_id": trip, "user_id": guest, "permission_level": "edit"},
                    }
                },
            )
        assert error.value.status == 401
        assert len(await sql(db, "SELECT id FROM notifications")) == 1
