"""Realtime: a Supabase-Realtime-compatible websocket gateway (postgres_changes authorized by RLS audiences,
broadcast, presence). See docs/realtime.md."""
