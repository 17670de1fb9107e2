"""Webhooks: the transactional outbox's dispatcher (signed, retried, logged delivery) and its operator API.

The dashboard and the CLI use the functions of `tripsage.webhooks.outbox` (dead letters, replay).
"""
