"""Audio, videos, PR curves, meshes, tensors, image boxes, tag info and custom-scalar layouts: each rule of the
wire (proto/runstream/v1/ingest.proto) refused with the field named, and a good batch stored in its view
through a FileStore (store/file.py) on a DuckDB file, with replays not written twice."""

from __future__ import annotations

import io
import json
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

from runstream.v1 import ingest_pb2 as pb
from runstream_service.store.base import OpenRun
from runstream_service.store.file import FileStore
from runstream_service.store.media import MediaError, parse_video, parse_wav
from runstream_service.store.schema import SCHEMA_VERSION
from runstream_service.validate import InvalidBatch, decode_batch


def u4(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def i8(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()


def f8(values: list[float]) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


def pcm_wav(frames: int = 100, channels: int = 2, rate: int = 8000, width: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x01" * frames * channels * width)
    return out.getvalue()


def float_wav(samples: np.ndarray, rate: int = 16000, tag: int = 3, bits: int = 32) -> bytes:
    """A WAV of float32 samples (format tag 3, as soundfile and tensorboardX write them), mono."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * bits // 8, bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def animation(fmt: str, frames: int = 3, size: tuple[int, int] = (8, 6)) -> bytes:
    images = [Image.new("RGB", size, (40 * i, 255 - 40 * i, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def png(size: tuple[int, int] = (4, 3)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def pr_values(t: int) -> list[float]:
    tp = np.linspace(10, 0, t)
    fp = np.linspace(10, 0, t)
    tn = np.linspace(0, 10, t)
    fn = np.linspace(0, 10, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
    recall = tp / 10
    return list(np.concatenate([tp, fp, tn, fn, precision, recall]))


def batch(seq: int = 1, **fields: object) -> pb.Batch:
    return pb.Batch(run_id="r", writer_id="w", seq=seq, tags=["a", "b"], **fields)  # type: ignore[arg-type]


def audio(*wavs: bytes) -> pb.Audio:
    n = len(wavs)
    return pb.Audio(tag_index=u4([0] * n), step=i8(list(range(n))), wall_time=f8([1.0] * n), wav=list(wavs))


def videos(*data: bytes, fps: float = 4.0) -> pb.Videos:
    n = len(data)
    return pb.Videos(tag_index=u4([0] * n), step=i8([3] * n), wall_time=f8([1.0] * n), fps=f8([fps] * n), data=data)


def pr_curves(thresholds: list[int], values: list[float]) -> pb.PrCurves:
    n = len(thresholds)
    return pb.PrCurves(
        tag_index=u4([1] * n), step=i8([5] * n), wall_time=f8([2.0] * n), thresholds=u4(thresholds), values=f8(values)
    )


def meshes(
    vertex_count: list[int],
    face_count: list[int],
    color_count: list[int],
    faces: list[int],
    config: list[str] | None = None,
    vertices: np.ndarray | None = None,
) -> pb.Meshes:
    n = len(vertex_count)
    if vertices is None:
        vertices = np.arange(3 * sum(vertex_count), dtype="<f4")
    return pb.Meshes(
        tag_index=u4([0] * n),
        step=i8([1] * n),
        wall_time=f8([1.0] * n),
        sample=u4(list(range(n))),
        vertex_count=u4(vertex_count),
        face_count=u4(face_count),
        color_count=u4(color_count),
        vertices=vertices.astype("<f4").tobytes(),
        colors=bytes(range(3 * sum(color_count))),
        faces=u4(faces),
        config=config or [],
    )


def tensors(arrays: list[np.ndarray], dtypes: list[str] | None = None) -> pb.Tensors:
    n = len(arrays)
    return pb.Tensors(
        tag_index=u4([1] * n),
        step=i8([7] * n),
        wall_time=f8([1.0] * n),
        dtype=dtypes or [a.dtype.name for a in arrays],
        ndim=u4([a.ndim for a in arrays]),
        shape=np.asarray([d for a in arrays for d in a.shape], dtype="<u8").tobytes(),
        data=[a.astype(a.dtype.newbyteorder("<")).tobytes() for a in arrays],
    )


def images_with_boxes(boxes: list[str], images: int | None = None) -> pb.Images:
    n = len(boxes) if images is None else images
    return pb.Images(tag_index=u4([0] * n), step=i8([0] * n), wall_time=f8([1.0] * n), data=[png()] * n, boxes=boxes)


LAYOUT = {
    "categories": [
        {"title": "losses", "charts": [{"title": "all", "multiline": {"tags": ["loss/.*"]}}]},
        {
            "title": "margins",
            "closed": True,
            "charts": [{"title": "m", "margin": {"series": [{"value": "v", "lower": "lo", "upper": "hi"}]}}],
        },
    ]
}


# -- media headers ---------------------------------------------------------------------------------


def test_wav_headers_of_pcm_and_float() -> None:
    info = parse_wav(pcm_wav(frames=100, channels=2, rate=8000, width=2))
    assert (info.sample_rate, info.channels, info.frames, info.bits, info.is_float) == (8000, 2, 100, 16, False)
    assert parse_wav(pcm_wav(frames=5, channels=1, width=1)).frames == 5
    assert parse_wav(pcm_wav(frames=5, channels=1, width=4)).bits == 32
    info = parse_wav(float_wav(np.zeros(1600)))
    assert (info.sample_rate, info.channels, info.frames, info.is_float) == (16000, 1, 1600, True)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"OggS" + b"\x00" * 40, "is not a WAV file"),
        (pcm_wav(width=3), "24-bit integer PCM samples; use 8 or 16 or 32 bits"),
        (float_wav(np.zeros(4), tag=3, bits=64), "64-bit float samples"),
        (float_wav(np.zeros(4), tag=2), "WAVE format 0x0002"),
        (pcm_wav()[:-7], "its data chunk says"),
        (pcm_wav()[:36], "has no data chunk"),
    ],
)
def test_wav_refusals_say_what_is_accepted(blob: bytes, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        parse_wav(blob)


def test_videos_are_apng_or_gif_with_their_frames() -> None:
    apng = parse_video(animation("PNG", frames=3), 1 << 20, 1 << 20)
    assert (apng.mime, apng.width, apng.height, apng.frames) == ("image/apng", 8, 6, 3)
    gif = parse_video(animation("GIF", frames=4), 1 << 20, 1 << 20)
    assert (gif.mime, gif.frames) == ("image/gif", 4)
    assert parse_video(png(), 1 << 20, 1 << 20).frames == 1  # a plain PNG is a one-frame APNG
    with pytest.raises(MediaError, match="neither an APNG nor a GIF"):
        parse_video(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 20, 1 << 20, 1 << 20)
    with pytest.raises(MediaError, match="3 frames of 8x6 pixels is more than the limit of 100"):
        parse_video(animation("PNG", frames=3), 1 << 20, 100)
    with pytest.raises(MediaError, match="does not decode as GIF"):
        parse_video(animation("GIF")[:-10], 1 << 20, 1 << 20)


# -- the rules of each kind ------------------------------------------------------------------------


def _refused(message: pb.Batch, field: str, words: str) -> None:
    with pytest.raises(InvalidBatch) as caught:
        decode_batch(message)
    assert caught.value.field == field
    assert words in str(caught.value)


BAD: dict[str, tuple[Callable[[], pb.Batch], str, str]] = {
    "audio length": (
        lambda: batch(audio=pb.Audio(tag_index=u4([0]), step=i8([0]), wall_time=f8([0.0]))),
        "audio",
        "columns differ in length",
    ),
    "audio not wav": (lambda: batch(audio=audio(png())), "audio.wav[0]", "is not a WAV file"),
    "audio 24 bit": (lambda: batch(audio=audio(pcm_wav(), pcm_wav(width=3))), "audio.wav[1]", "24-bit"),
    "audio tag": (
        lambda: batch(audio=pb.Audio(tag_index=u4([2]), step=i8([0]), wall_time=f8([0.0]), wav=[pcm_wav()])),
        "audio.tag_index",
        "refers to tag 2",
    ),
    "audio step": (
        lambda: batch(audio=pb.Audio(tag_index=u4([0]), step=i8([-1]), wall_time=f8([0.0]), wav=[pcm_wav()])),
        "audio.step",
        "steps must be >= 0",
    ),
    "video fps zero": (lambda: batch(videos=videos(animation("GIF"), fps=0.0)), "videos.fps", "finite and > 0"),
    "video fps nan": (lambda: batch(videos=videos(animation("GIF"), fps=float("nan"))), "videos.fps", "finite"),
    "video mp4": (lambda: batch(videos=videos(b"\x00\x00\x00\x18ftypmp42")), "videos.data[0]", "neither an APNG"),
    "video fps count": (
        lambda: batch(videos=pb.Videos(tag_index=u4([0]), step=i8([0]), wall_time=f8([0.0]), data=[animation("GIF")])),
        "videos",
        "fps=0",
    ),
    "pr one threshold": (lambda: batch(pr_curves=pr_curves([1], [0.0] * 6)), "pr_curves.thresholds", "2 to 10000"),
    "pr values short": (
        lambda: batch(pr_curves=pr_curves([3], pr_values(3)[:-1])),
        "pr_curves.values",
        "6 x thresholds add up to 18",
    ),
    "pr negative count": (
        lambda: batch(pr_curves=pr_curves([2], [-1.0, *pr_values(2)[1:]])),
        "pr_curves.values",
        "finite and >= 0",
    ),
    "pr precision above one": (
        lambda: batch(pr_curves=pr_curves([2], [*pr_values(2)[:8], 1.5, *pr_values(2)[9:]])),
        "pr_curves.values",
        "precision and recall must be in [0, 1]",
    ),
    "mesh no vertices": (lambda: batch(meshes=meshes([0], [0], [0], [])), "meshes.vertex_count", "1 to"),
    "mesh face out of range": (
        lambda: batch(meshes=meshes([3, 3], [1, 1], [0, 0], [0, 1, 2, 0, 1, 3])),
        "meshes.faces",
        "mesh 1 has a face with vertex 3, but only 3 vertices",
    ),
    "mesh colors count": (lambda: batch(meshes=meshes([3], [0], [2], [])), "meshes.color_count", "give 0 or one"),
    "mesh faces short": (lambda: batch(meshes=meshes([3], [2], [0], [0, 1, 2])), "meshes.faces", "add up to 6"),
    "mesh nan vertex": (
        lambda: batch(meshes=meshes([1], [0], [0], [], vertices=np.array([0.0, np.nan, 1.0]))),
        "meshes.vertices",
        "finite",
    ),
    "mesh config": (lambda: batch(meshes=meshes([1], [0], [0], [], config=["[1]"])), "meshes.config[0]", "object"),
    "tensor dtype": (
        lambda: batch(tensors=tensors([np.zeros(2, np.complex64)])),
        "tensors.dtype[0]",
        "'complex64' is not one of bool",
    ),
    "tensor data length": (
        lambda: batch(tensors=tensors([np.zeros((2, 3), np.float32)], ["float64"])),
        "tensors.data[0]",
        "24 bytes; shape and dtype float64 need 48",
    ),
    "tensor shape count": (
        lambda: batch(
            tensors=pb.Tensors(
                tag_index=u4([0]), step=i8([0]), wall_time=f8([0.0]), dtype=["int8"], ndim=u4([2]), data=[b"\x00"]
            )
        ),
        "tensors.shape",
        "ndim adds up to 2",
    ),
    "boxes count": (lambda: batch(images=images_with_boxes([""], images=2)), "images.boxes", "one per image (2)"),
    "boxes inverted": (
        lambda: batch(images=images_with_boxes([json.dumps({"boxes": [[5, 0, 1, 1]]})])),
        "images.boxes[0].boxes[0]",
        "x_min must be <= x_max",
    ),
    "boxes nan": (
        lambda: batch(images=images_with_boxes(['{"boxes": [[0, 0, NaN, 1]]}'])),
        "images.boxes[0]",
        "is not JSON",
    ),
    "boxes labels": (
        lambda: batch(images=images_with_boxes([json.dumps({"boxes": [[0, 0, 1, 1]], "labels": ["a", "b"]})])),
        "images.boxes[0].labels",
        "2 labels for 1 boxes",
    ),
    "boxes label type": (
        lambda: batch(images=images_with_boxes([json.dumps({"boxes": [[0, 0, 1, 1]], "labels": [3]})])),
        "images.boxes[0].labels",
        "list of strings",
    ),
    "tag info empty tag": (lambda: batch(tag_info=[pb.TagInfo(tag="")]), "tag_info[0].tag", "must not be empty"),
    "layout not json": (lambda: batch(custom_scalars_layout="{"), "custom_scalars_layout", "is not JSON"),
    "layout shape": (lambda: batch(custom_scalars_layout="[]"), "custom_scalars_layout", "must be a JSON object"),
    "layout chart": (
        lambda: batch(custom_scalars_layout=json.dumps({"categories": [{"title": "c", "charts": [{"title": "x"}]}]})),
        "custom_scalars_layout.categories[0].charts[0]",
        'exactly one of "multiline" and "margin"',
    ),
    "layout regex": (
        lambda: batch(
            custom_scalars_layout=json.dumps(
                {"categories": [{"title": "c", "charts": [{"title": "x", "multiline": {"tags": ["("]}}]}]}
            )
        ),
        "custom_scalars_layout.categories[0].charts[0].multiline.tags[0]",
        "is not a regular expression",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_rule_is_refused_naming_its_field(case: str) -> None:
    make, field, words = BAD[case]
    _refused(make(), field, words)


def test_good_batches_decode_to_their_columns() -> None:
    decoded = decode_batch(
        batch(
            audio=audio(pcm_wav(), float_wav(np.zeros(10))),
            videos=videos(animation("PNG"), animation("GIF", frames=2)),
            pr_curves=pr_curves([3, 2], pr_values(3) + pr_values(2)),
            meshes=meshes([3, 1], [1, 0], [3, 0], [0, 1, 2], config=['{"camera": {"fov": 75}}', ""]),
            tensors=tensors([np.arange(6, dtype=np.int16).reshape(2, 3), np.array(True)]),
            images=images_with_boxes(["", json.dumps({"boxes": [[0, 0, 2, 2]], "labels": ["cat"]})]),
            tag_info=[pb.TagInfo(tag="a", display_name="A", description="the a")],
            custom_scalars_layout=json.dumps(LAYOUT),
            source_offset=1234,
        )
    )
    assert decoded.audio is not None and decoded.audio.sample_rate.tolist() == [8000.0, 16000.0]
    assert decoded.videos is not None and decoded.videos.mime == ["image/apng", "image/gif"]
    assert decoded.pr_curves is not None and decoded.pr_curves.offsets.tolist() == [0, 3, 5]
    assert decoded.meshes is not None and decoded.meshes.config == ['{"camera": {"fov": 75}}', "{}"]
    assert decoded.tensors is not None and decoded.tensors.shape.tolist() == [2, 3]
    assert decoded.images is not None and decoded.images.boxes == [None, '{"boxes":[[0,0,2,2]],"labels":["cat"]}']
    assert decoded.source_offset == 1234
    assert decoded.points == 2 + 2 + 2 + 2 + 2 + 2


# -- stored through a FileStore --------------------------------------------------------------------


def _store(tmp_path: Path) -> tuple[FileStore, duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(tmp_path / "runstream.duckdb"))
    store = FileStore(con)
    store.open_run(OpenRun("r", "p", "r", "{}", 0, 1, "h", 0.0))
    return store, con


def test_each_kind_lands_in_its_view(tmp_path: Path) -> None:
    store, con = _store(tmp_path)
    first = decode_batch(
        batch(
            audio=audio(pcm_wav(frames=100, channels=2, rate=8000)),
            videos=videos(animation("GIF", frames=2)),
            pr_curves=pr_curves([3], pr_values(3)),
            meshes=meshes([3, 2], [1, 0], [3, 0], [0, 1, 2]),
            tensors=tensors([np.arange(6, dtype=np.int16).reshape(2, 3)]),
            images=images_with_boxes([json.dumps({"boxes": [[0, 0, 2, 2]], "labels": ["cat"]})]),
            tag_info=[pb.TagInfo(tag="a", display_name="A", description="first")],
            custom_scalars_layout=json.dumps(LAYOUT),
            source_offset=99,
        )
    )
    store.append([first], {"w": 1})
    assert con.execute("SELECT run_id, tag, step, sample_rate, channels, frames, wav FROM audio").fetchall() == [
        ("r", "a", 0, 8000.0, 2, 100, pcm_wav(frames=100, channels=2, rate=8000))
    ]
    assert con.execute("SELECT tag, step, width, height, frames, fps, mime FROM videos").fetchall() == [
        ("a", 3, 8, 6, 2, 4.0, "image/gif")
    ]
    (curve,) = con.execute("SELECT tag, step, thresholds, true_positives, precision, recall FROM pr_curves").fetchall()
    assert curve[:3] == ("b", 5, 3) and curve[3] == [10.0, 5.0, 0.0] and curve[5] == [1.0, 0.5, 0.0]
    assert np.isnan(curve[4][2]) and curve[4][:2] == [0.5, 0.5]
    assert con.execute(
        "SELECT sample, vertex_count, face_count, len(vertices), colors, faces, config FROM meshes ORDER BY sample"
    ).fetchall() == [(0, 3, 1, 9, list(range(9)), [0, 1, 2], "{}"), (1, 2, 0, 6, None, None, "{}")]
    assert con.execute("SELECT tag, step, dtype, shape, data FROM tensors").fetchall() == [
        ("b", 7, "int16", [2, 3], np.arange(6, dtype="<i2").tobytes())
    ]
    assert con.execute("SELECT boxes FROM images").fetchall() == [('{"boxes":[[0,0,2,2]],"labels":["cat"]}',)]
    assert con.execute("SELECT run_id, tag, display_name, description FROM tag_info").fetchall() == [
        ("r", "a", "A", "first")
    ]
    assert json.loads(con.execute("SELECT layout FROM custom_scalar_layouts").fetchall()[0][0]) == LAYOUT
    assert con.execute("SELECT writer_id, seq, source_offset FROM writer_progress").fetchall() == [("w", 1, 99)]

    # The last tag info and layout win, in one commit as across commits; the offset follows the last batch.
    second = decode_batch(batch(2, tag_info=[pb.TagInfo(tag="a", display_name="A2")], source_offset=150))
    third = decode_batch(
        batch(
            3,
            tag_info=[pb.TagInfo(tag="a", display_name="A3", description="third"), pb.TagInfo(tag="b")],
            custom_scalars_layout=json.dumps({"categories": []}),
            source_offset=200,
        )
    )
    store.append([second, third], {"w": 3})
    assert con.execute("SELECT tag, display_name, description FROM tag_info ORDER BY tag").fetchall() == [
        ("a", "A3", "third"),
        ("b", "", ""),
    ]
    assert con.execute("SELECT layout FROM custom_scalar_layouts").fetchall() == [('{"categories": []}',)]
    assert con.execute("SELECT writer_id, seq, source_offset FROM writer_progress").fetchall() == [("w", 3, 200)]
    con.close()


# The whole schema of version 3, as runstream 0574c66 (the last of version 3) made it, comments left out.
V3_DDL = """
CREATE TABLE schema_info (version INTEGER NOT NULL);
CREATE TABLE run_meta (run_id VARCHAR NOT NULL, project VARCHAR NOT NULL, name VARCHAR NOT NULL, config JSON, status
    VARCHAR NOT NULL, created_at DOUBLE NOT NULL, finished_at DOUBLE, host VARCHAR, world_size INTEGER NOT NULL);
CREATE TABLE run_ranks (run_id VARCHAR NOT NULL, rank INTEGER NOT NULL, host VARCHAR, started_at DOUBLE NOT NULL,
    finished_at DOUBLE, status VARCHAR NOT NULL);
CREATE TABLE series (series_id INTEGER NOT NULL, run_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, tag VARCHAR NOT
    NULL);
CREATE TABLE scalar_points_hot (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, wall_time
    DOUBLE NOT NULL, value DOUBLE);
CREATE TABLE scalar_points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, wall_time
    DOUBLE NOT NULL, value DOUBLE, generation INTEGER NOT NULL);
CREATE TABLE scalar_rollups (generation INTEGER NOT NULL, series_id INTEGER NOT NULL, level TINYINT NOT NULL, bucket
    BIGINT NOT NULL, points BIGINT NOT NULL, numbers BIGINT NOT NULL, sum DOUBLE NOT NULL, first_step BIGINT NOT
    NULL, first_value DOUBLE, last_step BIGINT NOT NULL, last_value DOUBLE, min_step BIGINT, min_value DOUBLE,
    max_step BIGINT, max_value DOUBLE);
CREATE TABLE scalar_generations (generation INTEGER NOT NULL, points BIGINT NOT NULL, created_at DOUBLE NOT NULL);
CREATE TABLE histogram_points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, wall_time
    DOUBLE NOT NULL, count DOUBLE NOT NULL, min DOUBLE, max DOUBLE, sum DOUBLE, sum_squares DOUBLE, bucket_limits
    DOUBLE[] NOT NULL, bucket_counts DOUBLE[] NOT NULL);
CREATE TABLE image_points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, wall_time DOUBLE
    NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, mime VARCHAR NOT NULL, data BLOB NOT NULL);
