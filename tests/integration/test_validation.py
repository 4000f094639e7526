"""Wire validation (service/runstream_service/validate.py) against a real `runstream serve` and its DuckDB file.

tests/unit/test_validate.py holds the full table of rules; here one rule of each group goes through a live
server: a good client writes, a bad batch is rejected on its own stream with INVALID_ARGUMENT (details
"batch SEQ: FIELD: ...", trailing metadata `runstream-rejected-seq`), the good client writes again on the
stream it kept open, and a corrected batch follows. One server serves the whole module; every
acknowledged batch is recorded in a ledger. When the module's tests are done (whichever ran: the check
does not depend on their order or on `-k`), the module's fixture stops the server and checks, run by run,
that the database holds exactly the acknowledged points, no other run, no trace of any rejected batch,
and that the server logged no traceback.

Rejected batches carry markers: tags starting with "bad-", steps 666000..666999, value 666.0.
"""

from __future__ import annotations

import io
import math
import queue
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc
import numpy as np
import pytest
from PIL import Image

from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from runstream_service.validate import decode_batch
from support import ServerProcess

REJECTED_SEQ_KEY = "runstream-rejected-seq"
TIMEOUT = 30.0
MAX_MESSAGE_BYTES = 64 << 20
MAX_IMAGE_BYTES = 16 << 20
BAD_STEPS = (666_001, 666_002)
BAD_VALUE = 666.0
WIDE_TAG = "é" * 128  # exactly 256 bytes of UTF-8: the longest tag allowed
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


# -- images -------------------------------------------------------------------------------------


def encode_image(fmt: str, width: int = 6, height: int = 4) -> bytes:
    pixels = (np.arange(width * height * 3) * 37 % 251).astype(np.uint8).reshape(height, width, 3)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and a valid IHDR chunk (8-bit RGB), nothing else."""
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


PNG = encode_image("PNG")
JPEG = encode_image("JPEG")
GIF = encode_image("GIF")
PNG_BAD_PIXEL_DATA = png_header(6, 4) + png_chunk(b"IDAT", b"this is not a zlib stream" * 3) + png_chunk(b"IEND", b"")
PNG_TOO_MANY_PIXELS = png_header(9000, 9000) + png_chunk(b"IEND", b"")  # 81M pixels > 8192 * 8192
PNG_TOO_MANY_BYTES = PNG + b"\x00" * (MAX_IMAGE_BYTES + 1 - len(PNG))


# -- batch content and the rows it must become ------------------------------------------------------


def u4(values: Sequence[int]) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def i8(values: Sequence[int]) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()


def f8(values: Sequence[float]) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


@dataclass(frozen=True)
class Histogram:
    tag: int
    step: int
    wall_time: float
    edges: tuple[float, ...]
    counts: tuple[float, ...]

    @property
    def stats(self) -> tuple[float, float, float, float]:
        """min, max, sum, sum_squares as sent (the server stores them as given)."""
        return self.edges[0], self.edges[-1], 1.5 * sum(self.counts), 2.5 * sum(self.counts)


@dataclass(frozen=True)
class Content:
    tags: tuple[str, ...]
    scalars: tuple[tuple[int, int, float, float], ...] = ()  # tag index, step, wall time, value
    histograms: tuple[Histogram, ...] = ()
    images: tuple[tuple[int, int, float, bytes], ...] = ()  # tag index, step, wall time, encoded image


def good_content(prefix: str, base: int) -> Content:
    """Valid points with edge cases that must be kept: NaN/Inf values, a 2**62 step, a 256-byte tag,
    a second histogram whose first edge is below the first histogram's last edge, a PNG and a JPEG."""
    tags = (f"{prefix}/loss", WIDE_TAG)
    wall = 1.7e9 + base
    return Content(
        tags=tags,
        scalars=(
            (0, base, wall, 0.25),
            (1, base, wall, math.nan),
            (0, base + 1, wall + 1, math.inf),
            (1, base + 1, wall + 1, -math.inf),
            (0, base + 2**62, wall + 2, 1e300),
        ),
        histograms=(
            Histogram(0, base, wall, (0.0, 1.0, 2.5, 3.0), (1.0, 0.0, 3.0)),
            Histogram(1, base, wall, (-5.0, -4.0), (7.0,)),
        ),
        images=((0, base, wall, PNG), (1, base, wall, JPEG)),
    )


