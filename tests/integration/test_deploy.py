"""The migration runner against real servers: apply, no-op, refusal of edited history, rollback, clear errors."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import psycopg
import pytest
from testkit import servers

from tripsage.db.migrations import Deployer, discover
from tripsage.exceptions import DatabaseUnavailable, InsufficientPrivilege, MigrationError

MIGRATIONS = servers.REPO / "supabase" / "migrations"


def scalar(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query.encode()).fetchone()
        return None if row is None else row[0]


async def test_deploy_from_empty_then_noop(empty_database: str) -> None:
    deployer = Deployer(empty_database, MIGRATIONS)
    first = await deployer.deploy()
    assert [m.path.name for m in first.pending] == sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    second = await deployer.deploy()
    assert second.pending == []
    assert scalar(empty_database, "SELECT count(*) FROM supabase_migrations.schema_migrations") == len(first.pending)
    assert scalar(empty_database, "SELECT count(*) FROM tripsage_deploy.applied_migrations") == len(first.pending)
    assert (
        scalar(empty_database, "SELECT count(*) FROM supabase_migrations.schema_migrations WHERE statements IS NULL")
        == 0
    )
    # The Supabase CLI's table has exactly the CLI's columns.
    assert scalar(
        empty_database,
        "SELECT array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns "
        "WHERE table_schema = 'supabase_migrations' AND table_name = 'schema_migrations'",
    ) == ["version", "statements", "name"]


async def test_history_recorded_by_older_deploys_is_adopted(empty_database: str, tmp_path: Path) -> None:
    # Deploys before tripsage_deploy existed added checksum and applied_at columns to the CLI's table.
    (tmp_path / "20260101000000_one.sql").write_text("CREATE TABLE one (id int);\n")
    (tmp_path / "20260101000001_two.sql").write_text("CREATE TABLE two (id int);\n")
    (one, _two) = discover(tmp_path)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE one (id int)")
        conn.execute(
            "CREATE SCHEMA supabase_migrations; CREATE TABLE supabase_migrations.schema_migrations "
            "(version text PRIMARY KEY, statements text[], name text, checksum text, applied_at timestamptz)"
        )
        conn.execute(
            "INSERT INTO supabase_migrations.schema_migrations VALUES ('20260101000000', '{x}', 'one', %s, now())",
            ["0" * 64],
        )
    with pytest.raises(MigrationError, match=r"20260101000000_one\.sql was changed after it was applied"):
        await Deployer(empty_database, tmp_path).deploy(dry_run=True)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("UPDATE supabase_migrations.schema_migrations SET checksum = %s", [one.checksum])
    assert [m.name for m in (await Deployer(empty_database, tmp_path).deploy(dry_run=True)).pending] == ["two"]
    assert [m.name for m in (await Deployer(empty_database, tmp_path).deploy()).pending] == ["two"]
    assert scalar(empty_database, "SELECT count(*) FROM tripsage_deploy.applied_migrations") == 2


async def test_cli_history_without_checksums_plans_and_deploys(empty_database: str, tmp_path: Path) -> None:
    # `supabase db push` records (version, name, statements) only; other versions are the user's own.
    (tmp_path / "20260101000000_one.sql").write_text("CREATE TABLE one (id int);\n")
    (tmp_path / "20260101000001_two.sql").write_text("CREATE TABLE two (id int);\n")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE one (id int)")
        conn.execute(
            "CREATE SCHEMA supabase_migrations; CREATE TABLE supabase_migrations.schema_migrations "
            "(version text NOT NULL PRIMARY KEY, statements text[], name text)"
        )
        conn.execute(
            "INSERT INTO supabase_migrations.schema_migrations VALUES ('20250101000000', '{x}', 'mine'), "
            "('20260101000000', '{CREATE TABLE one (id int)}', 'one')"
        )
    plan = await Deployer(empty_database, tmp_path).deploy(dry_run=True)
    assert ([m.name for m in plan.pending], plan.unknown) == (["two"], ["20250101000000"])
    assert [m.name for m in (await Deployer(empty_database, tmp_path).deploy()).pending] == ["two"]
    assert (await Deployer(empty_database, tmp_path).deploy()).pending == []


async def test_amended_migration_accepts_the_text_it_amends(empty_database: str, tmp_path: Path) -> None:
    original = "CREATE TABLE one (id int);\n"
    (tmp_path / "20260101000000_one.sql").write_text(original)
    await Deployer(empty_database, tmp_path).deploy()
    old = discover(tmp_path)[0].checksum
    (tmp_path / "20260101000000_one.sql").write_text(
        f"-- tripsage:amends {old} (the earlier text)\nCREATE TABLE IF NOT EXISTS one (id int);\n"
    )
    assert (await Deployer(empty_database, tmp_path).deploy()).pending == []
    (tmp_path / "20260101000000_one.sql").write_text("CREATE TABLE IF NOT EXISTS one (id int);\n")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await Deployer(empty_database, tmp_path).deploy()


async def test_dry_run_changes_nothing(empty_database: str) -> None:
    plan = await Deployer(empty_database, MIGRATIONS).deploy(dry_run=True)
    assert plan.pending
    assert scalar(empty_database, "SELECT to_regclass('public.trips')") is None
    assert scalar(empty_database, "SELECT to_regclass('supabase_migrations.schema_migrations')") is None


async def test_edited_applied_migration_is_refused(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "20260101000000_one.sql").write_text("CREATE TABLE one (id int);\n")
    await Deployer(empty_database, tmp_path).deploy()
    (tmp_path / "20260101000000_one.sql").write_text("CREATE TABLE one (id bigint);\n")
    with pytest.raises(MigrationError, match=r"20260101000000_one.sql was changed after it was applied"):
        await Deployer(empty_database, tmp_path).deploy()


async def test_failing_migration_rolls_back_and_names_file_and_line(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "20260101000000_ok.sql").write_text("CREATE TABLE ok (id int);\n")
    (tmp_path / "20260101000001_broken.sql").write_text(
        "CREATE TABLE half (id int);\n\nINSERT INTO half VALUES (1);\nSELEC 1;\n"
    )
    with pytest.raises(MigrationError) as raised:
        await Deployer(empty_database, tmp_path).deploy()
    message = str(raised.value)
    assert message.startswith('20260101000001_broken.sql, line 4: syntax error at or near "SELEC"')
    assert scalar(empty_database, "SELECT to_regclass('public.ok')") == "ok"
    assert scalar(empty_database, "SELECT to_regclass('public.half')") is None
    versions = scalar(empty_database, "SELECT array_agg(version) FROM supabase_migrations.schema_migrations")
    assert versions == ["20260101000000"]


async def test_dollar_quoted_bodies_survive(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "20260101000000_fn.sql").write_text(
        "CREATE FUNCTION add_one(x int) RETURNS int LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    x := x + 1;\n    RETURN x;\nEND;\n$$;\n"
        "CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS $body$ SELECT x * 2; $body$;\n"
        "DO $do$ BEGIN PERFORM add_one(1); END; $do$;\n"
    )
    await Deployer(empty_database, tmp_path).deploy()
    assert scalar(empty_database, "SELECT add_one(twice(3))") == 7


async def test_no_transaction_marker_allows_vacuum_and_concurrent_index(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "20260101000000_table.sql").write_text("CREATE TABLE t (x int);\n")
    (tmp_path / "20260101000001_maintenance.sql").write_text(
        "-- tripsage:no-transaction\nVACUUM (ANALYZE) t;\n-- tripsage:break\n"
        "CREATE INDEX CONCURRENTLY t_x_idx ON t (x);\n"
    )
    plan = await Deployer(empty_database, tmp_path).deploy()
    assert len(plan.pending) == 2
    assert scalar(empty_database, "SELECT to_regclass('public.t_x_idx')") == "t_x_idx"


async def test_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match=r"^cannot connect to postgresql://nobody:\*\*\*@127\.0\.0\.1:1/x"):
        await Deployer("postgresql://nobody:pw@127.0.0.1:1/x", tmp_path).plan()


async def test_role_without_privileges_is_refused_clearly(server: servers.Server, empty_database: str) -> None:
    with server.admin() as conn:
        conn.execute("DROP ROLE IF EXISTS tripsage_weak")
        conn.execute("CREATE ROLE tripsage_weak LOGIN")
    try:
        weak = psycopg.conninfo.make_conninfo(empty_database, user="tripsage_weak")
        with pytest.raises(InsufficientPrivilege, match="deploy as the database owner"):
            await Deployer(weak, MIGRATIONS).deploy()
    finally:
        with server.admin() as conn:
            conn.execute("DROP ROLE tripsage_weak")


def copy_controls(source: Path, pattern: str, target: Path) -> None:
    for control in source.glob(pattern):
        shutil.copy(control, target)


async def test_server_without_pgvector_is_refused_with_the_fix(embedded_server: servers.Server, tmp_path: Path) -> None:
    # PostgreSQL 18's extension_control_path lets this session see only btree_gist: as on a server lacking pgvector.
    controls = servers.make_shared_tempdir("tsg-controls-")
    try:
        system_dir = Path(str(embedded_server.bin_dir).replace("/bin", "/share/extension"))
        copy_controls(system_dir, "btree_gist*", controls)
        name = embedded_server.create_database(template=None)
        try:
            url = psycopg.conninfo.make_conninfo(
                embedded_server.url(name), options=f"-c extension_control_path={controls}"
            )
            with pytest.raises(MigrationError, match="extension vector is not available on this server") as raised:
                await Deployer(url, MIGRATIONS).deploy()
            assert "install pgvector" in str(raised.value)
            assert scalar(embedded_server.url(name), "SELECT to_regclass('public.trips')") is None
        finally:
            embedded_server.drop_database(name)
    finally:
        shutil.rmtree(controls, ignore_errors=True)


async def test_embedding_dimension_is_chosen_at_deploy_time(empty_database: str) -> None:
    await Deployer(empty_database, MIGRATIONS, embedding_dim=1536).deploy()
    typmod = scalar(
        empty_database,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'public.memories'::regclass AND attname = 'embedding'",
    )
    assert typmod == "extensions.vector(1536)"


async def test_concurrent_first_deploys_apply_each_migration_once(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "20260101000000_one.sql").write_text("CREATE TABLE one (id int);\n")
    plans = await asyncio.gather(*(Deployer(empty_database, tmp_path).deploy() for _ in range(3)))
    assert sorted(len(plan.pending) for plan in plans) == [0, 0, 1]
    assert scalar(empty_database, "SELECT count(*) FROM tripsage_deploy.applied_migrations") == 1
