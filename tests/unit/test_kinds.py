"""The one list of data kinds agrees with the wire, the decoder, the row builders, the schema and the reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pytest
from google.protobuf.descriptor import FieldDescriptor

from runstream.v1 import ingest_pb2 as pb
from runstream_service.store import queries
from runstream_service.store.base import OpenRun
from runstream_service.store.file import FileStore
from runstream_service.store.kinds import BATCH_EXTRAS, KINDS, PENDING_EXTRAS, PENDING_FIELDS, POINT_KEY_COLUMNS, Kind
from runstream_service.store.schema import create_schema
from runstream_service.store.tables import BUILDERS
from runstream_service.validate import DECODERS, DecodedBatch, InvalidBatch, decode_batch


def _schema() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    create_schema(con)
    return con


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[str, ...]:
    return tuple(row[0] for row in con.execute(f"DESCRIBE {relation}").fetchall())


def test_every_message_field_of_a_batch_is_a_kind() -> None:
    messages = {
        f.name for f in pb.Batch.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_MESSAGE and not f.is_repeated
    }
    assert messages == {kind.field for kind in KINDS} | PENDING_FIELDS
    assert not PENDING_FIELDS & {kind.field for kind in KINDS}


def test_every_other_field_of_a_batch_is_its_header_or_an_extra() -> None:
    header = {"run_id", "rank", "writer_id", "seq", "tags", "source_offset"}
    kinds = {kind.field for kind in KINDS} | PENDING_FIELDS
    others = {f.name for f in pb.Batch.DESCRIPTOR.fields} - kinds
    assert others == header | set(BATCH_EXTRAS)


def test_a_batch_with_a_pending_kind_or_extra_is_refused_naming_it() -> None:
    for field in sorted(PENDING_FIELDS):
        batch = pb.Batch(run_id="r", writer_id="w", seq=1, tags=["t"])
        getattr(batch, field).tag_index = b"\x00\x00\x00\x00"
        with pytest.raises(InvalidBatch, match=f"^{field}: this server does not store this kind yet"):
            decode_batch(batch)
    for extra in sorted(PENDING_EXTRAS):
        batch = pb.Batch(run_id="r", writer_id="w", seq=1, tags=["t"])
        getattr(batch, extra).add()
        with pytest.raises(InvalidBatch, match=f"^{extra}: this server does not store this yet"):
            decode_batch(batch)


@pytest.mark.parametrize("kind", KINDS, ids=[kind.name for kind in KINDS])
def test_an_empty_message_of_each_kind_is_no_points(kind: Kind, tmp_path: Path) -> None:
    """A kind's message present but empty decodes, builds no rows and commits nothing but the seq."""
    batch = pb.Batch(run_id="r", writer_id="w", seq=1, tags=["t"])
    getattr(batch, kind.field).SetInParent()
    decoded = decode_batch(batch)
    assert decoded.points == 0
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    store = FileStore(con)
    store.open_run(OpenRun("r", "p", "r", "{}", 0, 1, "h", 0.0))
    store.append([decoded], {"w": 1})
    assert con.execute(f"SELECT count(*) FROM {kind.view}").fetchall() == [(0,)]
    assert store.committed_seq("w") == 1


def test_every_kind_is_decoded_and_built() -> None:
    decoded = {f.name for f in dataclasses.fields(DecodedBatch)}
    assert {kind.field for kind in KINDS} <= decoded
    assert set(BUILDERS) == {kind.name for kind in KINDS}
    assert set(DECODERS) == {kind.name for kind in KINDS}


def test_each_kind_has_its_point_table_and_view_in_the_schema() -> None:
    con = _schema()
    for kind in KINDS:
        assert _columns(con, kind.table) == kind.columns, kind.name
        assert _columns(con, kind.view) == ("run_id", "tag", *POINT_KEY_COLUMNS[1:], *kind.values), kind.name


def test_names_are_unique() -> None:
    for attribute in ("name", "field", "table", "view"):
        names = [getattr(kind, attribute) for kind in KINDS]
        assert len(set(names)) == len(names), attribute


def test_tag_lists_have_one_entry_per_kind() -> None:
    con = _schema()
    con.execute("INSERT INTO run_meta VALUES ('r', 'p', 'r', '{}', 'running', 0, NULL, 'h', 1)")
    values = ", ".join(f"({i}, 'r', '{kind.name}', 'tag/{kind.name}')" for i, kind in enumerate(KINDS))
    con.execute(f"INSERT INTO series VALUES {values}")
    assert queries.list_tags(con, ["r"]) == {kind.view: [f"tag/{kind.name}"] for kind in KINDS}
