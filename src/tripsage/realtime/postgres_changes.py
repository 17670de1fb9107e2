"""postgres_changes: the publication's catalog, the change reader, and the payload Supabase sends.

Changes are captured by the trigger in supabase/schemas/09_realtime_capture.sql into tripsage_realtime.changes. The
reader takes, on every wake-up (NOTIFY) or poll, the committed rows of transactions at or above its horizon (the
oldest transaction that was still running at its previous read), skipping ids it already delivered: a transaction
that commits late is still delivered, and one that committed before the horizon was seen by an earlier read.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tripsage import queries_for
from tripsage.db.connector import Database

log = logging.getLogger(__name__)
Q = queries_for("tripsage.realtime")

READ_LIMIT = 500  # changes per read (small pages interleave with sending)
MAX_RECORD_BYTES = 1024 * 1024  # a larger payload is sent as Supabase does: Error 413 and the small fields only
SMALL_FIELD_BYTES = 64
EVENTS = ("*", "INSERT", "UPDATE", "DELETE")
# Rows of tripsage_realtime.changes that are not changes of a published table: relayed messages and broadcasts from
# the database (relay.py).
INTERNAL_SCHEMAS = frozenset({"tripsage_realtime", "realtime"})


@dataclass
class Table:
    schema: str
    name: str
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, pg type name) in attnum order
    primary_key: list[str] = field(default_factory=list)
    replica_identity_full: bool = False
    rls_enabled: bool = True

    @property
    def column_types(self) -> dict[str, str]:
        return dict(self.columns)


class Catalog:
    """The tables of publication supabase_realtime, and which of their columns each role may SELECT."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], Table] = {}
        self._selectable: dict[str, dict[tuple[str, str], frozenset[str]]] = {}
        self._bypass: dict[str, bool] = {}

    async def load(self, db: Database) -> None:
        tables: dict[tuple[str, str], Table] = {}
        for row in await db.fetch_all(Q["publication_columns"]):
            key = (row["schema_name"], row["table_name"])
            table = tables.get(key)
            if table is None:
                table = tables[key] = Table(
                    key[0], key[1], replica_identity_full=row["replica_identity_full"], rls_enabled=row["rls_enabled"]
                )
            table.columns.append((row["column_name"], row["type_name"]))
            if row["is_primary_key"]:
                table.primary_key.append(row["column_name"])
        self.tables = tables
        for role in list(self._selectable):
            await self._load_role(db, role)

    async def _load_role(self, db: Database, role: str) -> None:
        columns: dict[tuple[str, str], set[str]] = {}
        for row in await db.fetch_all(Q["selectable_columns"], {"role": role}):
            columns.setdefault((row["schema_name"], row["table_name"]), set()).add(row["column_name"])
        self._selectable[role] = {key: frozenset(names) for key, names in columns.items()}
        self._bypass[role] = bool(await db.fetch_value(Q["role_bypasses_rls"], {"role": role}))

    async def ensure_role(self, db: Database, role: str) -> None:
        if role not in self._selectable:
            await self._load_role(db, role)

    def selectable(self, role: str, key: tuple[str, str]) -> frozenset[str]:
        return self._selectable.get(role, {}).get(key, frozenset())

    def bypasses_rls(self, role: str) -> bool:
        return self._bypass.get(role, False)


def commit_timestamp(value: dt.datetime) -> str:
    """Supabase's format: UTC, milliseconds, Z."""
    utc = value.astimezone(dt.UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        f".{utc.microsecond // 1000:03d}Z"
    )


