"""The pg_net emulation's worker: sends what `net.http_get/post/delete` queued, stores the responses."""
