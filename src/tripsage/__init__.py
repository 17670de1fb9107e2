"""TripSage Automation: the database automation plane for TripSage on PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tripsage.db.queries import Query

__version__ = "0.1.0"


def queries_for(package: str, filename: str = "queries.sql") -> dict[str, Query]:
    """The named queries of a TripSage package (see tripsage.db.queries)."""
    from tripsage.db.queries import load

    return load(package, filename)
