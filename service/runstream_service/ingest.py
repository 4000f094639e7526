"""The gRPC Ingest service: validates batches, hands them to the writer, acks after commit.

Errors become gRPC status codes here and nowhere else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from runstream_service.auth import AuthError, PermissionDenied, Token, TokenTable, bearer, require_write
from runstream_service.crashes import CrashWatch, Stream
from runstream_service.errors import BadRequest, RunstreamError, grpc_status
from runstream_service.limits import DEFAULT_LIMITS, Limits
from runstream_service.store import ingest_reads, lifecycle
from runstream_service.store.base import Reads
from runstream_service.store.writer import FinishRun, OpenRun, StoreWriter, UnknownRun
from runstream_service.validate import DecodedBatch, InvalidBatch, decode_batch
from runstream_service.visdom import answers, batched, protocol
from runstream_service.visdom.storage import PROJECT as VISDOM_PROJECT

if TYPE_CHECKING:
    from runstream_service.visdom.routes import Visdom

logger = logging.getLogger("runstream.ingest")

Context = grpc.aio.ServicerContext[Any, Any]

REJECTED_SEQ_KEY = "runstream-rejected-seq"
RETRY_AFTER_KEY = "runstream-retry-after"  # trailing metadata of RESOURCE_EXHAUSTED: seconds to wait

# Whether the server takes batches now: None, or why not and after how many seconds to send again.
Admission = Callable[[], "tuple[str, float] | None"]
MAX_PROGRESS_WRITERS = 100_000  # writer ids in one GetProgress call (an importer asks for its files' writers)
RUN_STATUSES = ("finished", "failed")


@dataclass
class IngestCounters:
    rejected_batches: int = 0


@dataclass(frozen=True)
class _Rejected:
    seq: int | None  # None when the message could not even be parsed
    error: InvalidBatch


@dataclass(frozen=True)
class _Failed:
    error: Exception


@dataclass(frozen=True)
class _Denied:
    error: AuthError


@dataclass(frozen=True)
class _Held:
    """The server takes no batch now (Admission said why); the client sends again after `retry_after` s."""

    reason: str
    retry_after: float


class _Draining:
    """Put into every open stream's queue at shutdown: ack what came before, then end the stream."""


_DRAINING = _Draining()
_Pending = tuple[DecodedBatch, "asyncio.Future[bool]"] | _Rejected | _Failed | _Denied | _Held | _Draining | None


