"""`tripsage functions ...`: embed pending memories now, search a user's memories, the email outbox."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tripsage import queries_for
from tripsage.ai.embeddings import provider_from_settings
from tripsage.cli_support import plain, with_db
from tripsage.config import load_settings
from tripsage.db.connector import Database
from tripsage.functions import ai_processing

Q = queries_for("tripsage.functions")
app = typer.Typer(help="The functions: embeddings, memory search, the email outbox.", no_args_is_help=True)
console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
def embed(
    user: Annotated[str | None, typer.Option(help="Only this user's memories.")] = None,
) -> None:
    """Embed every pending memory now (what memory.generate.embedding does), with the configured provider."""

    async def work(db: Database) -> dict[str, int]:
        provider = provider_from_settings(load_settings())
        try:
            return await ai_processing.embed_pending(db, provider, user_id=user)
        finally:
            await provider.close()

    result = with_db(work)
    console.print(f"embedded {result['embedded']} memories ({result['skipped']} changed meanwhile, left pending)")


@app.command()
def search(
    user: Annotated[str, typer.Argument(help="The user whose memories are searched.")],
    text: Annotated[str, typer.Argument(help="What to look for.")],
    count: Annotated[int, typer.Option("--count", "-k", help="How many memories.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """A user's memories nearest in meaning to TEXT (public.search_memories)."""

    async def work(db: Database) -> list[dict[str, Any]]:
        provider = provider_from_settings(load_settings())
        try:
            return await ai_processing.search(db, provider, user, text, match_count=count)
        finally:
            await provider.close()

    rows = with_db(work)
    if as_json:
        print(json.dumps(rows, default=plain, indent=2))
        return
    table = Table(title=f"memories of {user} nearest to {text!r}")
    for column in ("similarity", "memory_type", "confidence", "content"):
        table.add_column(column)
    for row in rows:
        table.add_row(f"{row['similarity']:.3f}", row["memory_type"], f"{row['confidence']:.2f}", row["content"])
    console.print(table)


@app.command()
def emails(as_json: JsonOption = False) -> None:
    """The email outbox by status (pending, sent, dead)."""
    rows = with_db(lambda db: db.fetch_all(Q["email_outbox_status"]))
    if as_json:
        print(json.dumps(rows, default=plain, indent=2))
        return
    for row in rows or [{"status": "empty", "emails": 0}]:
        console.print(f"{row['status']}: {row['emails']}")
