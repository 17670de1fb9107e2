"""Prometheus metrics of one runtime process.

Counters and histograms of work done in this process (deliveries, realtime messages, function calls) are updated by
the components through `runtime.metrics`; figures that belong to the database (outbox depth, dead letters, job runs,
scheduler lag) are read from PostgreSQL at scrape time by the monitoring capability (`tripsage.monitoring.metrics`),
so every replica reports the same truth for them. This module sits below the capabilities: each may count here
without importing another.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
        self.function_emails = Counter(
            "tripsage_function_emails", "Emails sent by the functions by outcome", ["outcome"], registry=r
        )
        self.scheduler_ticks = Counter(
            "tripsage_scheduler_ticks", "Emulated pg_cron ticks claimed here by outcome", ["outcome"], registry=r
        )
        self.scheduler_runs = Counter(
            "tripsage_scheduler_runs", "Emulated pg_cron runs finished here by status", ["status"], registry=r
        )
        self.scheduler_delay = Histogram(
            "tripsage_scheduler_tick_delay_seconds", "Tick-to-claim delay", buckets=LATENCY_BUCKETS, registry=r
        )
        self._previous: dict[str, float] = {}
        self._previous_buckets: dict[str, dict[float, float]] = {}
        self.function_latency = Histogram(
            "tripsage_function_latency_seconds", "Function latency", ["function"], buckets=LATENCY_BUCKETS, registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def interval_figures(self) -> dict[str, float]:
        """This process's figures since the previous call: realtime latency p95 (ms) and messages, function calls
        and their latency p95 (ms), realtime connections now. A figure with no observations is left out."""
        figures: dict[str, float] = {
            "realtime_connections": _gauge_value(self.realtime_connections),
        }
        messages = _counter_total(self.realtime_messages)
        figures["realtime_messages"] = messages - self._previous.get("realtime_messages", 0.0)
        self._previous["realtime_messages"] = messages
        calls = _counter_total(self.function_calls)
        figures["function_calls"] = calls - self._previous.get("function_calls", 0.0)
        self._previous["function_calls"] = calls
        for name, histogram in (
            ("realtime_latency_p95_ms", self.realtime_latency),
            ("function_latency_p95_ms", self.function_latency),
        ):
            buckets = _cumulative_buckets(histogram)
            before = self._previous_buckets.get(name, {})
            delta = {bound: count - before.get(bound, 0.0) for bound, count in buckets.items()}
            self._previous_buckets[name] = buckets
            p95 = bucket_quantile(delta, 0.95)
            if p95 is not None:
                figures[name] = round(p95 * 1000, 1)
        return figures


def _samples(metric: Any, suffix: str) -> list[Any]:
    return [s for family in metric.collect() for s in family.samples if s.name.endswith(suffix)]


def _gauge_value(gauge: Gauge) -> float:
    return float(sum(s.value for family in gauge.collect() for s in family.samples))


def _counter_total(counter: Counter) -> float:
    return float(sum(s.value for s in _samples(counter, "_total")))


def _cumulative_buckets(histogram: Histogram) -> dict[float, float]:
    """Upper bound -> cumulative count, summed over every label combination."""
    found: dict[float, float] = {}
    for sample in _samples(histogram, "_bucket"):
        bound = float(sample.labels["le"])
        found[bound] = found.get(bound, 0.0) + float(sample.value)
    return found


def bucket_quantile(cumulative: dict[float, float], q: float) -> float | None:
    """The q-quantile of a histogram's cumulative bucket counts, interpolated within the bucket as Prometheus's
    histogram_quantile does; None without observations. Observations above the last finite bound count as it."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
