"""The migration runner behind `tripsage deploy`.

Applies `supabase/migrations/<14-digit timestamp>_<name>.sql` in order, each whole file in one transaction (SQL is
never split on semicolons, so dollar-quoted bodies survive), and records each in
`supabase_migrations.schema_migrations` exactly as the Supabase CLI does (version, name, statements: that table is
only read and appended to, so `supabase migration list` and `db push` keep working), and its checksum in a table of
our own, `tripsage_deploy.applied_migrations`. An applied migration whose file has changed is refused.

Amended history: a file may carry lines `-- tripsage:amends <sha256 of an earlier text> <why>`. A database that
applied that earlier text is accepted as up to date (the earlier text is not run again). Use this only when the
earlier text could break a project it had not yet been applied to, and a later migration brings databases that did
apply it to the same state.

A file whose first line is `-- tripsage:no-transaction` runs outside a transaction (for VACUUM, CREATE INDEX
CONCURRENTLY, ALTER SYSTEM): its statements are separated by lines reading exactly `-- tripsage:break`, and each runs
on its own in autocommit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tripsage.db import connector, queries
from tripsage.exceptions import InsufficientPrivilege, MigrationError

NO_TRANSACTION_MARKER = "-- tripsage:no-transaction"
AMENDS_MARKER = "-- tripsage:amends "
BREAK_MARKER = "-- tripsage:break"
_FILENAME = re.compile(r"^(\d{14})_([A-Za-z0-9_.-]+)\.sql$")

Q = queries.load("tripsage.db")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def amends(self) -> frozenset[str]:
        """Checksums of earlier texts of this file that a database may have applied instead."""
        return frozenset(
            line[len(AMENDS_MARKER) :].split()[0]
            for line in self.text.splitlines()
            if line.startswith(AMENDS_MARKER) and line[len(AMENDS_MARKER) :].split()
        )

    @property
    def transactional(self) -> bool:
        return not self.text.lstrip().startswith(NO_TRANSACTION_MARKER)

    def chunks(self) -> list[tuple[int, str]]:
        """(first line, SQL) of each part: the whole file, or its break-separated statements."""
        if self.transactional:
            return [(1, self.text)]
        parts: list[tuple[int, str]] = []
        start, current = 1, list[str]()
        for number, line in enumerate(self.text.splitlines(keepends=True), start=1):
            if line.strip() == BREAK_MARKER:
                parts.append((start, "".join(current)))
                start, current = number + 1, []
            else:
                current.append(line)
        parts.append((start, "".join(current)))
        return [(line, text) for line, text in parts if _has_sql(text)]


@dataclass(frozen=True)
class Plan:
    applied: list[str]
    pending: list[Migration]
    unknown: list[str]  # versions recorded in the database with no file here


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def discover(directory: Path) -> list[Migration]:
    """The migration files of `directory`, in version order; a misnamed .sql file is an error."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: list[Migration] = []
    versions: dict[str, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named <14-digit timestamp>_<name>.sql")
        version, name = match.groups()
        if version in versions:
            raise MigrationError(f"{path} and {versions[version]} share version {version}")
        versions[version] = path
        found.append(Migration(version, name, path, path.read_text(encoding="utf-8")))
    return found


def _error_line(migration: Migration, first_line: int, text: str, error: psycopg.Error) -> str:
    """'<file>, line N: <message>' using PostgreSQL's statement position when it gives one."""
    diag = error.diag
    line = None
    if diag.statement_position:
        line = first_line + text[: int(diag.statement_position) - 1].count("\n")
    message = diag.message_primary or str(error).strip()
    where = f"{migration.path.name}, line {line}" if line else migration.path.name
    extra = ""
    if diag.context and not line:
        extra = f" ({diag.context.strip().splitlines()[0]})"
    if diag.message_hint:
        extra += f" HINT: {diag.message_hint}"
    return f"{where}: {message}{extra}"


class Deployer:
    """Applies pending migrations to one database."""

    def __init__(self, url: str, directory: Path, *, embedding_dim: int = 384) -> None:
        self.url = url
        self.directory = directory
        self.embedding_dim = embedding_dim

    async def plan(self) -> Plan:
        migrations = discover(self.directory)
        conn = await connector.connect(self.url, application_name="tripsage-deploy")
        try:
            return await self._plan(conn, migrations)
        finally:
            await conn.close()

    async def _plan(self, conn: psycopg.AsyncConnection[connector.Row], migrations: list[Migration]) -> Plan:
        tables = await (await conn.execute(Q["migrations_table_exists"].sql)).fetchone()
        recorded: set[str] = set()
        checksums: dict[str, str] = {}
        if tables and tables["present"]:
            recorded = {row["version"] for row in await (await conn.execute(Q["applied_migrations"].sql)).fetchall()}
            if tables["legacy_checksums"]:
                for row in await (await conn.execute(Q["legacy_checksums"].sql)).fetchall():
                    checksums[row["version"]] = row["checksum"]
        if tables and tables["own"]:
            for row in await (await conn.execute(Q["own_checksums"].sql)).fetchall():
                checksums[row["version"]] = row["checksum"]
        pending = []
        for migration in migrations:
            if migration.version not in recorded:
                pending.append(migration)
                continue
            # No checksum: applied by the Supabase CLI or psql, which record none.
            checksum = checksums.get(migration.version)
            if checksum is not None and checksum != migration.checksum and checksum not in migration.amends:
                raise MigrationError(
                    f"{migration.path.name} was changed after it was applied (checksum {checksum[:12]} in the "
                    f"database, {migration.checksum[:12]} on disk): never edit an applied migration, add a new one"
                )
        files = {m.version for m in migrations}
        unknown = sorted(v for v in recorded if v not in files)
        return Plan(applied=sorted(recorded), pending=pending, unknown=unknown)

    async def deploy(self, *, dry_run: bool = False, progress: Callable[[Migration], None] | None = None) -> Plan:
        """Apply every pending migration; return the plan that was (or, with dry_run, would be) carried out."""
        migrations = discover(self.directory)
        conn = await connector.connect(self.url, application_name="tripsage-deploy")
        try:
            if dry_run:
                return await self._plan(conn, migrations)
            # The lock first: concurrent first deploys would otherwise race creating the history tables.
            await conn.execute(Q["deploy_lock"].sql)
            try:
                try:
                    async with conn.transaction():
                        await conn.execute(Q["ensure_migrations_table"].sql)
                        tables = await (await conn.execute(Q["migrations_table_exists"].sql)).fetchone()
                        if tables and tables["legacy_checksums"]:
                            await conn.execute(Q["adopt_legacy_checksums"].sql)
                except psycopg.errors.InsufficientPrivilege as error:
                    raise InsufficientPrivilege(
                        f"cannot create the migration history tables: {error.diag.message_primary}; "
                        "deploy as the database owner (on Supabase: the postgres role)"
                    ) from error
                plan = await self._plan(conn, migrations)
                for migration in plan.pending:
                    if progress:
                        progress(migration)
                    await self._apply(conn, migration)
                return plan
            finally:
                await conn.execute(Q["deploy_unlock"].sql)
        finally:
            await conn.close()

    async def _apply(self, conn: psycopg.AsyncConnection[connector.Row], migration: Migration) -> None:
        record = {
            "version": migration.version,
            "name": migration.name,
            "statements": migration.text,
            "checksum": migration.checksum,
        }
        dim = {"dim": str(self.embedding_dim)}
        if migration.transactional:
            first, text = migration.chunks()[0]
            try:
                async with conn.transaction():
                    await conn.execute(Q["set_embedding_dim"].sql, dim)
                    await conn.execute(text)
                    await conn.execute(Q["record_migration"].sql, record)
            except psycopg.errors.InsufficientPrivilege as error:
                raise InsufficientPrivilege(_error_line(migration, first, text, error)) from error
            except psycopg.Error as error:
                raise MigrationError(_error_line(migration, first, text, error)) from error
            return
        for first, text in migration.chunks():
            try:
                await conn.execute(text)
            except psycopg.Error as error:
                raise MigrationError(
                    _error_line(migration, first, text, error)
                    + " (non-transactional migration: the statements before this one stay applied)"
                ) from error
        await conn.execute(Q["record_migration"].sql, record)
