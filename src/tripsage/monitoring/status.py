"""One snapshot of the automation plane's state, shared by `tripsage status` and the dashboard."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tripsage import cron, queries_for
from tripsage.config import Settings
from tripsage.db.connector import Database
from tripsage.db.cron_timezone import schedule_timezone
from tripsage.monitoring import webhooks_view

Q = queries_for("tripsage.monitoring")
HISTORY_ROWS = 20
SLOW_ROWS = 10


async def collect_status(db: Database, settings: Settings, *, slow: bool = False) -> dict[str, Any]:
    """The jobs' next runs are in the scheduler's zone (TRIPSAGE_CRON_TIMEZONE, else the server's cron.timezone)."""
    status: dict[str, Any] = {
        "success_metrics": await db.fetch_all(Q["success_metrics"], {"window": "24 hours"}),
        "jobs": [],
        "job_history": [],
        "webhooks": await db.fetch_one(Q["webhook_totals"]),
        "webhook_hourly": await db.fetch_all(Q["webhook_hourly"]),
        "health_series": await db.fetch_all(Q["health_series"]),
        "outbox_depth": None,
        "dead_letters": await webhooks_view.dead_letter_count(db),
    }
    if (await db.fetch_one(Q["cron_available"]) or {}).get("available"):
        now = dt.datetime.now(dt.UTC)
        timezone = await schedule_timezone(settings, db)
        status["jobs"] = [
            {**job, "next_run": cron.next_run(job["schedule"], now, timezone) if job["active"] else None}
            for job in await db.fetch_all(Q["jobs"])
        ]
        status["job_history"] = await db.fetch_all(Q["job_history"], {"limit": HISTORY_ROWS})
    if (await db.fetch_one(Q["outbox_depth_available"]) or {}).get("available"):
        status["outbox_depth"] = await db.fetch_value(Q["outbox_depth"])
    if slow:
        available = (await db.fetch_one(Q["slow_queries_available"]) or {}).get("available")
        status["slow_queries"] = await db.fetch_all(Q["slow_queries"], {"limit": SLOW_ROWS}) if available else None
    return status
