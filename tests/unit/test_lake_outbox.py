"""A lake server's outbox (store/lake_store.py): points stored as numbers, read back in the lake's shape,
and an outbox of the first lake build (strings on every row) converted with its unmoved rows."""

from __future__ import annotations

import duckdb

from runstream_service.store.lake_store import create_outbox

ROWS = [
    ("w1", 1, "r1", "loss", 0, 0, 1.5, 0.25),
    ("w1", 1, "r1", "acc", 0, 0, 1.5, 0.5),
    ("w2", 7, "r2", "loss", 3, 1, 2.5, 1.0),
]
SHAPE = "SELECT writer_id, seq, run_id, tag, step, rank, wall_time, value FROM lake_outbox_scalars ORDER BY ALL"


def test_an_outbox_of_the_first_lake_build_is_converted_with_its_rows() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE lake_outbox_batches (writer_id VARCHAR NOT NULL, seq UBIGINT NOT NULL, points BIGINT)")
    con.execute(
        "CREATE TABLE lake_outbox_scalars (writer_id VARCHAR NOT NULL, seq UBIGINT NOT NULL, run_id VARCHAR, "
        "tag VARCHAR, step BIGINT, rank INTEGER, wall_time DOUBLE, value DOUBLE)"
    )
    con.execute("INSERT INTO lake_outbox_batches VALUES ('w1', 1, 2), ('w2', 7, 1)")
    con.executemany("INSERT INTO lake_outbox_scalars VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ROWS)
    create_outbox(con)
    assert con.execute(SHAPE).fetchall() == sorted(ROWS)
    kinds = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'lake_outbox_scalars'")
    assert kinds.fetchall() == [("VIEW",)]
    create_outbox(con)  # again (every start): nothing changes
    assert con.execute(SHAPE).fetchall() == sorted(ROWS)
