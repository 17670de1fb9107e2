"""The zone pg_cron's schedules are read in, for the scheduler (its ticks) and for what shows next runs (the
dashboard, `tripsage status`, `tripsage jobs list`): one answer everywhere."""

from __future__ import annotations

import logging

from tripsage import queries_for
from tripsage.config import Settings, check_timezone
from tripsage.db.connector import Database
from tripsage.exceptions import ConfigurationError, InsufficientPrivilege

log = logging.getLogger(__name__)
Q = queries_for("tripsage.db")


async def schedule_timezone(settings: Settings, db: Database) -> str:
    """The zone of the schedules: TRIPSAGE_CRON_TIMEZONE when set, else pg_cron's cron.timezone when the server has
    one, else UTC. An unknown zone is one line (at start, instead of a leader task dying at its first tick)."""
    if "cron_timezone" in settings.model_fields_set:
        return settings.cron_timezone
    try:
        server = await db.fetch_value(Q["cron_timezone_setting"])
    except InsufficientPrivilege:
        # A preloaded pg_cron (1.5+) shows cron.timezone only to superusers and pg_read_all_settings.
        log.warning(
            "cannot read the server's cron.timezone (needs pg_read_all_settings); using %s; set TRIPSAGE_CRON_TIMEZONE",
            settings.cron_timezone,
        )
        return settings.cron_timezone
    if server is None:
        return settings.cron_timezone
    try:
        return check_timezone(str(server), "cron.timezone (the database server's setting)")
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
