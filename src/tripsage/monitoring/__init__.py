"""Monitoring: Prometheus metrics, the dashboard, `tripsage status`, and the seed's success metrics."""
