"""What monitoring reads of the webhooks capability: dead letters and replay.

Kept in one adapter so the dashboard, /metrics and `tripsage status` do not depend on the webhooks schema's details.
"""

from __future__ import annotations

from typing import Any

from tripsage import queries_for, redact
from tripsage.db.connector import Database
from tripsage.webhooks import outbox

Q = queries_for("tripsage.monitoring")


async def _installed(db: Database) -> bool:
    return bool((await db.fetch_one(Q["outbox_depth_available"]) or {}).get("available"))


async def dead_letter_count(db: Database) -> int | None:
    """None when the webhooks schema is not installed."""
    if not await _installed(db):
        return None
    return await outbox.dead_letter_count(db)


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
        for row in await outbox.list_dead_letters(db, limit)
    ]


async def replay(db: Database, delivery_id: int) -> bool:
    """Queue one dead delivery again (same webhook-id); False when there was nothing to replay."""
    if not await _installed(db):
        return False
    return await outbox.replay_delivery(db, delivery_id) == 1