CREATE TABLE text_points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, wall_time DOUBLE
    NOT NULL, text VARCHAR NOT NULL);
CREATE TABLE embedding_points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, wall_time
    DOUBLE NOT NULL, idx INTEGER NOT NULL, vector FLOAT[] NOT NULL, metadata JSON, image BLOB, total_rows INTEGER
    NOT NULL);
CREATE TABLE graph_points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, wall_time DOUBLE
    NOT NULL, nodes BIGINT NOT NULL, edges BIGINT NOT NULL, parameters BIGINT NOT NULL, doc VARCHAR NOT NULL);
CREATE TABLE series_stats (series_id INTEGER NOT NULL, points BIGINT NOT NULL, first_step BIGINT NOT NULL, last_step
    BIGINT NOT NULL, first_wall DOUBLE NOT NULL, last_wall DOUBLE NOT NULL);
CREATE TABLE writer_progress (writer_id VARCHAR NOT NULL, seq UBIGINT NOT NULL);
CREATE TABLE visdom_envs (env VARCHAR NOT NULL, project VARCHAR NOT NULL, created_at DOUBLE NOT NULL);
CREATE TABLE visdom_panes (pane_id BIGINT NOT NULL, env VARCHAR NOT NULL, win VARCHAR NOT NULL, type VARCHAR NOT
    NULL, title VARCHAR, position INTEGER NOT NULL, opts JSON NOT NULL, doc VARCHAR NOT NULL, created_at DOUBLE NOT
    NULL, updated_at DOUBLE NOT NULL);