def bad_content(marker: str) -> Content:
    """Valid points carrying the markers of a rejected batch; rules below break one thing in it.

    Layout the mutations rely on: 2 tags, 2 scalars, 2 histograms (3 and 1 buckets: 4 counts,
    6 edges), 2 images (PNG, JPEG)."""
    s0, s1 = BAD_STEPS
    return Content(
        tags=(marker, f"{marker}/2"),
        scalars=((0, s0, 1.0, BAD_VALUE), (1, s1, 1.0, BAD_VALUE)),
        histograms=(
            Histogram(0, s0, 1.0, (0.0, 1.0, 2.0, 3.0), (1.0, 2.0, 3.0)),
            Histogram(1, s1, 1.0, (10.0, 20.0), (5.0,)),
        ),
        images=((0, s0, 1.0, PNG), (1, s1, 1.0, JPEG)),
    )


def encode(content: Content, run_id: str, writer_id: str, seq: int, rank: int = 0) -> pb.Batch:
    batch = pb.Batch(run_id=run_id, rank=rank, writer_id=writer_id, seq=seq, tags=list(content.tags))
    if content.scalars:
        tag, step, wall, value = zip(*content.scalars, strict=True)
        batch.scalars.CopyFrom(pb.Scalars(tag_index=u4(tag), step=i8(step), wall_time=f8(wall), value=f8(value)))
    if hs := content.histograms:
        batch.histograms.CopyFrom(
            pb.Histograms(
                tag_index=u4([h.tag for h in hs]),
                step=i8([h.step for h in hs]),
                wall_time=f8([h.wall_time for h in hs]),
                bucket_count=u4([len(h.counts) for h in hs]),
                edges=f8([e for h in hs for e in h.edges]),
                counts=f8([c for h in hs for c in h.counts]),
                min=f8([h.stats[0] for h in hs]),
                max=f8([h.stats[1] for h in hs]),
                sum=f8([h.stats[2] for h in hs]),
                sum_squares=f8([h.stats[3] for h in hs]),
            )
        )
    if content.images:
        tag, step, wall, data = zip(*content.images, strict=True)
        batch.images.CopyFrom(pb.Images(tag_index=u4(tag), step=i8(step), wall_time=f8(wall), data=list(data)))
    return batch


def image_size(blob: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(blob)) as image:
        return image.size


Row = tuple[Any, ...]


@dataclass
class Rows:
    """What the views must hold for one run."""

    scalars: list[Row] = field(default_factory=list)  # tag, step, rank, wall_time, value
    histograms: list[Row] = field(default_factory=list)  # tag, step, rank, wall_time, count, stats, lists
    images: list[Row] = field(default_factory=list)  # tag, step, rank, wall_time, width, height, mime, data

    def add(self, content: Content, rank: int) -> None:
        tags = content.tags
        self.scalars += [(tags[t], step, rank, wall, value) for t, step, wall, value in content.scalars]
        self.histograms += [
            (tags[h.tag], h.step, rank, h.wall_time, sum(h.counts), *h.stats, list(h.edges), list(h.counts))
            for h in content.histograms
        ]
        self.images += [
            (tags[t], step, rank, wall, *image_size(data), "image/png" if data == PNG else "image/jpeg", data)
            for t, step, wall, data in content.images
        ]


