import pytest

from tripsage import queries_for
from tripsage.db.queries import parse


def test_parse_splits_named_blocks() -> None:
    text = "-- name: first\n-- what it does\nSELECT 1;\n\n-- name: second\nSELECT %(x)s;\n"
    queries = parse(text)
    assert list(queries) == ["first", "second"]
    assert queries["first"].text == "-- what it does\nSELECT 1;"
    assert queries["second"].text == "SELECT %(x)s;"


def test_duplicate_and_empty_queries_are_errors() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    with pytest.raises(ValueError, match="is empty"):
        parse("-- name: a\n\n-- name: b\nSELECT 2;\n")


def test_package_queries_load() -> None:
    queries = queries_for("tripsage.db")
    assert "record_migration" in queries
    assert "%(checksum)s" in queries["record_migration"].text
