"""supabase/schemas (declarative) and supabase/migrations (history) describe the same database.

Three builds on each server: schemas/ through psql, migrations/ through psql (what `supabase db push` and plain
`psql -f` users do), and migrations/ through `tripsage deploy`'s runner.
Their `pg_dump --schema-only` must be identical.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from testkit import servers

from tripsage.db.migrations import Deployer

SCHEMAS = servers.REPO / "supabase" / "schemas"
MIGRATIONS = servers.REPO / "supabase" / "migrations"
# \restrict carries a random key per dump (PostgreSQL 17.6+ / 18); it is not part of the schema.
VOLATILE = re.compile(r"^\\(un)?restrict .*$", re.MULTILINE)


def psql_files(server: servers.Server, url: str, files: list[Path]) -> None:
    for path in files:
        subprocess.run(
            [str(server.bin_dir / "psql"), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )


def dump(server: servers.Server, url: str) -> str:
    result = subprocess.run(
        [
            str(server.bin_dir / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--exclude-schema=supabase_migrations",
            "--exclude-schema=tripsage_deploy",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return VOLATILE.sub("", result.stdout)


async def test_schemas_and_migrations_build_identical_databases(server: servers.Server) -> None:
    names = [server.create_database(template=None) for _ in range(3)]
    try:
        from_schemas, from_psql, from_runner = (server.url(name) for name in names)
        psql_files(server, from_schemas, sorted(SCHEMAS.glob("*.sql")))
        psql_files(server, from_psql, sorted(MIGRATIONS.glob("*.sql")))
        await Deployer(from_runner, MIGRATIONS).deploy()
        reference = dump(server, from_schemas)
        assert "CREATE TABLE public.trips" in reference
        assert dump(server, from_psql) == reference
        assert dump(server, from_runner) == reference
    finally:
        for name in names:
            server.drop_database(name)


DEFINITION = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNIQUE\s+)?"
    r"(TABLE|FUNCTION|PROCEDURE|VIEW|MATERIALIZED VIEW|INDEX|TRIGGER|TYPE|SEQUENCE|POLICY|PUBLICATION)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?([\w.\"]+)(\s*\([^)]*\))?(?:\s+ON\s+([\w.\"]+))?",
    re.IGNORECASE | re.MULTILINE,
)


def definitions(directory: Path, *, per_file: bool = False) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in sorted(directory.glob("*.sql")):
        for kind, name, arguments, table in DEFINITION.findall(path.read_text()):
            key = (f"{path.name}: " if per_file else "") + f"{kind.upper()} {name}"
            if kind.upper() in {"FUNCTION", "PROCEDURE"}:
                key += re.sub(r"\s+", " ", arguments or "")
            if kind.upper() in {"POLICY", "TRIGGER"}:
                key += f" ON {table}"
            found[key] += 1
    return found


def test_no_object_is_defined_twice() -> None:
    """The declarative tree defines each object once. The history may redefine an object in a later migration
    (CREATE OR REPLACE: that is how a released function changes), but never twice within one migration."""
    for directory, per_file in ((SCHEMAS, False), (MIGRATIONS, True)):
        twice = sorted(key for key, count in definitions(directory, per_file=per_file).items() if count > 1)
        assert twice == [], f"{directory.name}: defined more than once: {twice}"
    assert definitions(SCHEMAS), "the definition scan found nothing: the pattern is broken"
