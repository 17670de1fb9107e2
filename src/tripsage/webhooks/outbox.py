"""The outbox seen from Python: dead letters and replay (for the dashboard and the CLI). The endpoints' secrets are
kept by `tripsage.db.vault`, which owns their encryption purpose and rotation.

Every function takes a `Database` and runs the named queries of this package; none keeps state in memory.
"""

from __future__ import annotations

from typing import Any

from tripsage import queries_for
from tripsage.db.connector import Database

Q = queries_for("tripsage.webhooks")


async def list_dead_letters(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """Dead deliveries, newest first: id, config_name, event_type, attempts, last_error, created_at (and more)."""
    return await db.fetch_all(Q["dead_letters"], {"limit": limit})


async def dead_letter_count(db: Database) -> int:
    return int(await db.fetch_value(Q["dead_letter_count"]))


async def replay_delivery(db: Database, delivery_id: int) -> int:
    """Queue one dead (or finished) delivery again, same webhook-id; the number replayed (0 or 1)."""
    return 1 if await db.fetch_value(Q["replay_delivery"], {"id": delivery_id}) else 0


async def replay_dead(db: Database, config_name: str | None = None) -> int:
    """Queue every dead delivery (of one endpoint, or all) again; the number replayed."""
    return int(await db.fetch_value(Q["replay_dead"], {"name": config_name}))
