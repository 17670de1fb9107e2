"""What monitoring reads of the webhooks schema: dead letters and replay.

Kept in one adapter so the dashboard, /metrics and `tripsage status` do not depend on the webhooks schema's details.
Monitoring's own named SQL (queries.sql): it reads the database, never the webhooks capability's code, so the two
stay independent (the import contracts in pyproject.toml). The webhooks CLI reads the same tables through
`tripsage.webhooks.outbox`.
"""

from __future__ import annotations

from typing import Any

from tripsage import queries_for, redact
from tripsage.db.connector import Database

Q = queries_for("tripsage.monitoring")


async def _installed(db: Database) -> bool:
    return bool((await db.fetch_one(Q["outbox_depth_available"]) or {}).get("available"))


async def dead_letter_count(db: Database) -> int | None:
    """None when the webhooks schema is not installed."""
    if not await _installed(db):
        return None
    return await count_dead(db)


async def count_dead(db: Database) -> int:
    """Dead deliveries (the webhooks schema must be installed)."""
    return int(await db.fetch_value(Q["dead_letter_count"]))


async def dead_letters(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """Dead deliveries, newest first, shaped for the dashboard: id, webhook, event_type, attempts, last_error."""
    if not await _installed(db):
        return []
    return [
        {
            "id": row["id"],
            "webhook": row.get("config_name"),
            "event_type": row.get("event_type"),
            "attempts": row.get("attempts"),
            "last_error": redact.redact_optional(row.get("last_error")),  # rows written before redaction too
            "created_at": row.get("created_at"),
        }
        for row in await db.fetch_all(Q["dead_letters"], {"limit": limit})
    ]


async def replay(db: Database, delivery_id: int) -> bool:
    """Queue one dead delivery again (same webhook-id); False when there was nothing to replay."""
    if not await _installed(db):
        return False
    return bool(await db.fetch_value(Q["replay_delivery"], {"id": delivery_id}))
