"""Input hardening: thousands of malformed messages against one live `runstream serve`.

One server serves the whole module and is never restarted. Every malformed message must get either an
ack (it happened to be valid) or a clear gRPC status (a known code with a non-empty message). A good
client writes known batches before, between (every few hundred fuzz messages) and after each fuzzing
test, and each test ends by checking that the server is the same live process and that its SQL API
returns exactly the good client's points so far; so the tests hold in any order or selection. When
the module is done, the server must stop cleanly (exit 0), its database file must hold exactly the good
client's points, and its log no traceback.

Fuzzed batches that happen to be valid land in their own run ("fuzz-run") under fuzz writer ids, so
they can never touch the good client's run or its (writer_id, seq) sequence.
"""

from __future__ import annotations

import json
import random
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from support import ServerProcess

TIMEOUT = 15.0
SEED = 20_251_127
RAW_WRITES = 2_000
HYPOTHESIS_BATCHES = 1_000
RAW_UNARY_EACH = 500
GOOD_EVERY = 250  # fuzz messages between two good batches
GOOD_POINTS_PER_BATCH = 20
FUZZ_RUN = "fuzz-run"
GOOD_RUN = "good-run"
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
# A malformed message may be refused with one of these; anything else (INTERNAL, UNKNOWN, UNAVAILABLE,
# DEADLINE_EXCEEDED, ...) is a bug: the server crashed, hung, or failed to say what was wrong.
ALLOWED_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


