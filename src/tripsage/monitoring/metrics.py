"""Prometheus metrics of one runtime process.

Counters and histograms of work done in this process (deliveries, realtime messages, function calls) are updated by
the components through `runtime.metrics`; figures that belong to the database (outbox depth, dead letters, job runs,
scheduler lag) are read from PostgreSQL at scrape time, so every replica reports the same truth for them.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tripsage import queries_for
from tripsage.db.connector import Database
from tripsage.exceptions import DatabaseError

log = logging.getLogger(__name__)
Q = queries_for("tripsage.monitoring")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # seconds


class Metrics:
    """One registry per runtime (not the process-global default), so tests and replicas stay separate."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.deliveries = Counter(
            "tripsage_webhook_deliveries", "Webhook delivery attempts by outcome", ["outcome"], registry=r
        )
        self.delivery_latency = Histogram(
            "tripsage_webhook_delivery_latency_seconds",
            "Commit-to-receiver latency of successful deliveries",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Gauge("tripsage_webhook_outbox_depth", "Deliveries pending or awaiting retry", registry=r)
        self.dead_letters = Gauge(
            "tripsage_webhook_dead_letters", "Deliveries that exhausted their retries", registry=r
        )
        self.job_runs = Gauge(
            "tripsage_job_runs_24h", "Scheduled job runs in the last 24 hours by status", ["status"], registry=r
        )
        self.scheduler_lag = Gauge(
            "tripsage_scheduler_lag_seconds",
            "Median delay between a minute tick and its run's start over the last hour",
            registry=r,
        )
        self.search_cache_lookups = Gauge(
            "tripsage_search_cache_lookups_today",
            "search_cache_lookup calls today by cache and result",
            ["cache", "result"],
            registry=r,
        )
        self.realtime_connections = Gauge("tripsage_realtime_connections", "Open realtime websockets", registry=r)
        self.realtime_channels = Gauge("tripsage_realtime_channels", "Joined realtime channels", registry=r)
        self.realtime_messages = Counter(
            "tripsage_realtime_messages", "Realtime messages sent to clients by kind", ["kind"], registry=r
        )
        self.realtime_latency = Histogram(
            "tripsage_realtime_latency_seconds", "Commit-to-client latency", buckets=LATENCY_BUCKETS, registry=r
        )
        self.function_calls = Counter(
            "tripsage_function_calls", "Function invocations by function and status", ["function", "status"], registry=r
        )
        self.function_latency = Histogram(
            "tripsage_function_latency_seconds", "Function latency", ["function"], buckets=LATENCY_BUCKETS, registry=r
        )

    async def refresh(self, db: Database) -> None:
        """Read the database-owned figures; a failure leaves the previous values and is logged."""
        try:
            if (await db.fetch_one(Q["cron_available"]) or {}).get("available"):
                self.job_runs.clear()
                for row in await db.fetch_all(Q["job_runs_by_status"]):
                    self.job_runs.labels(status=row["status"] or "unknown").set(row["runs"])
                self.scheduler_lag.set(float(await db.fetch_value(Q["scheduler_lag"]) or 0))
            if (await db.fetch_one(Q["outbox_depth_available"]) or {}).get("available"):
                self.outbox_depth.set(float(await db.fetch_value(Q["outbox_depth"]) or 0))
            for row in await db.fetch_all(Q["search_cache_today"]):
                self.search_cache_lookups.labels(cache=row["cache"], result="hit").set(row["hits"])
                self.search_cache_lookups.labels(cache=row["cache"], result="miss").set(row["misses"])
            dead = await dead_letter_count(db)
            if dead is not None:
                self.dead_letters.set(dead)
        except DatabaseError as error:
            log.warning("metrics refresh failed: %s", error)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def dead_letter_count(db: Database) -> int | None:
    """Dead deliveries, when the webhooks schema is installed."""
    from tripsage.monitoring import webhooks_view

    return await webhooks_view.dead_letter_count(db)