class IngestService(pb_grpc.IngestServicer):  # type: ignore[misc]  # generated, untyped
    def __init__(
        self,
        writer: StoreWriter,
        limits: Limits = DEFAULT_LIMITS,
        tokens: TokenTable | None = None,
        reader: Reads | None = None,
        visdom: Visdom | None = None,
        crashes: CrashWatch | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._writer = writer
        self._admission = admission  # a lake server's backlog cap (store/lake.py); None: every batch is taken
        self._crashes = crashes  # told of OpenRun calls, open streams and their runs (crashed runs); None: not
        self._reader = reader  # for ReadScalars and GetProgress; None: they answer UNIMPLEMENTED
        self._visdom = visdom  # the Visdom side (runstream.visdom.Visdom's calls and reads); None: refused
        self._limits = limits
        self._tokens = tokens  # None: no authentication
        self.counters = IngestCounters()
        self._draining = False
        self._streams: set[asyncio.Queue[_Pending]] = set()

    def drain(self) -> None:
        """Stop taking batches: open streams ack what they queued, then end with UNAVAILABLE."""
        self._draining = True
        for pending in self._streams:
            pending.put_nowait(_DRAINING)

    async def _authorize(self, context: Context, *projects: str | None) -> Token | None:
        """The caller's token (None without authentication); aborts UNAUTHENTICATED or PERMISSION_DENIED.

        `projects`: each must be writable with the token; None stands for "some project".
        """
        if self._tokens is None:
            return None
        try:
            presented = None
            for key, value in context.invocation_metadata() or ():
                if key == "authorization":
                    presented = bearer(value if isinstance(value, str) else value.decode("latin-1"))
            token = self._tokens.authenticate(presented)
            for project in projects:
                if project is None:
                    if not any(scope.startswith("write:") for scope in token.scopes):
                        raise PermissionDenied(
                            f"this token (fingerprint {token.fingerprint}) has no write scope; "
                            "ingestion needs 'write:PROJECT' or 'write:*'"
                        )
                else:
                    require_write(token, project)
        except AuthError as exc:
            await context.abort(*grpc_status(exc))
        return token

    async def _authenticate(self, context: Context) -> Token | None:
        """The caller's token, any valid one (None without authentication); aborts UNAUTHENTICATED."""
        if self._tokens is None:
            return None
        try:
            presented = None
            for key, value in context.invocation_metadata() or ():
                if key == "authorization":
                    presented = bearer(value if isinstance(value, str) else value.decode("latin-1"))
            return self._tokens.authenticate(presented)
        except AuthError as exc:
            await context.abort(*grpc_status(exc))
        raise AssertionError("context.abort returned")  # pragma: no cover

    async def _reads(self, context: Context) -> Reads:
        if self._reader is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server was started without reads for ingest")
        assert self._reader is not None
        return self._reader

    async def GetProgress(self, request: pb.GetProgressRequest | Unparseable, context: Context) -> pb.GetProgressReply:
        """Each writer's committed seq and source_offset (for importers resuming a grown file); any valid token."""
        if isinstance(request, Unparseable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))
        assert isinstance(request, pb.GetProgressRequest)
        await self._authenticate(context)
        writer_ids = list(request.writer_id)
        if len(writer_ids) > MAX_PROGRESS_WRITERS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"writer_id: at most {MAX_PROGRESS_WRITERS} writers per call"
            )
        reader = await self._reads(context)
        rows = await reader.run(lambda cursor: ingest_reads.progress(cursor, writer_ids))
        return pb.GetProgressReply(seq=[seq for seq, _ in rows], source_offset=[offset for _, offset in rows])

    async def ReadScalars(
        self, request: pb.ReadScalarsRequest | Unparseable, context: Context
    ) -> AsyncIterator[pb.ScalarSeries]:
        """A run's scalars, a series (tag and rank) per message in step order. A token with `read`, or one that
        may write to the run's project (a writer reads back what it logged: export_scalars_to_json)."""
        if isinstance(request, Unparseable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))
        assert isinstance(request, pb.ReadScalarsRequest)
        token = await self._authenticate(context)
        project = self._writer.runs.project_of(request.run_id)
        if token is not None and not (token.can_read() or (project is not None and token.can_write(project))):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"this token (fingerprint {token.fingerprint}) can neither read nor write this run's project; "
                "reading scalars needs the scope 'read', or 'write:PROJECT' of the run's project",
            )
        if project is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"run_id: no run {request.run_id!r} on this server")
        reader = await self._reads(context)
        run_id = request.run_id
        chunks = await reader.run(lambda cursor: ingest_reads.scalar_series(cursor, run_id))
        for chunk in chunks:
            yield pb.ScalarSeries(
                tag=chunk.tag,
                rank=chunk.rank,
                step=chunk.step.astype("<i8").tobytes(),
                wall_time=chunk.wall_time.astype("<f8").tobytes(),
                value=chunk.value.astype("<f8").tobytes(),
            )

    async def VisdomRead(self, request: pb.VisdomReadRequest | Unparseable, context: Context) -> pb.VisdomReadReply:
        """What the Visdom HTTP endpoint of that name answers; a token with `read`, or one that may write to
        the project `visdom` (the client reads as it writes, as over HTTP)."""
        if isinstance(request, Unparseable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))
        assert isinstance(request, pb.VisdomReadRequest)
        token = await self._authenticate(context)
        if token is not None and not (token.can_read() or token.can_write(VISDOM_PROJECT)):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"this token (fingerprint {token.fingerprint}) can neither read nor write Visdom envs; "
                "reading them needs the scope 'read' or 'write:visdom'",
            )
        if self._visdom is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server was started without its Visdom side")
        assert self._visdom is not None
        try:
            text = await answers.answer(self._visdom, request.endpoint, protocol.parse_body(request.body))
        except RunstreamError as exc:
            await context.abort(*grpc_status(exc))
        return pb.VisdomReadReply(body=text.encode())

    async def OpenRun(self, request: pb.OpenRunRequest | Unparseable, context: Context) -> pb.OpenRunResponse:
        if isinstance(request, Unparseable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))
        assert isinstance(request, pb.OpenRunRequest)
        # An existing run keeps its data where it is: joining it needs write access to its project too.
        existing = self._writer.runs.project_of(request.run_id) if request.run_id else None
        await self._authorize(context, request.project or "default", existing)
        run_id = request.run_id or uuid.uuid4().hex[:16]
        if run_id in self._writer.runs.deleted:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"run_id: {lifecycle.deleted_message(run_id)}")
        if len(run_id) > self._limits.max_id_chars:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"run_id: at most {self._limits.max_id_chars} characters"
            )
        if request.world_size and request.rank >= request.world_size:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"rank: {request.rank} is not below world_size {request.world_size}"
            )
        config = request.config_json or "{}"
        try:
            if not isinstance(json.loads(config), dict):
                raise ValueError("not an object")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"config_json: must be a JSON object ({exc})")
        job = OpenRun(
            run_id=run_id,
            project=request.project or "default",
            name=request.name or run_id,
            config_json=config,
            rank=request.rank,
            world_size=max(request.world_size, 1),
            host=request.host,
            start_time=request.start_time,
        )
        created = await self._writer.submit(job)
        if self._crashes is not None:
            self._crashes.saw(run_id)
        return pb.OpenRunResponse(run_id=run_id, created=created)

    async def FinishRun(self, request: pb.FinishRunRequest | Unparseable, context: Context) -> pb.FinishRunResponse:
        if isinstance(request, Unparseable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(request))
        assert isinstance(request, pb.FinishRunRequest)
        await self._authorize(context, self._writer.runs.project_of(request.run_id))
        if request.status not in RUN_STATUSES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"status: must be one of {', '.join(RUN_STATUSES)}")
        try:
            await self._writer.submit(FinishRun(request.run_id, request.rank, request.status, request.end_time))
        except UnknownRun as exc:
            await context.abort(*grpc_status(exc))
        return pb.FinishRunResponse()

    async def Write(self, request_iterator: AsyncIterator[pb.Batch], context: Context) -> AsyncIterator[pb.WriteAck]:
        # Reading and acknowledging run side by side, so several batches are in flight;
        # acks keep the order of the batches.
        # Unbounded, yet bounded in practice: the reader waits for room in the writer's queue.
        pending: asyncio.Queue[_Pending] = asyncio.Queue()
        token = await self._authorize(context, None)
        if self._draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; send again later")
        self._streams.add(pending)
        alive = self._crashes.stream() if self._crashes is not None else None
        reader = asyncio.ensure_future(self._read_batches(request_iterator, pending, token, alive))
        try:
            while True:
                item = await pending.get()
                if item is None:
                    break
                if isinstance(item, _Draining):
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        "the server is shutting down; unacknowledged batches must be sent again",
                    )
                if isinstance(item, _Rejected):
                    self.counters.rejected_batches += 1
                    code, message = grpc_status(item.error)
                    if item.seq is None:
                        await context.abort(code, message)
                    context.set_trailing_metadata(((REJECTED_SEQ_KEY, str(item.seq)),))
                    await context.abort(code, f"batch {item.seq}: {message}")
                if isinstance(item, _Denied):
                    await context.abort(*grpc_status(item.error))
                if isinstance(item, _Held):
                    context.set_trailing_metadata(((RETRY_AFTER_KEY, f"{item.retry_after:g}"),))
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, item.reason)
                if isinstance(item, _Failed):
                    await context.abort(grpc.StatusCode.INTERNAL, f"the server failed to take a batch ({item.error})")
                batch, commit = item
                try:
                    duplicate = await commit
                except UnknownRun as exc:  # a batch of a run that is not open: rejected, like an invalid one
                    self.counters.rejected_batches += 1
                    context.set_trailing_metadata(((REJECTED_SEQ_KEY, str(batch.seq)),))
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"batch {batch.seq}: {exc}")
                except Exception as exc:
                    logger.exception("commit of batch %d failed", batch.seq)
                    await context.abort(
                        grpc.StatusCode.INTERNAL, f"batch {batch.seq} could not be committed ({exc}); send it again"
                    )
                if batch.with_commit and not duplicate and self._visdom is not None:
                    await batched.committed(self._visdom, batch.with_commit)
                yield pb.WriteAck(writer_id=batch.writer_id, seq=batch.seq, duplicate=duplicate)
        finally:
            self._streams.discard(pending)
            reader.cancel()
            if alive is not None:
                alive.close()

    async def _read_batches(
        self,
        request_iterator: AsyncIterator[pb.Batch],
        pending: asyncio.Queue[_Pending],
        token: Token | None = None,
        alive: Stream | None = None,
    ) -> None:
        try:
            async for message in request_iterator:
                if self._draining:
                    return
                if self._admission is not None and (held := self._admission()) is not None:
                    await pending.put(_Held(*held))
                    return
                try:
                    batch = await self._decode(message)
                except InvalidBatch as exc:
                    await pending.put(_Rejected(message.seq, exc))
                    return
                if token is not None:
                    try:
                        require_write(token, self._writer.runs.project_of(batch.run_id) or "")
                    except AuthError as exc:
                        await pending.put(_Denied(exc))
                        return
                if alive is not None:
                    alive.saw(batch.run_id)
                # Waits here while the writer's queue is full: backpressure reaches the client
                # through gRPC flow control.
                commit = await self._writer.enqueue(batch)
                await pending.put((batch, commit))
        except DecodeError as exc:
            error = InvalidBatch("batch", f"the message does not parse as runstream.v1.Batch ({exc})")
            await pending.put(_Rejected(None, error))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("reading a Write stream failed")
            await pending.put(_Failed(exc))
        finally:
            await pending.put(None)

    async def _decode(self, message: pb.Batch) -> DecodedBatch:
        if (
            (message.HasField("images") and message.images.data)
            or message.HasField("embeddings")
            or message.HasField("videos")
            or message.HasField("meshes")
        ):
            # decoding images (PNG checks), embedding chunks (JSON and PNG per point), videos (every frame)
            # and meshes (faces against vertices) takes a while
            batch = await asyncio.to_thread(decode_batch, message, self._limits)
        else:
            batch = decode_batch(message, self._limits)
        if batch.run_id in self._writer.runs.deleted:
            raise InvalidBatch("run_id", lifecycle.deleted_message(batch.run_id))
        if batch.run_id not in self._writer.runs:
            raise InvalidBatch("run_id", f"run {batch.run_id!r} is not open; call OpenRun first")
        if message.visdom_calls:
            batch = self._with_visdom_calls(batch, message)
        return batch

    def _with_visdom_calls(self, batch: DecodedBatch, message: pb.Batch) -> DecodedBatch:
        """The batch with its Visdom calls parsed (a bad one rejects the batch) and their writes attached."""
        if self._visdom is None:
            raise InvalidBatch("visdom_calls", "this server was started without its Visdom side")
        if self._writer.runs.project_of(batch.run_id) != VISDOM_PROJECT:
            raise InvalidBatch("visdom_calls", f"Visdom calls travel in runs of the project {VISDOM_PROJECT!r}")
        try:
            calls = batched.parse_calls(message.visdom_calls)
        except BadRequest as exc:
            raise InvalidBatch("visdom_calls", str(exc).removeprefix("visdom_calls: ")) from None
        writes = batched.transactions(self._visdom.writes, calls)
        return dataclasses.replace(batch, with_commit=writes)


