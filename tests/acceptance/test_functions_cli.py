"""`tripsage functions embed | search | emails` as an operator runs them, with the real local model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
from testkit import servers

MEMORIES = [
    "I love hiking in the Swiss Alps and sleeping in mountain huts",
    "Vegetarian restaurants only, no meat dishes please",
    "Always book a window seat on long-haul flights",
]


def tripsage(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SUPABASE_DB_URL"}
    env.update({"DATABASE_URL": url, "HF_HUB_OFFLINE": "1"})
    return subprocess.run(
        [sys.executable, "-m", "tripsage", "functions", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=servers.REPO,
        stdin=subprocess.DEVNULL,
    )


def test_embed_then_search_then_emails(embedded_database: str) -> None:
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        row = conn.execute("INSERT INTO auth.users (email) VALUES ('cli@example.com') RETURNING id").fetchone()
        assert row is not None
        user = str(row[0])
        for text in MEMORIES:
            conn.execute("INSERT INTO memories (user_id, content) VALUES (%s, %s)", [user, text])

    result = tripsage("embed", url=embedded_database)
    assert result.returncode == 0, result.stderr
    assert "embedded 3 memories" in result.stdout

    result = tripsage("search", user, "I don't eat meat", "-k", "2", "--json", url=embedded_database)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert len(found) == 2 and found[0]["content"] == MEMORIES[1]

    result = tripsage("emails", "--json", url=embedded_database)
    assert result.returncode == 0 and json.loads(result.stdout) == []
    result = tripsage("search", "not-a-uuid", "x", url=embedded_database)
    assert result.returncode == 1 and "error" in result.stderr
