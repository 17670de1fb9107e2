"""Constraints that earn their place: btree_gist's exclusion of overlapping stays, and statuses the jobs need."""

from __future__ import annotations

import psycopg
import pytest

SETUP = (
    "INSERT INTO auth.users (id) VALUES ('00000000-0000-4000-8000-000000000001');"
    "INSERT INTO trips (user_id, name, destination, start_date, end_date) VALUES "
    "('00000000-0000-4000-8000-000000000001', 'T', 'D', '2027-01-01', '2027-01-10');"
)
STAY = (
    "INSERT INTO accommodations (trip_id, name, check_in_date, check_out_date, price_per_night, total_price, "
    "booking_status) SELECT id, %s, %s, %s, 1, 1, %s FROM trips"
)


def test_overlapping_stays_of_one_trip_are_rejected(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(SETUP)
        conn.execute(STAY, ["A", "2027-01-01", "2027-01-04", "booked"])
        conn.execute(STAY, ["B", "2027-01-04", "2027-01-06", "booked"])  # checkout day = next check-in: fine
        with pytest.raises(psycopg.errors.ExclusionViolation, match="accommodations_no_overlapping_stays"):
            conn.execute(STAY, ["C", "2027-01-03", "2027-01-05", "reserved"])
        conn.execute(STAY, ["D", "2027-01-03", "2027-01-05", "cancelled"])  # cancelled stays do not count


def test_archived_status_is_allowed_and_consistent(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(SETUP)
        conn.execute("UPDATE trips SET status = 'archived', archived_at = now(), status_before_archive = status")
        with pytest.raises(psycopg.errors.CheckViolation, match="trips_archive_consistent"):
            conn.execute("UPDATE trips SET archived_at = NULL")
