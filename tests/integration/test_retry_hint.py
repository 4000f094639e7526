"""RESOURCE_EXHAUSTED with a retry hint: the SDK waits as told, keeps the batches, and sends them after."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

import runstream
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from support import free_port


class BusyOnce(pb_grpc.IngestServicer):  # type: ignore[misc]
    """Refuses the first Write with RESOURCE_EXHAUSTED and `runstream-retry-after: 0.5`, then acks all."""

    def __init__(self) -> None:
        self.write_calls: list[float] = []
        self.points = 0

    def OpenRun(self, request: pb.OpenRunRequest, context: Any) -> pb.OpenRunResponse:
        return pb.OpenRunResponse(run_id=request.run_id, created=True)

    def Write(self, requests: Iterator[pb.Batch], context: Any) -> Iterator[pb.WriteAck]:
        self.write_calls.append(time.monotonic())
        if len(self.write_calls) == 1:
            context.set_trailing_metadata((("runstream-retry-after", "0.5"),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the writer is behind; retry later")
        for batch in requests:
            self.points += len(batch.scalars.value) // 8
            yield pb.WriteAck(writer_id=batch.writer_id, seq=batch.seq)

    def FinishRun(self, request: pb.FinishRunRequest, context: Any) -> pb.FinishRunResponse:
        return pb.FinishRunResponse()


def test_the_sdk_honours_resource_exhausted_retry_after(tmp_path: Path) -> None:
    servicer = BusyOnce()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_IngestServicer_to_server(servicer, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        run = runstream.init(project="p", server=f"127.0.0.1:{port}", dir=str(tmp_path / "spool"))
        for step in range(1000):
            run.log({"a": float(step)}, step=step)
        report = run.finish(timeout=30)
    finally:
        server.stop(None)
    assert report.complete, report
    assert servicer.points == 1000
    assert len(servicer.write_calls) >= 2
    assert servicer.write_calls[1] - servicer.write_calls[0] >= 0.45  # waited as told (not 0.1 s of backoff)
