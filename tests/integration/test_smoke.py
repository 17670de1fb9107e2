from tripsage import queries_for
from tripsage.db.connector import Database

Q = queries_for("tripsage.db")


async def test_template_is_deployed(db: Database) -> None:
    rows = await db.fetch_all(Q["verify_extensions"])
    statuses = {row["name"]: row["status"] for row in rows}
    assert statuses["vector"] == "native"