def canonical(rows: Sequence[Row]) -> list[Row]:
    """Rows sorted by (tag, step, rank), NaN made comparable."""

    def fix(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    return sorted((tuple(fix(v) for v in row) for row in rows), key=lambda row: (row[0], row[1], row[2]))


# -- the client ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    code: grpc.StatusCode
    details: str
    trailing: dict[str, str]


def rejection_of(error: grpc.RpcError) -> Rejection:
    assert isinstance(error, grpc.Call), error
    trailing = {key: str(value) for key, value in (error.trailing_metadata() or ())}
    return Rejection(error.code(), error.details() or "", trailing)


def ack(writer_id: str, seq: int, duplicate: bool = False) -> pb.WriteAck:
    return pb.WriteAck(writer_id=writer_id, seq=seq, duplicate=duplicate)


class OpenStream:
    """A Write stream kept open across other calls: `send` one batch and wait for its ack."""

    def __init__(self, stub: pb_grpc.IngestStub) -> None:
        self._outbox: queue.SimpleQueue[pb.Batch | None] = queue.SimpleQueue()
        self._call = stub.Write(iter(self._outbox.get, None), timeout=TIMEOUT)

    def send(self, batch: pb.Batch) -> pb.WriteAck:
        self._outbox.put(batch)
        return next(self._call)

    def __enter__(self) -> OpenStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._outbox.put(None)
        if kind is not None:
            self._call.cancel()
            return
        assert list(self._call) == [], "acks for batches that were not sent"


class Ingest:
    """A raw gRPC client of the module's server, and the ledger of what the server acknowledged."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.channel = grpc.insecure_channel(server.address, options=CHANNEL_OPTIONS)
        self.stub = pb_grpc.IngestStub(self.channel)
        self.expected: dict[str, Rows] = {}  # run id -> rows acknowledged in that run

    def close(self) -> None:
        self.channel.close()

    def open_run(self, run_id: str) -> str:
        reply = self.stub.OpenRun(
            pb.OpenRunRequest(project="validation", name=run_id, run_id=run_id, world_size=1, start_time=1.7e9),
            timeout=TIMEOUT,
        )
        assert (reply.run_id, reply.created) == (run_id, True)
        self.expected[run_id] = Rows()
        return run_id

    def record(self, run_id: str, content: Content, rank: int = 0) -> None:
        self.expected[run_id].add(content, rank)

    def write(self, batches: Sequence[pb.Batch]) -> tuple[list[pb.WriteAck], Rejection | None]:
        """One Write stream: send `batches`, collect the acks until the stream ends."""
        acks: list[pb.WriteAck] = []
        try:
            for reply in self.stub.Write(iter(batches), timeout=TIMEOUT):
                acks.append(reply)
        except grpc.RpcError as error:
            return acks, rejection_of(error)
        return acks, None

    def stream(self) -> OpenStream:
        return OpenStream(self.stub)


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    server = ServerProcess(tmp_path_factory.mktemp("validation") / "data").start()
    client = Ingest(server)
    yield client
    client.close()
    assert server.stop() == 0, server.log()
    assert_database_holds_exactly(server, client.expected)


# -- the rules -------------------------------------------------------------------------------------------

Mutation = Callable[[pb.Batch], None]


def column(group: str, name: str, raw: bytes) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        setattr(getattr(batch, group), name, raw)

    return mutate


def extend(group: str, name: str, extra: bytes) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        message = getattr(batch, group)
        setattr(message, name, getattr(message, name) + extra)

    return mutate


def tag(index: int, value: str) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        batch.tags[index] = value

    return mutate


def image(index: int, blob: bytes) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        batch.images.data[index] = blob

    return mutate


def identity(name: str, value: str | int) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        setattr(batch, name, value)

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        for m in mutations:
            m(batch)

    return mutate


@dataclass(frozen=True)
class Rule:
    id: str
    mutate: Mutation
    field: str  # as named in the status details


S0, S1 = BAD_STEPS
RULES = [  # one of each group of tests/unit/test_validate.py's table, and the one only a server can check
    Rule("column-lengths-disagree", column("scalars", "value", f8([1.0, 2.0, 3.0])), "scalars"),
    Rule("bytes-not-whole-elements", extend("histograms", "edges", b"\x00" * 3), "histograms.edges"),
    Rule("tag-258-bytes-in-129-characters", tag(1, "é" * 129), "tags[1]"),
    Rule("tag-index-out-of-range", column("images", "tag_index", u4([0, 2**32 - 1])), "images.tag_index"),
    Rule("step-negative", column("scalars", "step", i8([-(2**63), S1])), "scalars.step"),
    Rule(
        "histogram-edges-not-ascending",
        column("histograms", "edges", f8([0, 1, 2, 3, 20, 10])),
        "histograms.edges",
    ),
    Rule("histogram-counts-negative", column("histograms", "counts", f8([1, -1, 3, 5])), "histograms.counts"),
    Rule("histogram-counts-not-edges-minus-one", column("histograms", "counts", f8([1, 2, 3])), "histograms.counts"),
    Rule(
        "histogram-bucket-count-zero",
        both(
            column("histograms", "bucket_count", u4([0, 1])),
            column("histograms", "counts", f8([5])),
            column("histograms", "edges", f8([0, 10, 20])),
        ),
        "histograms.bucket_count",
    ),
    Rule("image-png-corrupt-pixel-data", image(0, PNG_BAD_PIXEL_DATA), "images.data[0]"),
    Rule("seq-zero", identity("seq", 0), "seq"),
    Rule("run-id-not-opened", identity("run_id", "never-opened"), "run_id"),
]


def assert_rejected(rejection: Rejection | None, seq: int, field_name: str) -> None:
    assert rejection is not None, "the bad batch was accepted"
    assert rejection.code == grpc.StatusCode.INVALID_ARGUMENT, rejection
    assert rejection.details.startswith(f"batch {seq}: {field_name}: "), rejection.details
    assert rejection.trailing.get(REJECTED_SEQ_KEY) == str(seq), rejection.trailing


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_bad_batch_is_rejected_naming_the_field_and_the_server_keeps_serving(ingest: Ingest, rule: Rule) -> None:
    run_id = ingest.open_run(f"rule-{rule.id}")
    good_writer, bad_writer = f"good-{rule.id}", f"bad-{rule.id}"
    with ingest.stream() as good:
        first = good_content("good", 0)
        assert good.send(encode(first, run_id, good_writer, 1)) == ack(good_writer, 1)
        ingest.record(run_id, first)

        # On a stream of its own: a good batch of the bad writer, then the bad batch.
        prelude = good_content("pre", 100)
        bad = encode(bad_content(f"bad-{rule.id}"), run_id, bad_writer, 7)
        rule.mutate(bad)
        acks, rejection = ingest.write([encode(prelude, run_id, bad_writer, 6), bad])
        if acks:
            ingest.record(run_id, prelude)
        assert acks == [ack(bad_writer, 6)]
        assert_rejected(rejection, bad.seq, rule.field)

        # The good client's stream was not disturbed.
        second = good_content("good", 10)
        assert good.send(encode(second, run_id, good_writer, 2)) == ack(good_writer, 2)
        ingest.record(run_id, second)

    # The rejected seq was not recorded as committed: the corrected batch goes in.
    fixed = good_content("fixed", 300)
    acks, rejection = ingest.write([encode(fixed, run_id, bad_writer, 7)])
    assert rejection is None
    assert acks == [ack(bad_writer, 7)]
    ingest.record(run_id, fixed)


def test_batch_with_good_scalars_and_one_bad_histogram_writes_nothing_of_it(ingest: Ingest) -> None:
    run_id = ingest.open_run("mixed")
    mixed = Content(
        tags=("bad-mixed/loss", "bad-mixed/weights"),
        scalars=((0, 1, 1.0, 0.5), (0, 2, 2.0, 0.75), (1, 3, 3.0, 1.25)),
        histograms=(
            Histogram(1, 1, 1.0, (0.0, 1.0, 2.0), (3.0, 4.0)),
            Histogram(1, 2, 2.0, (0.0, 2.0, 1.0), (3.0, 4.0)),  # edges descend
        ),
        images=((0, 1, 1.0, PNG),),
    )
    acks, rejection = ingest.write([encode(mixed, run_id, "mixed", 1)])
    assert acks == []
    assert_rejected(rejection, 1, "histograms.edges")
    assert rejection is not None and "histogram 1 " in rejection.details

    fixed = good_content("fixed", 0)
    assert ingest.write([encode(fixed, run_id, "mixed", 1)]) == ([ack("mixed", 1)], None)
    ingest.record(run_id, fixed)


def test_batches_behind_a_rejected_one_on_its_stream_are_not_acknowledged(ingest: Ingest) -> None:
    run_id = ingest.open_run("pipelined")
    one, three = good_content("one", 0), good_content("three", 20)
    bad = encode(bad_content("bad-pipelined"), run_id, "pipeliner", 2)
    column("scalars", "step", i8([S0, -1]))(bad)
    acks, rejection = ingest.write([encode(one, run_id, "pipeliner", 1), bad, encode(three, run_id, "pipeliner", 3)])
    if acks:
        ingest.record(run_id, one)
    assert acks == [ack("pipeliner", 1)]
    assert_rejected(rejection, 2, "scalars.step")

    # Sent again, batch 3 is acknowledged (whether or not it had been written) and stored once.
    acks, rejection = ingest.write([encode(three, run_id, "pipeliner", 3)])
    assert rejection is None
    assert [(a.writer_id, a.seq) for a in acks] == [("pipeliner", 3)]
    ingest.record(run_id, three)


def test_replayed_batch_is_acknowledged_each_time_and_stored_once(ingest: Ingest) -> None:
    run_id = ingest.open_run("replay")
    first, second, other = good_content("first", 0), good_content("second", 10), good_content("other", 20)
    batch1 = encode(first, run_id, "replayer", 1)
    assert ingest.write([batch1]) == ([ack("replayer", 1)], None)
    ingest.record(run_id, first)
    # The same (writer_id, seq) again on a new stream: acknowledged as a duplicate.
    assert ingest.write([batch1]) == ([ack("replayer", 1, duplicate=True)], None)

    # Twice in a row on one stream.
    batch2 = encode(second, run_id, "replayer", 2)
    assert ingest.write([batch2, batch2]) == ([ack("replayer", 2), ack("replayer", 2, duplicate=True)], None)
    ingest.record(run_id, second)

    # An older seq after a newer one, and the same seq from another writer (a different batch).
    assert ingest.write([batch1]) == ([ack("replayer", 1, duplicate=True)], None)
    assert ingest.write([encode(other, run_id, "replayer-2", 1)]) == ([ack("replayer-2", 1)], None)
    ingest.record(run_id, other)


def test_oversized_message_is_refused_and_the_server_keeps_serving(ingest: Ingest) -> None:
    run_id = ingest.open_run("oversized")
    n = 2_500_000  # 28 bytes per point: 70 MB > 64 MiB, every column valid
    big = pb.Batch(
        run_id=run_id,
        writer_id="big",
        seq=1,
        tags=["bad-oversized"],
        scalars=pb.Scalars(
            tag_index=np.zeros(n, "<u4").tobytes(),
            step=np.arange(n, dtype="<i8").tobytes(),
            wall_time=np.ones(n, "<f8").tobytes(),
            value=np.full(n, BAD_VALUE, "<f8").tobytes(),
        ),
    )
    assert big.ByteSize() > MAX_MESSAGE_BYTES
    acks, rejection = ingest.write([big])
    assert acks == []
    assert rejection is not None, "a message over 64 MiB was accepted"
    assert rejection.code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT), rejection

    after = good_content("after", 0)
    assert ingest.write([encode(after, run_id, "big", 1)]) == ([ack("big", 1)], None)
    ingest.record(run_id, after)


# -- the database, after the server stopped -------------------------------------------------------------


def assert_database_holds_exactly(stopped: ServerProcess, expected: dict[str, Rows]) -> None:
    """Run by run, exactly the acknowledged points; no other run; no trace of a rejected batch."""
    assert sorted(r for (r,) in stopped.sql("SELECT run_id FROM runs")) == sorted(expected)
    for run_id, rows in expected.items():
        scalars = stopped.sql("SELECT tag, step, rank, wall_time, value FROM scalars WHERE run_id = ?", [run_id])
        histograms = stopped.sql(
            "SELECT tag, step, rank, wall_time, count, min, max, sum, sum_squares, bucket_limits, bucket_counts "
            "FROM histograms WHERE run_id = ?",
            [run_id],
        )
        images = stopped.sql(
            "SELECT tag, step, rank, wall_time, width, height, mime, data FROM images WHERE run_id = ?", [run_id]
        )
        assert canonical(scalars) == canonical(rows.scalars), run_id
        assert canonical(histograms) == canonical(rows.histograms), run_id
        assert canonical(images) == canonical(rows.images), run_id
    marked = "tag LIKE 'bad-%' OR step BETWEEN 666000 AND 666999 OR run_id = '' OR run_id LIKE 'never-opened%'"
    for view in ("scalars", "histograms", "images"):
        assert {r for (r,) in stopped.sql(f"SELECT DISTINCT run_id FROM {view}")} <= set(expected), view
        value = " OR value = 666" if view == "scalars" else ""
        assert stopped.sql(f"SELECT run_id, tag, step FROM {view} WHERE {marked}{value} LIMIT 5") == [], view
    assert "Traceback" not in stopped.log()


# -- replays across a restart, and batches that are not protobuf at all -------------------------------------


def test_replay_after_a_restart_is_still_recognised(server: ServerProcess) -> None:
    content1, content2 = good_content("one", 0), good_content("two", 10)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.IngestStub(channel)
        stub.OpenRun(pb.OpenRunRequest(run_id="restart", world_size=1), timeout=TIMEOUT)
        assert list(stub.Write(iter([encode(content1, "restart", "w", 1)]), timeout=TIMEOUT)) == [ack("w", 1)]
    server.stop()

    again = ServerProcess(server.data_dir).start()
    try:
        with grpc.insecure_channel(again.address) as channel:
            stub = pb_grpc.IngestStub(channel)
            batches = [encode(content1, "restart", "w", 1), encode(content2, "restart", "w", 2)]
            assert list(stub.Write(iter(batches), timeout=TIMEOUT)) == [ack("w", 1, duplicate=True), ack("w", 2)]
    finally:
        again.stop()
    expected = Rows()
    expected.add(content1, 0)
    expected.add(content2, 0)
    got = again.sql("SELECT tag, step, rank, wall_time, value FROM scalars WHERE run_id = 'restart'")
    assert canonical(got) == canonical(expected.scalars)


def _undecodable_batches() -> list[Any]:
    tagged = pb.Batch(run_id="r", writer_id="w", seq=1, tags=["TAGTAG"]).SerializeToString()
    identified = pb.Batch(run_id="RUNRUN", writer_id="w", seq=1, tags=["t"]).SerializeToString()
    return [
        pytest.param(tagged.replace(b"TAGTAG", b"\xff\xfe\xfd\xfc\xfb\xfa"), id="tag-not-utf8"),
        pytest.param(identified.replace(b"RUNRUN", b"\xc3\x28\xc3\x28\xc3\x28"), id="run-id-not-utf8"),
        pytest.param(b"\xff\xff\xff\xff\xff", id="not-a-protobuf-message"),
    ]


def _write_raw(channel: grpc.Channel, payload: bytes) -> tuple[list[pb.WriteAck], Rejection | None]:
    write = channel.stream_stream(
        "/runstream.v1.Ingest/Write",
        request_serializer=lambda raw: raw,
        response_deserializer=pb.WriteAck.FromString,
    )
    acks: list[pb.WriteAck] = []
    try:
        for reply in write(iter([payload]), timeout=TIMEOUT):
            acks.append(reply)
    except grpc.RpcError as error:
        return acks, rejection_of(error)
    return acks, None


@pytest.mark.parametrize("payload", _undecodable_batches())
def test_undecodable_batch_gets_invalid_argument(server: ServerProcess, payload: bytes) -> None:
    with grpc.insecure_channel(server.address) as channel:
        acks, rejection = _write_raw(channel, payload)
    assert acks == []
    assert rejection is not None, "Write ended with OK although its batch was neither acknowledged nor rejected"
    assert rejection.code == grpc.StatusCode.INVALID_ARGUMENT, rejection
    assert "does not parse as runstream.v1.Batch" in rejection.details


def test_undecodable_batch_writes_nothing_and_the_server_keeps_serving(server: ServerProcess) -> None:
    content = good_content("after", 0)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.IngestStub(channel)
        stub.OpenRun(pb.OpenRunRequest(run_id="r", world_size=1), timeout=TIMEOUT)
        for param in _undecodable_batches():
            acks, _ = _write_raw(channel, param.values[0])
            assert acks == []
        assert list(stub.Write(iter([encode(content, "r", "w", 1)]), timeout=TIMEOUT)) == [ack("w", 1)]
    server.stop()
    expected = Rows()
    expected.add(content, 0)
    assert canonical(server.sql("SELECT tag, step, rank, wall_time, value FROM scalars")) == canonical(expected.scalars)
    assert server.sql("SELECT count(*) FROM histograms")[0][0] == len(content.histograms)


def test_fixture_data_is_what_the_rules_assume() -> None:
    """The bad batches break exactly one rule: unmutated, the base batch is valid for the server's decoder."""
    base = encode(bad_content("bad-base"), "run", "writer", 7)
    decoded = decode_batch(base)
    assert decoded.histograms is not None and decoded.histograms.edges.size == 6
    assert len(PNG_TOO_MANY_BYTES) == MAX_IMAGE_BYTES + 1
    assert len(WIDE_TAG.encode()) == 256
    decode_batch(encode(good_content("good", 0), "run", "writer", 1))
