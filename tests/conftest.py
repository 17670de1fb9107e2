"""Fixtures shared by every tier: real servers, a template database, one database per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from psycopg import sql
from testkit import servers
from testkit.servers import free_port

from tripsage.db.migrations import Deployer

MIGRATIONS = servers.REPO / "supabase" / "migrations"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _deploy(url: str) -> None:
    asyncio.run(Deployer(url, MIGRATIONS).deploy())


def _build_template(server: servers.Server) -> None:
    server.drop_database(servers.TEMPLATE)
    with server.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(servers.TEMPLATE)))
    _deploy(server.url(servers.TEMPLATE))


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[servers.Server]:
    server = servers.start_embedded()
    try:
        _build_template(server)
        yield server
    finally:
        servers.stop_embedded(server)


@pytest.fixture(scope="session")
def system_server() -> Iterator[servers.Server]:
    reason = servers.system_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI must run the system-server tests, but: {reason}")
        pytest.skip(f"system PostgreSQL unavailable: {reason}")
    server = servers.start_system(free_port())
    try:
        _build_template(server)
        # pg_cron is native only in cron.database_name (postgres): deploy there too.
        _deploy(server.admin_url)
        yield server
    finally:
        servers.stop_system(server)


@pytest.fixture(params=["embedded", "system"])
def server(request: pytest.FixtureRequest) -> servers.Server:
    """Each test using this runs once per server."""
    fixture = "embedded_server" if request.param == "embedded" else "system_server"
    result: servers.Server = request.getfixturevalue(fixture)
    return result


@pytest.fixture
def database(server: servers.Server) -> Iterator[str]:
    """A fresh, fully deployed database on `server`; its URL."""
    with server.fresh_database() as url:
        yield url


@pytest.fixture
def empty_database(server: servers.Server) -> Iterator[str]:
    """A fresh database with nothing deployed; its URL."""
    with server.fresh_database(template=None) as url:
        yield url


@pytest.fixture
def embedded_database(embedded_server: servers.Server) -> Iterator[str]:
    with embedded_server.fresh_database() as url:
        yield url


@pytest.fixture
def system_database(system_server: servers.Server) -> Iterator[str]:
    with system_server.fresh_database() as url:
        yield url


@pytest.fixture
async def db(database: str) -> AsyncIterator[object]:
    from tripsage.db.connector import Database

    async with Database(database, max_size=4) as pool:
        yield pool


@pytest.fixture
def repo() -> Path:
    return servers.REPO
