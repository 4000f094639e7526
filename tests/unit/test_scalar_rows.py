"""The by-row form of scalars on the wire (what the SDK sends): a step and a wall time per `log` call.

`Scalars.row_points` set means `step` and `wall_time` hold one value per row and row i is the next
row_points[i] points; the server repeats them per point. The per-point form stays valid (older SDKs'
spools, other clients).
"""

from __future__ import annotations

import numpy as np
import pytest

from runstream._encode import encode_batch
from runstream.v1 import ingest_pb2 as pb
from runstream_service.validate import InvalidBatch, decode_batch


def _batch(tags: list[str], scalars: pb.Scalars) -> pb.Batch:
    return pb.Batch(run_id="run", rank=0, writer_id="w", seq=1, tags=tags, scalars=scalars)


def _rows(
    tag_index: list[int], steps: list[int], walls: list[float], values: list[float], rows: list[int]
) -> pb.Scalars:
    return pb.Scalars(
        tag_index=np.asarray(tag_index, "<u4").tobytes(),
        step=np.asarray(steps, "<i8").tobytes(),
        wall_time=np.asarray(walls, "<f8").tobytes(),
        value=np.asarray(values, "<f8").tobytes(),
        row_points=np.asarray(rows, "<u4").tobytes(),
    )


def test_rows_expand_to_a_step_and_wall_time_per_point() -> None:
    scalars = _rows([0, 1, 0], [5, 7], [1.5, 2.5], [0.1, 0.2, 0.3], [2, 1])
    decoded = decode_batch(_batch(["a", "b"], scalars)).scalars
    assert decoded is not None
    assert decoded.step.tolist() == [5, 5, 7]
    assert decoded.wall_time.tolist() == [1.5, 1.5, 2.5]
    assert decoded.tag_index.tolist() == [0, 1, 0]
    assert decoded.value.tolist() == [0.1, 0.2, 0.3]


def test_the_sdk_encodes_by_row_and_mixed_shapes_keep_their_order() -> None:
    a, b = ("loss", "acc"), ("lr",)
    packed = [
        (0, 10.0, a, np.array([1.0, 0.5]).tobytes()),
        (1, 11.0, b, np.array([0.1]).tobytes()),
        (2, 12.0, a, np.array([2.0, 0.25]).tobytes()),
    ]
    message = encode_batch("run", 0, "w", 1, packed).message
    assert np.frombuffer(message.scalars.row_points, "<u4").tolist() == [2, 2, 1]  # grouped by shape
    decoded = decode_batch(message).scalars
    assert decoded is not None
    got = sorted(zip(decoded.step.tolist(), [message.tags[i] for i in decoded.tag_index], decoded.value.tolist()))
    assert got == [(0, "acc", 0.5), (0, "loss", 1.0), (1, "lr", 0.1), (2, "acc", 0.25), (2, "loss", 2.0)]


@pytest.mark.parametrize(
    ("scalars", "field", "words"),
    [
        (_rows([0, 0], [1], [1.0], [0.1, 0.2], [1]), "scalars.row_points", "hold 1 points, but there are 2"),
        (_rows([0, 0], [1, 2], [1.0, 2.0], [0.1, 0.2], [2, 0]), "scalars.row_points", "at least one point"),
        (_rows([0, 0], [1], [1.0, 2.0], [0.1, 0.2], [2]), "scalars rows", "differ in length"),
        (_rows([0, 0], [-3], [1.0], [0.1, 0.2], [2]), "scalars.step", "steps must be >= 0, got -3"),
        (_rows([0, 5], [1], [1.0], [0.1, 0.2], [2]), "scalars.tag_index", "refers to tag 5"),
        (_rows([0], [1], [1.0], [0.1, 0.2], [2]), "scalars", "differ in length"),
    ],
)
def test_a_bad_row_form_is_rejected_naming_the_field(scalars: pb.Scalars, field: str, words: str) -> None:
    with pytest.raises(InvalidBatch) as caught:
        decode_batch(_batch(["a"], scalars))
    assert caught.value.field == field
    assert words in str(caught.value)


def test_row_points_must_be_whole_uint32_values() -> None:
    scalars = _rows([0], [1], [1.0], [0.1], [1])
    scalars.row_points = b"\x01\x00\x00"
    with pytest.raises(InvalidBatch, match=r"scalars.row_points: 3 bytes is not a whole number of 4-byte values"):
        decode_batch(_batch(["a"], scalars))
