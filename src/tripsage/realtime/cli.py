"""`tripsage realtime status`: the gateways the database knows, the published tables and their capture, the backlog."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tripsage import queries_for
from tripsage.cli_support import plain, with_db
from tripsage.db.connector import Database

Q = queries_for("tripsage.realtime")
app = typer.Typer(help="The realtime gateway: gateways, published tables, capture.", no_args_is_help=True)
console = Console()


async def _status(db: Database) -> dict[str, Any]:
    return {
        "gateways": await db.fetch_all(Q["status_gateways"]),
        "tables": await db.fetch_all(Q["status_tables"]),
        "backlog": await db.fetch_one(Q["status_backlog"]),
    }


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Gateways (alive or not), published tables (capture trigger, audience function, RLS) and the change backlog."""
    report = with_db(_status, max_size=1)
    if as_json:
        print(json.dumps(report, default=plain, indent=2))
        return
    gateways = Table(title="Realtime gateways")
    for column in ("id", "started_at", "seen_at", "alive", "presences"):
        gateways.add_column(column)
    for row in report["gateways"]:
        gateways.add_row(*(str(row[c]) for c in ("id", "started_at", "seen_at", "alive", "presences")))
    console.print(gateways)
    tables = Table(title="Publication supabase_realtime")
    for column in ("table_name", "capture_trigger", "audience_function", "rls"):
        tables.add_column(column)
    for row in report["tables"]:
        tables.add_row(*(str(row[c]) for c in ("table_name", "capture_trigger", "audience_function", "rls")))
    console.print(tables)
    backlog = report["backlog"] or {}
    console.print(
        f"captured changes kept: {backlog.get('changes', 0)} (oldest {backlog.get('oldest_s', 0):.0f} s); "
        f"relayed messages kept: {backlog.get('relayed', 0)}"
    )