@dataclass
class Change:
    id: int
    xid: int
    captured_at: dt.datetime
    schema: str
    table: str
    type: str
    record: dict[str, Any] | None
    old_record: dict[str, Any] | None
    audience: frozenset[str] | None
    # For a table without an audience function: the identities that passed the per-subscriber RLS check.
    rls_allowed: set[tuple[str, str]] | None = None
    _payloads: dict[frozenset[str], str] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Change:
        audience = row["audience"]
        # Fractional numbers of a published row are parsed exactly (filters); relayed messages keep JSON floats.
        parse_float: Any = decimal.Decimal if row["schema_name"] not in INTERNAL_SCHEMAS else float
        return cls(
            id=row["id"],
            xid=int(row["xid"]),
            captured_at=row["captured_at"],
            schema=row["schema_name"],
            table=row["table_name"],
            type=row["type"],
            record=json.loads(row["record"], parse_float=parse_float) if row["record"] is not None else None,
            old_record=(
                json.loads(row["old_record"], parse_float=parse_float) if row["old_record"] is not None else None
            ),
            # '{uuid,uuid,...}' as text: splitting it is much cheaper than decoding a uuid[] of a large trip
            audience=frozenset(audience[1:-1].split(",")) - {""} if audience is not None else None,
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.table)

    @property
    def filter_row(self) -> dict[str, Any] | None:
        """The row filters are applied to: the new row, or the old one for a DELETE."""
        return self.old_record if self.type == "DELETE" else self.record

    def data_json(self, table: Table, visible: frozenset[str]) -> str:
        """The `data` of the postgres_changes payload for a subscriber who may SELECT `visible`, as JSON text
        (computed once per distinct column set)."""
        cached = self._payloads.get(visible)
        if cached is not None:
            return cached
        columns = [{"name": name, "type": type_name} for name, type_name in table.columns if name in visible]
        data: dict[str, Any] = {
            "columns": columns,
            "commit_timestamp": commit_timestamp(self.captured_at),
            "errors": None,
            "schema": self.schema,
            "table": self.table,
            "type": self.type,
        }
        if self.record is not None and self.type != "DELETE":
            data["record"] = {name: self.record.get(name) for name, _ in table.columns if name in visible}
        if self.old_record is not None and self.type != "INSERT":
            full = table.replica_identity_full and not (self.type == "DELETE" and table.rls_enabled)
            keep = [name for name, _ in table.columns if name in visible and (full or name in table.primary_key)]
            data["old_record"] = {name: self.old_record.get(name) for name in keep}
        text = json.dumps(data, separators=(",", ":"), default=_json_default)
        if len(text) > MAX_RECORD_BYTES:
            # As Supabase: the error, and only the fields of at most 64 bytes (the key, typically).
            for key in ("record", "old_record"):
                if key in data:
                    data[key] = {
                        name: value
                        for name, value in data[key].items()
                        if len(json.dumps(value, default=_json_default)) <= SMALL_FIELD_BYTES
                    }
            data["errors"] = ["Error 413: Payload Too Large"]
            text = json.dumps(data, separators=(",", ":"), default=_json_default)
        self._payloads[visible] = text
        return text


def _json_default(value: Any) -> Any:
    # Fractional numbers are parsed as Decimal (exact filters); they are sent as JSON numbers.
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


class ChangeReader:
    """Reads committed changes in commit-safe order (see the module docstring)."""

    def __init__(self, db: Database, *, limit: int = READ_LIMIT) -> None:
        self.db = db
        self.limit = limit
        self.horizon: int | None = None
        self._delivered: dict[int, int] = {}  # change id -> xid, for changes at or above the horizon

    async def start(self) -> None:
        """Begin at the present: changes already committed are not delivered."""
        self.horizon = int(await self.db.fetch_value(Q["changes_horizon"]))
        self._delivered = {}
        await self.read()

    async def read(self) -> list[Change]:
        assert self.horizon is not None, "start() first"
        fresh: list[Change] = []
        next_horizon: int | None = None
        after = 0
        while True:
            params = {"horizon": str(self.horizon), "after": after, "limit": self.limit}
            rows = await self.db.fetch_all(Q["read_changes"], params)
            if next_horizon is None:
                # The first page's snapshot: every transaction below its xmin had finished, so its rows were
                # visible to this read or an earlier one.
                next_horizon = int(rows[0]["horizon"])
            rows = [row for row in rows if row["id"] is not None]
            for row in rows:
                if row["id"] not in self._delivered:
                    change = Change.from_row(row)
                    self._delivered[change.id] = change.xid
                    fresh.append(change)
            if len(rows) < self.limit:
                break
            after = rows[-1]["id"]
        if next_horizon > self.horizon:
            self.horizon = next_horizon
            self._delivered = {cid: xid for cid, xid in self._delivered.items() if xid >= next_horizon}
        return fresh
