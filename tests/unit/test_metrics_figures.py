"""The per-interval figures a replica writes to system_metrics: quantiles from Prometheus histogram buckets."""

from __future__ import annotations

import pytest

from tripsage.metrics import Metrics, bucket_quantile


def test_bucket_quantile_interpolates_like_prometheus() -> None:
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.2], 10 in (0.2, 0.4]
    cumulative = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, float("inf"): 100.0}
    assert bucket_quantile(cumulative, 0.5) == pytest.approx(0.1)
    assert bucket_quantile(cumulative, 0.7) == pytest.approx(0.15)
    assert bucket_quantile(cumulative, 0.95) == pytest.approx(0.3)


def test_bucket_quantile_without_observations_is_none() -> None:
    assert bucket_quantile({0.1: 0.0, float("inf"): 0.0}, 0.95) is None
    assert bucket_quantile({}, 0.5) is None


def test_above_the_last_bound_counts_as_the_last_bound() -> None:
    assert bucket_quantile({1.0: 0.0, float("inf"): 5.0}, 0.95) == 1.0


def test_interval_figures_cover_only_the_interval() -> None:
    metrics = Metrics()
    metrics.realtime_latency.observe(0.004)
    metrics.realtime_messages.labels(kind="postgres_changes").inc(3)
    first = metrics.interval_figures()
    assert first["realtime_messages"] == 3
    assert 0 < first["realtime_latency_p95_ms"] <= 5.0
    assert "function_latency_p95_ms" not in first  # no calls: no figure rather than a made-up zero
    for _ in range(20):
        metrics.realtime_latency.observe(0.3)
    second = metrics.interval_figures()
    assert second["realtime_messages"] == 0
    assert 250.0 <= second["realtime_latency_p95_ms"] <= 500.0  # the earlier fast sample is not in this interval
    assert "realtime_latency_p95_ms" not in metrics.interval_figures()
