"""The scheduler: pg_cron natively, or its SQL API emulated and executed by the runtime."""
