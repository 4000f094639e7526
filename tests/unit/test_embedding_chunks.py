"""Embeddings without a server: checks at the call, the wire round trip through the decoder, the
decoder's refusals, the reads over a real DuckDB file, and a version-3 file gaining the table."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

from runstream import _inputs
from runstream._encode import EmbeddingJob, encode_batch
from runstream.v1 import ingest_pb2 as pb
from runstream_service.store.embeddings import list_embeddings, load_embedding, load_images
from runstream_service.store.file import FileStore
from runstream_service.store.schema import create_schema
from runstream_service.validate import InvalidBatch, decode_batch


def _job(
    matrix: np.ndarray, chunk_rows: int, metadata: dict[str, list[object]] | None = None, images: object = None
) -> EmbeddingJob:
    columns, values = _inputs.check_embedding_metadata("e", metadata, len(matrix)) if metadata else ((), [])
    pictures = _inputs.check_embedding_images("e", images, len(matrix)) if images is not None else None
    return EmbeddingJob("e", 4, 1.5, matrix.astype(np.float32), columns, values, pictures, chunk_rows, True)


def _batches(job: EmbeddingJob) -> list[pb.Batch]:
    out = []
    for seq, first in enumerate(range(0, job.rows, job.chunk_rows), start=1):
        rows = min(job.chunk_rows, job.rows - first)
        out.append(encode_batch("r", 0, "w", seq, [], embeddings=[(job, first, rows)]).message)
    return out


@pytest.mark.parametrize(
    ("matrix", "error"),
    [
        (np.zeros(5), "2-D matrix"),
        (np.zeros((0, 3)), "1 to 10000000"),
        (np.zeros((3, 20_000)), "1 to 16384"),
        (np.array([["a"]]), "real numbers"),
        (np.zeros((2, 2), complex), "real numbers"),
    ],
)
def test_a_bad_matrix_is_refused_at_the_call(matrix: np.ndarray, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        _inputs.check_embedding_matrix("e", matrix)


def test_bad_metadata_and_images_are_refused_at_the_call() -> None:
    with pytest.raises(ValueError, match="has 2 values for 3 points"):
        _inputs.check_embedding_metadata("e", [1, 2], 3)
    with pytest.raises(ValueError, match="limit is 1000"):
        _inputs.check_embedding_metadata("e", ["x" * 1001], 1)
    with pytest.raises(TypeError, match="sequence of one value per point"):
        _inputs.check_embedding_metadata("e", "abc", 3)
    with pytest.raises(ValueError, match="3 points but 2 images"):
        _inputs.check_embedding_images("e", np.zeros((2, 1, 8, 8)), 3)
    with pytest.raises(ValueError, match="at most 512 x 512"):
        _inputs.check_embedding_images("e", np.zeros((1, 3, 600, 600)), 1)
    with pytest.raises(ValueError, match="metadata row 1 has 1 values"):
        _inputs.metadata_rows(["a", "b"], [[1, 2], [3]])


def test_metadata_values_become_json_ready() -> None:
    columns, values = _inputs.check_embedding_metadata("e", {"x": [1, float("nan"), "s", None, (1, 2)]}, 5)
    assert columns == ("x",) and values == [[1, "nan", "s", None, "(1, 2)"]]
    assert _inputs.check_embedding_metadata("e", np.array([3, 4]), 2) == (("label",), [[3, 4]])


def test_chunks_round_trip_through_the_decoder() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((10, 3))
    images = rng.integers(0, 256, (10, 1, 4, 4), dtype=np.uint8)
    job = _job(matrix, 4, {"label": list(range(10)), "name": [f"p{i}" for i in range(10)]}, images)
    decoded = [decode_batch(b).embeddings for b in _batches(job)]
    assert [len(d.idx) for d in decoded if d is not None] == [4, 4, 2]
    first = decoded[1]
    assert first is not None
    assert first.idx.tolist() == [4, 5, 6, 7] and set(first.total_rows.tolist()) == {10}
    np.testing.assert_array_equal(first.vectors.reshape(4, 3), matrix[4:8].astype(np.float32))
    assert first.metadata[0] == '{"label":4,"name":"p4"}'
    image = first.image[0]
    assert image is not None
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image))), images[4, 0])


def _chunk_message(**changes: object) -> pb.Batch:
    (message,) = _batches(_job(np.zeros((2, 3)), 2, {"label": [1, 2]}))
    for name, value in changes.items():
        field = message.embeddings
        if isinstance(value, list):
            del getattr(field, name)[:]
            getattr(field, name).extend(value)
        else:
            setattr(field, name, value)
    return message


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"rows": np.array([0], "<u4").tobytes()}, "embeddings.rows: every chunk"),
        ({"dims": np.array([0], "<u4").tobytes()}, "embeddings.dims: an embedding needs 1 to"),
        ({"first_row": np.array([1], "<u4").tobytes()}, "embeddings.first_row: chunk 0 holds rows 1..2"),
        ({"total_rows": np.array([0], "<u4").tobytes()}, "embeddings.total_rows"),
        ({"vectors": b"\x00" * 21}, "embeddings.vectors: 21 bytes"),
        ({"vectors": b"\x00" * 16}, "embeddings.vectors: has 4 values"),
        ({"metadata": ['{"a":1}']}, "embeddings.metadata: has 1 entries"),
        ({"metadata": ['{"a":1}', "[1]"]}, r"embeddings.metadata\[1\]: must be a JSON object"),
        ({"metadata": ['{"a":NaN}', "{}"]}, r"embeddings.metadata\[0\]: is not JSON"),
        ({"image": [b"", b"GIF89a"]}, r"embeddings.image\[1\]: is not a PNG"),
        ({"image": [b"", b"\x89PNG\r\n\x1a\nbroken"]}, r"embeddings.image\[1\]: does not decode"),
    ],
)
def test_the_decoder_refuses_bad_chunks_naming_the_field(changes: dict[str, object], error: str) -> None:
    with pytest.raises(InvalidBatch, match=error):
        decode_batch(_chunk_message(**changes))


def _store(path: Path) -> tuple[duckdb.DuckDBPyConnection, FileStore]:
    con = duckdb.connect(str(path))
    store = FileStore(con)
    con.execute("INSERT INTO run_meta VALUES ('r', 'p', 'r', '{}', 'running', 0, NULL, 'h', 1)")
    store._runs = type(store.runs).of({"r": "p"})
    return con, store


def test_reads_return_what_was_stored_in_idx_order(tmp_path: Path) -> None:
    con, store = _store(tmp_path / "db.duckdb")
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((9, 5)).astype(np.float32)
    images = rng.integers(0, 256, (9, 6, 6, 3), dtype=np.uint8)
    job = _job(matrix, 4, {"label": list("abcdefghi")}, images)
    batches = [decode_batch(b) for b in _batches(job)]
    store.append(batches[1:2], {"w": 2})  # chunks out of order: the middle one first
    (partial,) = list_embeddings(con)
    assert (partial["rows"], partial["dims"], partial["complete"]) == (4, None, False)
    store.append([batches[2], batches[0]], {"w": 3})
    (listed,) = list_embeddings(con, ["r"])
    assert listed == {
        "run_id": "r", "tag": "e", "step": 4, "rank": 0, "rows": 9, "dims": 5, "total_rows": 9, "name": "r",
        "complete": True,
    }  # fmt: skip
    loaded = load_embedding(con, "r", "e", 4)
    np.testing.assert_array_equal(loaded.vectors, matrix)
    assert loaded.idx.tolist() == list(range(9)) and loaded.complete
    assert loaded.metadata == [{"label": c} for c in "abcdefghi"] and loaded.columns == ["label"]
    thumbs = load_images(con, "r", "e", 4, [8, 0, 99])
    assert sorted(thumbs) == [0, 8]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(thumbs[8]))), images[8])
    assert list_embeddings(con, ["other"]) == []


def test_unknown_embeddings_are_not_found(tmp_path: Path) -> None:
    from runstream_service.errors import NotFound

    con, _ = _store(tmp_path / "db.duckdb")
    with pytest.raises(NotFound, match="no embedding tagged 'e'"):
        load_embedding(con, "r", "e", 0)


def test_a_version_3_file_gains_the_embedding_table(tmp_path: Path) -> None:
    path = str(tmp_path / "v3.duckdb")
    con = duckdb.connect(path)
    create_schema(con)
    con.execute("DROP VIEW embeddings")
    con.execute("DROP TABLE embedding_points")
    con.execute("UPDATE schema_info SET version = 3")
    con.close()
    con = duckdb.connect(path)
    create_schema(con)
    assert con.execute("SELECT count(*) FROM embeddings").fetchall() == [(0,)]
