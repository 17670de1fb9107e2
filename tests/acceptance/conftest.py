"""What the acceptance tests share: a restartable PostgreSQL cluster for multi-process runs, and the database URL of
the documented least-privilege role."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from testkit import servers
from testkit.harness import Cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The embedded server on a TCP port in its own temp dir, TripSage deployed (testkit/harness.py)."""
    c = Cluster()
    c.start()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def least_privilege_url(embedded_server: servers.Server, embedded_database: str) -> Iterator[str]:
    """`embedded_database` as tripsage_automation, given LOGIN for the test (docs/operations.md), then NOLOGIN."""
    with embedded_server.admin() as conn:
        conn.execute("ALTER ROLE tripsage_automation LOGIN")
    try:
        yield psycopg.conninfo.make_conninfo(embedded_database, user="tripsage_automation")
    finally:
        with embedded_server.admin() as conn:
            conn.execute("ALTER ROLE tripsage_automation NOLOGIN")
