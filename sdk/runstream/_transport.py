"""What talking to a runstream server means, in one place: the `Transport` seam and its gRPC implementation.

`init()`, the sender, `runstream sync` and the TensorBoard importer reach the server only through a
`Transport`: open a run, stream batches and read their acks, finish a run. Errors come back as one
`TransportError` that carries the status code's name, the details and the trailing metadata the server
set (`runstream-retry-after` on RESOURCE_EXHAUSTED, `runstream-rejected-seq` on INVALID_ARGUMENT), so
the code that decides what to do (the sender's retries, `init()`'s messages) never sees gRPC. The seam
is also what lets the sender's logic be tested in-process with a fake transport.

`GrpcTransport` owns the channel options, TLS and the bearer-token metadata. It takes a list of
server addresses and uses the first; when a call fails with UNAVAILABLE it moves on to the next
address (round robin) for the following calls. With one address, as every caller passes today, that
changes nothing; several servers sharing one store (a DuckLake catalog) will use it for failover.
"""

from __future__ import annotations

import abc
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import grpc

from runstream._errors import RunstreamError
from runstream._settings import SdkConfig, resolve
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc

logger = logging.getLogger("runstream")

MAX_MESSAGE_BYTES = 64 << 20
RETRY_AFTER_KEY = "runstream-retry-after"  # trailing metadata of RESOURCE_EXHAUSTED: seconds to wait
REJECTED_SEQ_KEY = "runstream-rejected-seq"  # trailing metadata of INVALID_ARGUMENT: the refused batch
MAX_RETRY_AFTER = 60.0  # a server's hint is obeyed up to this many seconds