CREATE TABLE visdom_trace_points (pane_id BIGINT NOT NULL, trace INTEGER NOT NULL, seq BIGINT NOT NULL, x DOUBLE, y
    DOUBLE, z DOUBLE, text VARCHAR, color VARCHAR);
CREATE OR REPLACE VIEW runs AS SELECT run_id, project, name, config, status, make_timestamp(CAST(created_at * 1e6 AS
    BIGINT)) AS created_at, make_timestamp(CAST(finished_at * 1e6 AS BIGINT)) AS finished_at, host, world_size FROM
    run_meta;
CREATE OR REPLACE VIEW scalars AS SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.value FROM (SELECT
    series_id, step, rank, wall_time, value FROM scalar_points UNION ALL SELECT series_id, step, rank, wall_time,
    value FROM scalar_points_hot) p JOIN series s USING (series_id);
CREATE OR REPLACE VIEW histograms AS SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.count, p.min, p.max,
    p.sum, p.sum_squares, p.bucket_limits, p.bucket_counts FROM histogram_points p JOIN series s USING (series_id);
CREATE OR REPLACE VIEW images AS SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.width, p.height, p.mime,
    p.data FROM image_points p JOIN series s USING (series_id);
CREATE OR REPLACE VIEW texts AS SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.text FROM text_points p JOIN
    series s USING (series_id);
