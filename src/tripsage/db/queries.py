"""Named SQL queries, loaded from .sql files.

A query file holds blocks headed by `-- name: <query_name>`, then an optional one-line `-- <description>`, then the
SQL, with psycopg named parameters (`%(name)s`). Files are parsed once; Python refers to queries by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from psycopg import sql

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Query:
    name: str
    text: str

    @property
    def sql(self) -> sql.SQL:
        # The text comes from a file shipped with the package, never from input: a literal in all but type.
        return sql.SQL(self.text)


def parse(text: str, source: str = "<string>") -> dict[str, Query]:
    """Split a query file into its named queries."""
    queries: dict[str, Query] = {}
    matches = list(_HEADER.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        name = match.group(1)
        if name in queries:
            raise ValueError(f"{source}: query {name} is defined twice")
        if not body:
            raise ValueError(f"{source}: query {name} is empty")
        queries[name] = Query(name, body)
    return queries


@cache
def load(package: str, filename: str = "queries.sql") -> dict[str, Query]:
    """The queries of `package`'s `filename` (for example `load("tripsage.db")["fetch_migrations"]`)."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    return parse(text, f"{package}/{filename}")
