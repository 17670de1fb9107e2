"""What the capability CLIs (`tripsage webhooks`, `jobs`, `status`, ...) share: one database session per command,
errors as one clear line, and JSON that carries timestamps and numerics."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from tripsage.config import load_settings
from tripsage.db.connector import Database
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


def fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` against the configured database (or the embedded server); errors become one clear line."""
    from tripsage.cli import open_target  # the shared command plumbing (imported late: cli imports the sub-apps)

    settings = load_settings()
    try:
        target = open_target(settings)
    except TripSageError as error:
        raise fail(str(error)) from None

    async def main() -> T:
        async with Database(target.url, max_size=2, application_name="tripsage-cli") as db:
            return await work(db)

    try:
        return asyncio.run(main())
    except (TripSageError, LookupError, ValueError) as error:
        raise fail(str(error)) from None
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
