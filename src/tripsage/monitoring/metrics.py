"""The database-owned figures of /metrics: read from PostgreSQL at scrape time, so every replica reports the same
truth for them (the process's own counters live in `tripsage.metrics`)."""

from __future__ import annotations

import logging

from tripsage import queries_for
from tripsage.db.connector import Database
from tripsage.exceptions import DatabaseError
from tripsage.metrics import Metrics
from tripsage.monitoring import webhooks_view

log = logging.getLogger(__name__)
Q = queries_for("tripsage.monitoring")


async def refresh(metrics: Metrics, db: Database) -> None:
    """Read the database-owned figures; a failure leaves the previous values and is logged."""
    try:
        if (await db.fetch_one(Q["cron_available"]) or {}).get("available"):
            metrics.job_runs.clear()
            for row in await db.fetch_all(Q["job_runs_by_status"]):
                metrics.job_runs.labels(status=row["status"] or "unknown").set(row["runs"])
            metrics.scheduler_lag.set(float(await db.fetch_value(Q["scheduler_lag"]) or 0))
        if (await db.fetch_one(Q["outbox_depth_available"]) or {}).get("available"):  # the webhooks schema
            metrics.outbox_depth.set(float(await db.fetch_value(Q["outbox_depth"]) or 0))
            metrics.dead_letters.set(await webhooks_view.count_dead(db))
        for row in await db.fetch_all(Q["search_cache_today"]):
            metrics.search_cache_lookups.labels(cache=row["cache"], result="hit").set(row["hits"])
            metrics.search_cache_lookups.labels(cache=row["cache"], result="miss").set(row["misses"])
    except DatabaseError as error:
        log.warning("metrics refresh failed: %s", error)