class TransportError(RunstreamError):
    """A call to the server failed: `code` is the gRPC status code's name ("UNAVAILABLE", ...)."""

    def __init__(self, code: str, details: str, trailing: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details
        self.trailing: dict[str, str] = dict(trailing or {})

    @property
    def unreachable(self) -> bool:
        """The server did not answer (as opposed to answering with a refusal)."""
        return self.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (at most MAX_RETRY_AFTER), if it said."""
        raw = self.trailing.get(RETRY_AFTER_KEY)
        if raw is None:
            return None
        try:
            return min(max(float(raw), 0.0), MAX_RETRY_AFTER)
        except ValueError:
            return None

    @property
    def rejected_seq(self) -> int | None:
        """The seq of the batch the server refused for good, if it said."""
        raw = self.trailing.get(REJECTED_SEQ_KEY)
        try:
            return int(raw) if raw else None
        except ValueError:
            return None


class AckStream(Protocol):
    """The acks of one Write call; iterating raises TransportError when the call ends in an error."""

    def __iter__(self) -> Iterator[pb.WriteAck]: ...

    def cancel(self) -> None: ...


class Transport(abc.ABC):
    """The three calls of the Ingest service, without gRPC in their signatures."""

    @property
    @abc.abstractmethod
    def server(self) -> str:
        """The address in use, for messages."""

    @abc.abstractmethod
    def open_run(self, request: pb.OpenRunRequest, timeout: float, wait_for_ready: bool = False) -> pb.OpenRunResponse:
        """Open (or join) a run; raises TransportError."""

    @abc.abstractmethod
    def write(self, requests: Iterator[pb.Batch]) -> AckStream:
        """Start a Write call that sends `requests` as they come; returns at once, without raising."""

    @abc.abstractmethod
    def finish_run(self, request: pb.FinishRunRequest, timeout: float) -> None:
        """Mark a rank of a run finished; raises TransportError."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; calls after this fail."""

    def read_scalars(self, run_id: str, timeout: float) -> list[pb.ScalarSeries]:
        """Every scalar series (tag and rank) the server stored for `run_id`; raises TransportError.
        Not abstract: a transport that only writes (a test's fake) need not answer it."""
        raise TransportError("UNIMPLEMENTED", f"{type(self).__name__} cannot read scalars back")

    def visdom_read(self, endpoint: str, body: bytes, timeout: float = 30.0) -> bytes:
        """What the server's Visdom endpoint `endpoint` answers to `body` (runstream.visdom.Visdom's
        reads); raises TransportError. Not abstract, as read_scalars."""
        raise TransportError("UNIMPLEMENTED", f"{type(self).__name__} cannot read Visdom windows")


class WriteStream:
    """One Write call on a transport: batches go in through a queue, acks come back on a reader thread.

    `on_ack` runs on the reader thread for every ack; `on_end` runs there once, when the call ends,
    with the error (None when the server closed the stream cleanly).
    """

    def __init__(
        self,
        transport: Transport,
        on_ack: Callable[[pb.WriteAck], None],
        on_end: Callable[[WriteStream, TransportError | None], None],
    ) -> None:
        self.requests: queue.SimpleQueue[pb.Batch | None] = queue.SimpleQueue()
        self.sent_upto = 0  # the seq of the last batch put on this stream
        self.alive = True
        self._on_ack = on_ack
        self._on_end = on_end
        self._call = transport.write(self._request_iterator())
        self._reader = threading.Thread(target=self._read_acks, name="runstream-acks", daemon=True)
        self._reader.start()

    def _request_iterator(self) -> Iterator[pb.Batch]:
        while True:
            item = self.requests.get()
            if item is None:
                return
            yield item

    def send(self, message: pb.Batch) -> None:
        self.requests.put(message)

    def close(self) -> None:
        """No more batches: the server ends the call once it has acknowledged what it got."""
        self.requests.put(None)

    def cancel(self) -> None:
        self.requests.put(None)
        self._call.cancel()

    def _read_acks(self) -> None:
        error: TransportError | None = None
        try:
            for ack in self._call:
                self._on_ack(ack)
        except TransportError as exc:
            error = exc
        self.alive = False
        self._on_end(self, error)


class GrpcTransport(Transport):
    """The Ingest service over gRPC: TLS when `tls_ca` names a CA file or an address starts with
    https:// (then the system's trusted CAs), plain text otherwise; `token` as a bearer token."""

    def __init__(self, servers: Sequence[str], token: str = "", tls_ca: str = "") -> None:
        if not servers:
            raise ValueError("no runstream server address given; set RUNSTREAM_SERVER (host:port)")
        self._servers = tuple(servers)
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self._root_certificates = _read_ca(tls_ca) if tls_ca else None
        self._tls = bool(tls_ca)
        self._index = 0
        self._channels: dict[int, grpc.Channel] = {}
        self._stubs: dict[int, pb_grpc.IngestStub] = {}
        self._lock = threading.Lock()
        self._stub()  # the first channel now: a bad address or CA fails here, not at the first call

    @property
    def server(self) -> str:
        return self._servers[self._index]

    def open_run(self, request: pb.OpenRunRequest, timeout: float, wait_for_ready: bool = False) -> pb.OpenRunResponse:
        index, stub = self._stub()
        try:
            reply: pb.OpenRunResponse = stub.OpenRun(
                request, timeout=timeout, wait_for_ready=wait_for_ready, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise self._failed(index, exc) from None
        return reply

    def write(self, requests: Iterator[pb.Batch]) -> AckStream:
        index, stub = self._stub()
        return _GrpcAckStream(stub.Write(requests, metadata=self._metadata), lambda exc: self._failed(index, exc))

    def finish_run(self, request: pb.FinishRunRequest, timeout: float) -> None:
        index, stub = self._stub()
        try:
            stub.FinishRun(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._failed(index, exc) from None

    def read_scalars(self, run_id: str, timeout: float) -> list[pb.ScalarSeries]:
        index, stub = self._stub()
        try:
            call = stub.ReadScalars(pb.ReadScalarsRequest(run_id=run_id), timeout=timeout, metadata=self._metadata)
            return list(call)
        except grpc.RpcError as exc:
            raise self._failed(index, exc) from None

    def visdom_read(self, endpoint: str, body: bytes, timeout: float = 30.0) -> bytes:
        index, stub = self._stub()
        try:
            request = pb.VisdomReadRequest(endpoint=endpoint, body=body)
            reply: pb.VisdomReadReply = stub.VisdomRead(request, timeout=timeout, metadata=self._metadata)
            return reply.body
        except grpc.RpcError as exc:
            raise self._failed(index, exc) from None

    def close(self) -> None:
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
            self._stubs.clear()
        for channel in channels:
            channel.close()

    def _stub(self) -> tuple[int, pb_grpc.IngestStub]:
        with self._lock:
            index = self._index
            stub = self._stubs.get(index)
            if stub is None:
                channel = self._channels[index] = self._make_channel(self._servers[index])
                stub = self._stubs[index] = pb_grpc.IngestStub(channel)
            return index, stub

    def _make_channel(self, address: str) -> grpc.Channel:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # gRPC's own reconnect backoff grows to 120 s; after a long outage the channel would not even
            # try to reconnect for that long. The sender has its own backoff (at most 5 s).
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        https = address.startswith("https://")
        target = address.removeprefix("https://").removeprefix("http://").rstrip("/")
        if not (self._tls or https):
            return grpc.insecure_channel(target, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self._root_certificates)
        return grpc.secure_channel(target, credentials, options=options)

    def _failed(self, index: int, exc: grpc.RpcError) -> TransportError:
        """Turn a gRPC error into a TransportError; when the server did not answer (UNAVAILABLE, or a call's
        deadline passed), later calls try the next address."""
        error = _transport_error(exc)
        if error.unreachable and len(self._servers) > 1:
            with self._lock:
                if self._index == index:
                    self._index = (index + 1) % len(self._servers)
                    logger.warning(
                        "runstream: the server at %s is unavailable; trying %s next",
                        self._servers[index],
                        self._servers[self._index],
                    )
        return error


class _GrpcAckStream:
    def __init__(self, call: Any, failed: Callable[[grpc.RpcError], TransportError]) -> None:
        self._call = call
        self._failed = failed

    def __iter__(self) -> Iterator[pb.WriteAck]:
        try:
            yield from self._call
        except grpc.RpcError as exc:
            raise self._failed(exc) from None

    def cancel(self) -> None:
        self._call.cancel()


def _transport_error(exc: grpc.RpcError) -> TransportError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    metadata = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    trailing = {item.key: str(item.value) for item in metadata or ()}
    return TransportError(code.name if code is not None else "ERROR", details or "", trailing)


def _read_ca(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise ValueError(f"cannot read the TLS CA file {path!r} (RUNSTREAM_TLS_CA): {exc}") from None


def for_settings(settings: SdkConfig) -> GrpcTransport:
    """The transport `init()` and `runstream sync` use for resolved settings: `server` may list several
    addresses, comma-separated (RUNSTREAM_SERVER=a:50051,b:50051: servers sharing one lake)."""
    servers = [address.strip() for address in settings.server.split(",") if address.strip()]
    return GrpcTransport(servers, settings.token, settings.tls_ca)


def connect(server: str | None = None, token: str | None = None) -> GrpcTransport:
    """A transport as `runstream.init()` would make it: arguments, else RUNSTREAM_SERVER, RUNSTREAM_TOKEN
    and RUNSTREAM_TLS_CA. For tools outside the SDK that send batches themselves (import-tensorboard)."""
    return for_settings(resolve({"server": server, "token": token}))