class Unparseable:
    """What a unary request becomes when its bytes do not parse: the handler answers INVALID_ARGUMENT."""

    def __init__(self, message_type: str, error: DecodeError) -> None:
        self.message_type = message_type
        self.error = error

    def __str__(self) -> str:
        return f"the message does not parse as {self.message_type} ({self.error})"


def _tolerant(message_class: Any) -> Any:
    def parse(raw: bytes) -> Any:
        try:
            return message_class.FromString(raw)
        except DecodeError as exc:
            return Unparseable(message_class.DESCRIPTOR.full_name, exc)

    return parse


def add_to_server(service: IngestService, server: grpc.aio.Server) -> None:
    """Register the Ingest service. Unlike the generated helper, bytes that do not parse as a unary
    request reach the handler (as Unparseable) and get INVALID_ARGUMENT, not UNKNOWN."""

    def unary(handler: Any, request: Any, reply: Any) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=_tolerant(request), response_serializer=reply.SerializeToString
        )

    handlers = {
        "OpenRun": unary(service.OpenRun, pb.OpenRunRequest, pb.OpenRunResponse),
        # Write parses inside its handler (see _read_batches), so a bad message becomes INVALID_ARGUMENT there.
        "Write": grpc.stream_stream_rpc_method_handler(
            service.Write,
            request_deserializer=pb.Batch.FromString,
            response_serializer=pb.WriteAck.SerializeToString,
        ),
        "FinishRun": unary(service.FinishRun, pb.FinishRunRequest, pb.FinishRunResponse),
        "GetProgress": unary(service.GetProgress, pb.GetProgressRequest, pb.GetProgressReply),
        "VisdomRead": unary(service.VisdomRead, pb.VisdomReadRequest, pb.VisdomReadReply),
        "ReadScalars": grpc.unary_stream_rpc_method_handler(
            service.ReadScalars,
            request_deserializer=_tolerant(pb.ReadScalarsRequest),
            response_serializer=pb.ScalarSeries.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("runstream.v1.Ingest", handlers),))
