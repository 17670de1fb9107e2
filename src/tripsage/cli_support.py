"""The command plumbing `tripsage` and the capability CLIs (`tripsage webhooks`, `jobs`, `status`, ...) share: the
database a command works on, one database session per command, errors as one clear line, and JSON that carries
timestamps and numerics. `tripsage.cli` and the capability CLIs import this module, never the other way."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from tripsage.config import Settings, load_settings
from tripsage.db.connector import Database
from tripsage.db.embedded import EmbeddedPostgres
from tripsage.exceptions import TripSageError

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


def plain(value: Any) -> Any:
    """json.dumps' default= for database rows."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def print_error(message: object) -> None:
    """The one error line on stderr."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def fail(message: object) -> typer.Exit:
    """Print the error line; the exit (code 1) to raise."""
    print_error(message)
    return typer.Exit(1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a TripSageError becomes one clear line on stderr and exit code 1."""
    try:
        return asyncio.run(coro)
    except TripSageError as error:
        raise fail(error) from None


@dataclass
class Target:
    """The database a command works on: the configured one, or the embedded server (started if needed)."""

    settings: Settings
    url: str
    embedded: EmbeddedPostgres | None

    def close(self) -> None:
        # Stop the embedded server only if this command started it (another `tripsage up` may be using it).
        if self.embedded is not None and self.embedded.started_here:
            self.embedded.stop()


def open_target(settings: Settings, *, db_port: int | None = None) -> Target:
    external = settings.external_database_url
    if external:
        return Target(settings, external, None)
    server = EmbeddedPostgres(settings.resolved_data_dir, port=db_port or settings.db_port)
    return Target(settings, server.start(), server)


def with_db(
    work: Callable[[Database], Awaitable[T]], *, max_size: int = 2, application_name: str = "tripsage-cli"
) -> T:
    """Run `work` against the configured database (or the embedded server); errors become one clear line."""
    settings = load_settings()
    try:
        target = open_target(settings)
    except TripSageError as error:
        raise fail(error) from None

    async def main() -> T:
        async with Database(target.url, max_size=max_size, application_name=application_name) as db:
            return await work(db)

    try:
        return asyncio.run(main())
    except (TripSageError, LookupError, ValueError) as error:
        raise fail(error) from None
    finally:
        target.close()


def emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str], title: str) -> None:
    """Rows as JSON (every column), or as a table of `columns` ("-" for NULL)."""
    if as_json:
        print(json.dumps(rows, default=plain, indent=2))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)
