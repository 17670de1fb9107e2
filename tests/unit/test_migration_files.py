from pathlib import Path

import pytest

from tripsage.db.migrations import discover
from tripsage.exceptions import MigrationError


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


def test_discover_orders_by_version(tmp_path: Path) -> None:
    write(tmp_path, "20260102000000_second.sql", "SELECT 2;")
    write(tmp_path, "20260101000000_first.sql", "SELECT 1;")
    assert [m.name for m in discover(tmp_path)] == ["first", "second"]


def test_misnamed_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "001_bad.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="14-digit timestamp"):
        discover(tmp_path)


def test_whole_file_is_one_chunk_even_with_dollar_quotes(tmp_path: Path) -> None:
    text = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$;\nSELECT f();\n"
    write(tmp_path, "20260101000000_fn.sql", text)
    (migration,) = discover(tmp_path)
    assert migration.transactional
    assert migration.chunks() == [(1, text)]


def test_no_transaction_marker_splits_on_break_lines_only(tmp_path: Path) -> None:
    text = "-- tripsage:no-transaction\nVACUUM a; VACUUM b;\n-- tripsage:break\nCREATE INDEX CONCURRENTLY i ON t (x);\n"
    write(tmp_path, "20260101000000_vac.sql", text)
    (migration,) = discover(tmp_path)
    assert not migration.transactional
    assert migration.chunks() == [
        (1, "-- tripsage:no-transaction\nVACUUM a; VACUUM b;\n"),
        (4, "CREATE INDEX CONCURRENTLY i ON t (x);\n"),
    ]


def test_checksum_tracks_content(tmp_path: Path) -> None:
    write(tmp_path, "20260101000000_a.sql", "SELECT 1;")
    before = discover(tmp_path)[0].checksum
    write(tmp_path, "20260101000000_a.sql", "SELECT 2;")
    assert discover(tmp_path)[0].checksum != before


def test_amends_lines_name_the_earlier_checksums(tmp_path: Path) -> None:
    write(
        tmp_path,
        "20260101000000_a.sql",
        "-- tripsage:amends abc123 (why)\n-- tripsage:amends def456\n-- tripsage:amends\nSELECT 1;\n",
    )
    assert discover(tmp_path)[0].amends == frozenset({"abc123", "def456"})
