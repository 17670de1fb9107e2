"""The pg_net emulation's worker: sends what `net.http_get/post/delete` queued, stores the responses."""

# The worker's LISTEN connection carries this application_name: it is how the database sees the worker
# (net._worker_is_up() in supabase/schemas/12_net.sql, which serves net.check_worker_is_up() and
# net.wait_until_running(), holds the same text). Tests and benchmarks that count the worker's session read it here.
WORKER_APPLICATION_NAME = "pg_net worker (tripsage)"