CREATE OR REPLACE VIEW embeddings AS SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.idx, p.vector,
    p.metadata, p.image, p.total_rows FROM embedding_points p JOIN series s USING (series_id);
CREATE OR REPLACE VIEW graphs AS SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.nodes, p.edges,
    p.parameters, CAST(p.doc AS JSON) AS doc FROM graph_points p JOIN series s USING (series_id);
CREATE OR REPLACE VIEW graph_nodes AS SELECT run_id, tag, step, rank, n.name, n.scope, n.op, n.output_shape,
    n.parameters FROM (SELECT s.run_id, s.tag, p.step, p.rank, unnest(from_json(json_extract(p.doc, '$.nodes'),
    '[{"name": "VARCHAR", "scope": "VARCHAR", "op": "VARCHAR", "output_shape": "BIGINT[]", "parameters":
    "BIGINT"}]')) AS n FROM graph_points p JOIN series s USING (series_id));
CREATE OR REPLACE VIEW visdom_windows AS SELECT env, win, type, title, opts, make_timestamp(CAST(created_at * 1e6 AS
    BIGINT)) AS created_at, make_timestamp(CAST(updated_at * 1e6 AS BIGINT)) AS updated_at FROM visdom_panes;
CREATE OR REPLACE VIEW visdom_points AS SELECT w.env, w.win, p.trace, p.seq, p.x, p.y, p.z, p.text, p.color FROM
    visdom_trace_points p JOIN visdom_panes w USING (pane_id);
INSERT INTO schema_info VALUES (3);
INSERT INTO run_meta VALUES ('r', 'p', 'r', '{}', 'running', 0, NULL, 'h', 1);
INSERT INTO series VALUES (0, 'r', 'image', 'old');
INSERT INTO image_points VALUES (0, 4, 0, 1.0, 1, 1, 'image/png', 'x'::BLOB);
INSERT INTO writer_progress VALUES ('w', 5);
"""


def test_a_version_3_file_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    """A v3 file (the tables this migration touches, made with v3's DDL) opens as v4: old rows kept, with no
    boxes and offset 0; the new tables there; a replay of its last batch still recognised."""
    path = str(tmp_path / "v3.duckdb")
    old = duckdb.connect(path)
    old.execute(V3_DDL)
    old.close()
    con = duckdb.connect(path)
    store = FileStore(con)
    assert con.execute("SELECT version FROM schema_info").fetchall() == [(SCHEMA_VERSION,)]
    assert con.execute("SELECT tag, step, data, boxes FROM images").fetchall() == [("old", 4, b"x", None)]
    assert con.execute("SELECT writer_id, seq, source_offset FROM writer_progress").fetchall() == [("w", 5, 0)]
    assert store.committed_seq("w") == 5
    store.append([decode_batch(batch(6, images=images_with_boxes(['{"boxes": []}']), source_offset=7))], {"w": 6})
    assert con.execute("SELECT tag, boxes FROM images ORDER BY step").fetchall() == [
        ("a", '{"boxes":[]}'),
        ("old", None),
    ]
    assert con.execute("SELECT seq, source_offset FROM writer_progress").fetchall() == [(6, 7)]
    for view in ("audio", "videos", "pr_curves", "meshes", "tensors", "tag_info", "custom_scalar_layouts"):
        assert con.execute(f"SELECT count(*) FROM {view}").fetchall() == [(0,)]
    con.close()
