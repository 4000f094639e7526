"""Audio, videos, PR curves, meshes, tensors, image boxes, tag info and layouts through a real `runstream serve`:
batches built by hand from the wire's messages go in, the views show them; each bad input ends its own stream
with INVALID_ARGUMENT naming the field while the server keeps serving and the good batches stay; a replayed
(writer_id, seq) is acknowledged as a duplicate and not stored twice. Then the two read RPCs: GetProgress (seq and
source_offset, kept across a restart) and ReadScalars (hot and compacted points alike, in step order)."""

from __future__ import annotations

import io
import json
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from support import ServerProcess

TIMEOUT = 30.0
RUN = "media-run"


def u4(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def i8(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()


def f8(values: list[float]) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


def wav(frames: int = 80, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.arange(frames, dtype="<i2").tobytes())
    return out.getvalue()


def gif(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (8, 6), (60 * i, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 9, 0)).save(out, format="PNG")
    return out.getvalue()


def keys(n: int, step: int, tag: int = 0) -> dict[str, bytes]:
    return {"tag_index": u4([tag] * n), "step": i8([step] * n), "wall_time": f8([1700000000.0] * n)}


PR = [3.0, 2.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 1.0, 3.0, 0.75, 0.5, float("nan"), 1.0, 2 / 3, 0.0]
LAYOUT = json.dumps({"categories": [{"title": "c", "charts": [{"title": "l", "multiline": {"tags": ["loss.*"]}}]}]})


def good_batch(seq: int, step: int) -> pb.Batch:
    return pb.Batch(
        run_id=RUN,
        writer_id="good",
        seq=seq,
        tags=["media/a", "media/b"],
        audio=pb.Audio(**keys(1, step), wav=[wav()]),
        videos=pb.Videos(**keys(1, step), fps=f8([4.0]), data=[gif()]),
        pr_curves=pb.PrCurves(**keys(1, step, tag=1), thresholds=u4([3]), values=f8(PR)),
        meshes=pb.Meshes(
            **keys(1, step),
            sample=u4([0]),
            vertex_count=u4([3]),
            face_count=u4([1]),
            color_count=u4([0]),
            vertices=np.arange(9, dtype="<f4").tobytes(),
            faces=u4([0, 1, 2]),
            config=['{"camera": {"fov": 75}}'],
        ),
        tensors=pb.Tensors(
            **keys(1, step, tag=1),
            dtype=["float32"],
            ndim=u4([2]),
            shape=np.asarray([2, 2], "<u8").tobytes(),
            data=[np.eye(2, dtype="<f4").tobytes()],
        ),
        images=pb.Images(**keys(1, step), data=[png()], boxes=['{"boxes": [[0, 0, 2, 3]], "labels": ["cat"]}']),
        tag_info=[pb.TagInfo(tag="media/a", display_name=f"A at {step}", description="the first tag")],
        custom_scalars_layout=LAYOUT,
        source_offset=100 * seq,
    )


def bad_batches() -> dict[str, pb.Batch]:
    def bad(**fields: object) -> pb.Batch:
        return pb.Batch(run_id=RUN, writer_id="bad", seq=1, tags=["bad/a"], **fields)  # type: ignore[arg-type]

    return {
        "audio.wav[0]": bad(audio=pb.Audio(**keys(1, 666), wav=[b"RIFF....WAVEjunk"])),
        "videos.fps": bad(videos=pb.Videos(**keys(1, 666), fps=f8([0.0]), data=[gif()])),
        "videos.data[0]": bad(videos=pb.Videos(**keys(1, 666), fps=f8([1.0]), data=[b"\x00\x00\x00\x18ftypmp42"])),
        "pr_curves.values": bad(pr_curves=pb.PrCurves(**keys(1, 666), thresholds=u4([2]), values=f8([-1.0] * 12))),
        "meshes.faces": bad(
            meshes=pb.Meshes(
                **keys(1, 666),
                sample=u4([0]),
                vertex_count=u4([3]),
                face_count=u4([1]),
                color_count=u4([0]),
                vertices=np.zeros(9, "<f4").tobytes(),
                faces=u4([0, 1, 3]),
            )
        ),
        "tensors.data[0]": bad(
            tensors=pb.Tensors(
                **keys(1, 666), dtype=["int32"], ndim=u4([1]), shape=np.asarray([3], "<u8").tobytes(), data=[b"\x00"]
            )
        ),
        "images.boxes[0].boxes[0]": bad(
            images=pb.Images(**keys(1, 666), data=[png()], boxes=['{"boxes": [[3, 0, 1, 1]]}'])
        ),
        "custom_scalars_layout": bad(custom_scalars_layout='{"categories": 1}'),
        "tag_info[0].tag": bad(tag_info=[pb.TagInfo(tag="")]),
    }


def scalars_batch(seq: int, steps: range) -> pb.Batch:
    n = len(steps)
    return pb.Batch(
        run_id=RUN,
        writer_id="scalars",
        seq=seq,
        tags=["loss", "acc"],
        scalars=pb.Scalars(
            tag_index=u4([0, 1] * n),
            step=i8([s for s in steps for _ in range(2)]),
            wall_time=f8([1700000000.0 + s for s in steps for _ in range(2)]),
            value=f8([v for s in steps for v in (1.0 / (s + 1), float(s))]),
        ),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Compaction after 1,000 hot points: the first scalar batch is compacted, the second stays hot.
    process = ServerProcess(
        tmp_path_factory.mktemp("media") / "data", ("--compact-points", "1000", "--compact-seconds", "3600")
    ).start()
    yield process
    if process.running:
        process.stop()


def stub_of(server: ServerProcess) -> tuple[grpc.Channel, pb_grpc.IngestStub]:
    channel = grpc.insecure_channel(server.address)
    return channel, pb_grpc.IngestStub(channel)


def write(stub: pb_grpc.IngestStub, *batches: pb.Batch) -> list[pb.WriteAck]:
    return list(stub.Write(iter(batches), timeout=TIMEOUT))


def test_media_kinds_stored_bad_ones_refused_replays_not_duplicated(server: ServerProcess) -> None:
    channel, stub = stub_of(server)
    with channel:
        stub.OpenRun(pb.OpenRunRequest(run_id=RUN, project="media", name="m"), timeout=TIMEOUT)
        acks = write(stub, good_batch(1, step=0))
        assert [(a.seq, a.duplicate) for a in acks] == [(1, False)]
        for field, batch in bad_batches().items():
            with pytest.raises(grpc.RpcError) as caught:
                write(stub, batch)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
            assert f"batch 1: {field}: " in (caught.value.details() or ""), (field, caught.value.details())
        # The server still serves: a replay is acknowledged as a duplicate, the next batch is stored.
        acks = write(stub, good_batch(1, step=0), good_batch(2, step=1))
        assert [(a.seq, a.duplicate) for a in acks] == [(1, True), (2, False)]
        progress = stub.GetProgress(pb.GetProgressRequest(writer_id=["good", "bad", "never"]), timeout=TIMEOUT)
        assert (list(progress.seq), list(progress.source_offset)) == ([2, 0, 0], [200, 0, 0])
    server.stop()
    assert server.sql("SELECT tag, step, sample_rate, channels, frames FROM audio ORDER BY step") == [
        ("media/a", 0, 8000.0, 1, 80),
        ("media/a", 1, 8000.0, 1, 80),
    ]
    assert server.sql("SELECT step, width, height, frames, fps, mime, data FROM videos ORDER BY step") == [
        (0, 8, 6, 3, 4.0, "image/gif", gif()),
        (1, 8, 6, 3, 4.0, "image/gif", gif()),
    ]
    ((tag, thresholds, tp, precision),) = server.sql(
        "SELECT tag, thresholds, true_positives, precision FROM pr_curves WHERE step = 0"
    )
    assert (tag, thresholds, tp) == ("media/b", 3, [3.0, 2.0, 0.0])
    assert precision[:2] == [0.75, 0.5] and np.isnan(precision[2])
    assert server.sql("SELECT step, vertex_count, face_count, vertices, colors, faces, config FROM meshes") == [
        (s, 3, 1, [float(v) for v in range(9)], None, [0, 1, 2], '{"camera": {"fov": 75}}') for s in (0, 1)
    ]
    assert server.sql("SELECT dtype, shape, data FROM tensors WHERE step = 1") == [
        ("float32", [2, 2], np.eye(2, dtype="<f4").tobytes())
    ]
    assert server.sql("SELECT step, boxes FROM images ORDER BY step") == [
        (0, '{"boxes":[[0,0,2,3]],"labels":["cat"]}'),
        (1, '{"boxes":[[0,0,2,3]],"labels":["cat"]}'),
    ]
    assert server.sql("SELECT run_id, tag, display_name, description FROM tag_info") == [
        (RUN, "media/a", "A at 1", "the first tag")
    ]
    assert server.sql("SELECT run_id, layout FROM custom_scalar_layouts") == [(RUN, LAYOUT)]
    assert server.sql("SELECT count(*) FROM series WHERE tag LIKE 'bad/%'") == [(0,)]
    assert "Traceback" not in server.log()
    server.start()


def test_progress_and_scalars_read_back(server: ServerProcess) -> None:
    channel, stub = stub_of(server)
    with channel:
        stub.OpenRun(pb.OpenRunRequest(run_id=RUN, project="media", name="m"), timeout=TIMEOUT)
        write(stub, scalars_batch(1, range(0, 1500)))
        deadline = time.monotonic() + TIMEOUT
        while server.health()["uncompacted_points"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.health()["uncompacted_points"] == 0
        write(stub, scalars_batch(2, range(1500, 1510)))  # stays hot
        series = list(stub.ReadScalars(pb.ReadScalarsRequest(run_id=RUN), timeout=TIMEOUT))
        assert [(s.tag, s.rank) for s in series] == [("acc", 0), ("loss", 0)]
        steps = np.frombuffer(series[1].step, "<i8")
        assert steps.tolist() == list(range(1510))
        assert np.frombuffer(series[1].value, "<f8").tolist() == [1.0 / (s + 1) for s in range(1510)]
        assert np.frombuffer(series[0].wall_time, "<f8")[-1] == 1700000000.0 + 1509
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.ReadScalars(pb.ReadScalarsRequest(run_id="no-such-run"), timeout=TIMEOUT))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        # Progress survives a restart (it is read from the file, not from memory).
        server.stop()
        server.start()
    channel, stub = stub_of(server)
    with channel:
        progress = stub.GetProgress(pb.GetProgressRequest(writer_id=["scalars", "good"]), timeout=TIMEOUT)
        assert (list(progress.seq), list(progress.source_offset)) == ([2, 2], [0, 200])


def test_reads_need_a_token_that_may_read_the_run(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        "reader-token-0123456789 read\nwriter-token-0123456789 write:media\nother-token-0123456789 write:elsewhere\n"
    )
    server = ServerProcess(tmp_path / "data", ("--tokens", str(tokens))).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.IngestStub(channel)

            def auth(token: str) -> tuple[tuple[str, str]]:
                return (("authorization", f"Bearer {token}"),)

            stub.OpenRun(
                pb.OpenRunRequest(run_id=RUN, project="media"),
                timeout=TIMEOUT,
                metadata=auth("writer-token-0123456789"),
            )
            request = pb.ReadScalarsRequest(run_id=RUN)
            for token in ("reader-token-0123456789", "writer-token-0123456789"):
                assert list(stub.ReadScalars(request, timeout=TIMEOUT, metadata=auth(token))) == []
            for token, code in (
                ("other-token-0123456789", grpc.StatusCode.PERMISSION_DENIED),
                ("nobody-0123456789abcdef", grpc.StatusCode.UNAUTHENTICATED),
            ):
                with pytest.raises(grpc.RpcError) as caught:
                    list(stub.ReadScalars(request, timeout=TIMEOUT, metadata=auth(token)))
                assert caught.value.code() == code
            progress = pb.GetProgressRequest(writer_id=["w"])
            assert list(stub.GetProgress(progress, timeout=TIMEOUT, metadata=auth("other-token-0123456789")).seq) == [0]
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetProgress(progress, timeout=TIMEOUT)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop()
