"""What monitoring reads of the webhooks capability: dead letters and replay.

Kept in one adapter so the dashboard, /metrics and `tripsage status` do not depend on the webhooks schema's details.
"""

from __future__ import annotations

from typing import Any

from tripsage.db.connector import Database


async def dead_letter_count(db: Database) -> int | None:
    """None when the webhooks schema is not installed."""
    return None


async def dead_letters(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    return []


async def replay(db: Database, delivery_id: int) -> bool:
    return False