def u4(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def i8(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()


def f8(values: list[float]) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


def identity(raw: bytes) -> bytes:
    return raw


@dataclass(frozen=True)
class Finding:
    """A message whose outcome was not an ack nor a clear status."""

    method: str
    payload: bytes
    outcome: str

    def __str__(self) -> str:
        return f"{self.method}: {self.outcome}; input ({len(self.payload)} bytes) = {self.payload[:200]!r}"


@dataclass
class Harness:
    server: ServerProcess
    pid: int
    channel: grpc.Channel
    stub: pb_grpc.IngestStub
    good_writer: str = field(default_factory=lambda: f"good-{uuid.uuid4().hex}")
    good_seq: int = 0
    expected: list[tuple[str, int, float, float]] = field(default_factory=list)  # tag, step, wall_time, value
    tried: int = 0
    acked: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def write_good(self) -> None:
        """One batch of known points from the good client; it must be acknowledged."""
        self.good_seq += 1
        base = (self.good_seq - 1) * GOOD_POINTS_PER_BATCH
        steps = list(range(base, base + GOOD_POINTS_PER_BATCH))
        walls = [1.7e9 + s for s in steps]
        values = [s * 0.5 - 3.25 for s in steps]
        tags = ["good/loss", "good/lr"]
        tag_index = [s % 2 for s in steps]
        batch = pb.Batch(
            run_id=GOOD_RUN,
            writer_id=self.good_writer,
            seq=self.good_seq,
            tags=tags,
            scalars=pb.Scalars(tag_index=u4(tag_index), step=i8(steps), wall_time=f8(walls), value=f8(values)),
        )
        acks = list(self.stub.Write(iter([batch]), timeout=TIMEOUT))
        assert [(a.writer_id, a.seq, a.duplicate) for a in acks] == [(self.good_writer, self.good_seq, False)]
        self.expected += [(tags[t], s, w, v) for t, s, w, v in zip(tag_index, steps, walls, values, strict=True)]

    def judge(self, method: str, payload: bytes, call: Callable[[], int]) -> None:
        """Send one fuzz message (`call` returns how many acks/replies it got) and check its outcome."""
        self.tried += 1
        try:
            replies = call()
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call), error
            code, details = error.code(), error.details() or ""
            self.codes[code.name] = self.codes.get(code.name, 0) + 1
            if code not in ALLOWED_CODES or not details.strip():
                self.findings.append(Finding(method, payload, f"{code.name} {details!r}"))
        else:
            self.codes["OK"] = self.codes.get("OK", 0) + 1
            if replies:
                self.acked += 1
            else:
                self.findings.append(Finding(method, payload, "stream ended OK with neither an ack nor a status"))
        if self.tried % GOOD_EVERY == 0:
            self.write_good()

    def write_raw(self, payload: bytes) -> None:
        write = self.channel.stream_stream(
            "/runstream.v1.Ingest/Write", request_serializer=identity, response_deserializer=pb.WriteAck.FromString
        )
        self.judge("Write", payload, lambda: len(list(write(iter([payload]), timeout=TIMEOUT))))

    def write_batch(self, batch: pb.Batch) -> None:
        self.judge(
            "Write", batch.SerializeToString(), lambda: len(list(self.stub.Write(iter([batch]), timeout=TIMEOUT)))
        )

    def unary_raw(self, method: str, payload: bytes, reply: Callable[[bytes], object]) -> None:
        call = self.channel.unary_unary(
            f"/runstream.v1.Ingest/{method}", request_serializer=identity, response_deserializer=reply
        )
        self.judge(method, payload, lambda: (call(payload, timeout=TIMEOUT), 1)[1])

    def assert_no_findings(self) -> None:
        listed = "\n".join(str(f) for f in self.findings[:10])
        assert not self.findings, f"{len(self.findings)} message(s) without a clear status:\n{listed}"

    def good_points(self) -> list[tuple[str, int, float, float]]:
        """The good client's points as the live server answers them through POST /api/sql."""
        query = f"SELECT tag, step, wall_time, value FROM scalars WHERE run_id = '{GOOD_RUN}'"
        request = urllib.request.Request(
            f"{self.server.http_url}/api/sql",
            data=json.dumps({"sql": query, "limit": 100_000}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            answer = json.load(reply)
        assert not answer["truncated"]
        return sorted((tag, step, wall, value) for tag, step, wall, value in answer["rows"])

    def assert_survived(self) -> None:
        """After a fuzzing test: the same process serves, and holds exactly the good client's points."""
        self.assert_no_findings()
        self.write_good()
        process = self.server.process
        assert process is not None and process.poll() is None, "the server died"
        assert process.pid == self.pid, "the server is not the process the module started"
        assert self.server.health()["status"] == "ok"
        assert self.good_points() == sorted(self.expected)  # the same count, no extra row, the same values


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    server = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data").start()
    assert server.process is not None
    channel = grpc.insecure_channel(server.address, options=CHANNEL_OPTIONS)
    stub = pb_grpc.IngestStub(channel)
    for run_id in (GOOD_RUN, FUZZ_RUN):
        reply = stub.OpenRun(pb.OpenRunRequest(project="fuzz", run_id=run_id, world_size=1), timeout=TIMEOUT)
        assert (reply.run_id, reply.created) == (run_id, True)
    h = Harness(server=server, pid=server.process.pid, channel=channel, stub=stub)
    h.write_good()  # before the fuzzing
    yield h
    channel.close()
    assert server.stop() == 0, server.log()
    got = sorted(server.sql(f"SELECT tag, step, wall_time, value FROM scalars WHERE run_id = '{GOOD_RUN}'"))
    print(
        f"\nfuzz: malformed messages tried={h.tried} (acked as valid={h.acked}), "
        f"outcomes={dict(sorted(h.codes.items()))}, good batches={h.good_seq}, good points={len(h.expected)}"
    )
    assert got == sorted(h.expected), "the database file does not hold exactly the good client's points"
    assert "Traceback" not in server.log(), "the server logged a traceback"


# -- (a) random bytes and mutations of a valid batch, raw on Write -------------------------------------------


def valid_fuzz_batch() -> bytes:
    return pb.Batch(
        run_id=FUZZ_RUN,
        writer_id="fuzz-mutant",
        seq=1,
        tags=["fuzz/a", "fuzz/b"],
        scalars=pb.Scalars(
            tag_index=u4([0, 1, 0]), step=i8([1, 2, 3]), wall_time=f8([1.0, 2.0, 3.0]), value=f8([0.5, 1.5, 2.5])
        ),
        histograms=pb.Histograms(
            tag_index=u4([1]),
            step=i8([1]),
            wall_time=f8([1.0]),
            bucket_count=u4([2]),
            edges=f8([0.0, 1.0, 2.0]),
            counts=f8([3.0, 4.0]),
            min=f8([0.0]),
            max=f8([2.0]),
            sum=f8([5.0]),
            sum_squares=f8([9.0]),
        ),
    ).SerializeToString()


def mutate(rng: random.Random, base: bytes) -> bytes:
    data = bytearray(base)
    kind = rng.randrange(4)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        data = data[: rng.randrange(len(data))]
    elif kind == 2:  # splice random bytes in
        i = rng.randrange(len(data) + 1)
        data[i : i + rng.randint(0, 16)] = rng.randbytes(rng.randint(1, 64))
    else:  # splice two pieces of the valid message
        i, j = sorted(rng.randrange(len(data) + 1) for _ in range(2))
        data = data[:j] + data[i:]
    return bytes(data)


def test_random_bytes_and_mutated_batches_on_raw_write(harness: Harness) -> None:
    rng = random.Random(SEED)
    base = valid_fuzz_batch()
    before = harness.tried
    for n in range(RAW_WRITES):
        if n % 2 == 0:
            payload = rng.randbytes(rng.randint(0, 2_000))
        else:
            payload = mutate(rng, base)
        harness.write_raw(payload)
    assert harness.tried - before == RAW_WRITES
    harness.assert_survived()


# -- (b) Hypothesis over pb.Batch, through the normal stub ---------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
tags = st.one_of(
    st.text(max_size=20),
    st.just(""),
    st.text(min_size=250, max_size=300),
    st.just("x" * 100_000),
    st.sampled_from(["fuzz/a", "é" * 128, "é" * 129, "\x00", "\ud7ff\U0010ffff"]),
)


def column(element: st.SearchStrategy[int] | st.SearchStrategy[float], dtype: str) -> st.SearchStrategy[bytes]:
    """Random bytes, or a well-formed column of random (often absurd) values."""
    packed = st.lists(element, max_size=6).map(lambda values: np.asarray(values, dtype=dtype).tobytes())
    return st.one_of(st.binary(max_size=64), packed)


floats = st.floats(allow_nan=True, allow_infinity=True)
tag_index = column(st.integers(0, 2**32 - 1), "<u4")
steps = column(st.integers(-(2**63), 2**63 - 1), "<i8")
f8s = column(floats, "<f8")
bucket_count = column(st.sampled_from([0, 1, 2, 3, 2**31, 2**32 - 1]), "<u4")
images = st.one_of(
    st.binary(max_size=256),
    st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b""]).flatmap(
        lambda head: st.binary(max_size=200).map(lambda tail: head + tail)
    ),
)

batches = st.builds(
    pb.Batch,
    run_id=st.one_of(st.just(FUZZ_RUN), st.just(""), st.text(max_size=200)),
    rank=u32,
    writer_id=st.one_of(st.just("fuzz-writer"), st.text(max_size=200)),
    seq=u64,
    tags=st.lists(tags, max_size=5),
    scalars=st.one_of(st.none(), st.builds(pb.Scalars, tag_index=tag_index, step=steps, wall_time=f8s, value=f8s)),
    histograms=st.one_of(
        st.none(),
        st.builds(
            pb.Histograms,
            tag_index=tag_index,
            step=steps,
            wall_time=f8s,
            bucket_count=bucket_count,
            edges=f8s,
            counts=f8s,
            min=f8s,
            max=f8s,
            sum=f8s,
            sum_squares=f8s,
        ),
    ),
    images=st.one_of(
        st.none(),
        st.builds(pb.Images, tag_index=tag_index, step=steps, wall_time=f8s, data=st.lists(images, max_size=3)),
    ),
    texts=st.one_of(
        st.none(),
        st.builds(
            pb.Texts, tag_index=tag_index, step=steps, wall_time=f8s, text=st.lists(st.text(max_size=50), max_size=3)
        ),
    ),
)


def test_hypothesis_batches_through_the_stub(harness: Harness) -> None:
    @settings(
        max_examples=HYPOTHESIS_BATCHES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch=batches)
    def send(batch: pb.Batch) -> None:
        if batch.writer_id == harness.good_writer:  # never collide with the good client's idempotency key
            batch.writer_id = "fuzz-writer"
        harness.write_batch(batch)
        harness.assert_no_findings()

    before = harness.tried
    send()
    assert harness.tried - before >= HYPOTHESIS_BATCHES
    harness.assert_survived()


# -- (c) random bytes on OpenRun and FinishRun ---------------------------------------------------------------


UNARY_METHODS = [("OpenRun", pb.OpenRunResponse.FromString), ("FinishRun", pb.FinishRunResponse.FromString)]


@pytest.mark.parametrize(("method", "reply"), UNARY_METHODS, ids=[m for m, _ in UNARY_METHODS])
def test_random_bytes_on_unary_methods(harness: Harness, method: str, reply: Callable[[bytes], object]) -> None:
    rng = random.Random(f"{SEED}-{method}")
    harness.findings.clear()
    harness.unary_raw(method, b"\xff\xff\xff\xff\xff", reply)  # the smallest reproduction, first
    for _ in range(RAW_UNARY_EACH - 1):
        harness.unary_raw(method, rng.randbytes(rng.randint(0, 2_000)), reply)
    findings = [f for f in harness.findings if f.method == method]
    harness.findings.clear()
    print(f"\nfuzz {method}: {len(findings)} of {RAW_UNARY_EACH} without a clear status; first: {findings[:1]}")
    assert not findings, f"{len(findings)} {method} request(s) without a clear status; first: {findings[0]}"
    harness.assert_survived()
