"""`runstream serve`: gRPC ingestion (and the HTTP side) on one uvloop event loop, one DuckDB file.

This is the composition point: the HTTP app gets only an AppDeps (reads, a health snapshot, the
change feed, settings and tokens) built here, and never sees this module.

SIGTERM and Ctrl-C drain: new calls are refused, queued batches are committed,
the database is checkpointed, then the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable
from pathlib import Path

import duckdb
import grpc
import uvloop
from aiohttp import web

from runstream_dashboards import origin
from runstream_dashboards.app import make_app
from runstream_dashboards.ports import AppDeps, ChangeFeed, Health, RunReads
from runstream_service.bulk_http import BulkCursors, BulkRoutes, require_admin
from runstream_service.crashes import CrashWatch
from runstream_service.ingest import IngestService, add_to_server
from runstream_service.limits import DEFAULT_LIMITS
from runstream_service.malloc import keep_freed_memory
from runstream_service.projector.service import Projector
from runstream_service.projector.worker import default_memory_bytes
from runstream_service.retention_job import Retention
from runstream_service.run_actions import RunActions
from runstream_service.settings import ServerSettings, split_address
from runstream_service.store import embeddings, lake_server, queries
from runstream_service.store.base import Store
from runstream_service.store.compactor import Compactor
from runstream_service.store.file import FileStore
from runstream_service.store.lake_changes import LakeChanges, LakeWatch
from runstream_service.store.lake_mover import Mover
from runstream_service.store.lake_queries import LakeReads
from runstream_service.store.reader import StoreReader
from runstream_service.store.writer import COMMIT_SECONDS_BUCKETS, StoreWriter
from runstream_service.visdom import routes as visdom_routes
from runstream_service.visdom.storage import VisdomWrites
from runstream_service.visdom.views import ViewReads

logger = logging.getLogger("runstream.server")

DRAIN_SECONDS = 10.0


class StoreOpenError(RuntimeError):
    """The server cannot open its store as configured; the message says what to do."""


class Server:
    """The running service; `start()` then `wait()`; `stop()` drains."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        settings.data.mkdir(parents=True, exist_ok=True)
        # No file readers, COPY, ATTACH or extension loading for anyone, user SQL included. Beyond
        # memory_limit, DuckDB spills sorts and joins to runstream.duckdb.tmp/ beside the database.
        # A lake server needs external access (DuckLake's catalog and files); user SQL is then held by
        # readonly_sql's checks alone (tests/lake/test_lake_sql_policy.py).
        config: dict[str, str | bool | int | float | list[str]] = {"enable_external_access": settings.lake is not None}
        if settings.memory_limit is not None:
            config["memory_limit"] = settings.memory_limit
        self.con = open_database(settings.database, config)
        self.memory_limit: str = self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        # A lake server's scalar points go to its outbox only, then to the lake (store/lake_store.py): no second
        # copy in its own tables, which it would write and compact for nothing.
        store: Store = FileStore(self.con, scalar_points=settings.lake is None)
        self.mover: Mover | None = None
        if settings.lake:
            store, self.mover = lake_server.attach(
                self.con,
                store,
                settings.lake,
                settings.grpc,
                settings.crash_after,
                self._alive_runs,
                retention=None if settings.retention.empty else settings.retention.cutoffs,
            )
        self.writer = StoreWriter(self.con, slow_down_us_per_point=settings.slow_writer_us, store=store)
        self.reader = StoreReader(self.con)
        # A lake server's page reads the whole lake, and its events announce what any server moved there.
        self.changes: ChangeFeed = self.writer.stats
        self.reads: RunReads = queries
        self.lake_watch: LakeWatch | None = None
        if settings.lake:
            self.changes = LakeChanges(self.writer.stats)
            self.lake_watch = LakeWatch(self.con, self.changes)
            watch = self.lake_watch
            self.reads = LakeReads(lambda: watch.progress)
        self.bulk = BulkCursors(self.con)  # backups and exports: long reads off the dashboard's cursors
        self.compactor = Compactor(self.con, settings.compaction)
        if settings.lake is None:  # a lake server's file has no scalar points to compact
            self.writer.on_scalars_committed = self.compactor.notify
        # Visdom's writes run on the writer thread, from its HTTP endpoints and from gRPC batches alike.
        self.visdom = visdom_routes.Visdom(VisdomWrites(), self.writer.submit, self.reader, settings.tokens)
        # Crashed runs: the clock starts now; ingest reports OpenRun calls and open streams.
        self.crashes = CrashWatch(settings.crash_after, self.writer.submit, self.reader)
        self._crash_checks: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.run_actions = RunActions(self.writer.submit, lambda: self.writer.runs, self.crashes)
        self.retention = Retention(settings.retention, self.reader, self.writer.submit, self.run_actions.delete)
        self._retention_task: asyncio.Task[None] | None = None
        self.ingest = IngestService(
            self.writer,
            tokens=settings.tokens,
            reader=self.reader,
            visdom=self.visdom,
            crashes=self.crashes,
            admission=lake_server.admission(self.mover, settings.lake) if self.mover and settings.lake else None,
        )
        self._grpc: grpc.aio.Server | None = None
        self._http: web.AppRunner | None = None
        self._visdom_runner: web.AppRunner | None = None
        # Projections and neighbour searches: worker processes with their own memory bound, started on first use.
        self.projector = Projector(
            self.reader,
            embeddings,
            settings.data / "projector-cache",
            default_memory_bytes(),
            settings.projector_cache_bytes,
        )
        self.grpc_port = 0
        self.http_port = 0
        self.visdom_port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.writer.start(loop)
        if self.mover is not None:
            self.mover.start()
        if self.lake_watch is not None:
            self.lake_watch.start()
        self.compactor.start()
        await self.visdom.load()
        await self.crashes.load()
        self._crash_checks = asyncio.ensure_future(self.crashes.run(self._stopping))
        self._retention_task = asyncio.ensure_future(self.retention.run(self._stopping))
        options = [
            ("grpc.max_receive_message_length", DEFAULT_LIMITS.max_message_bytes),
            ("grpc.max_send_message_length", DEFAULT_LIMITS.max_message_bytes),
        ]
        self._grpc = grpc.aio.server(options=options)
        add_to_server(self.ingest, self._grpc)
        if self.settings.tls_cert and self.settings.tls_key:
            credentials = grpc.ssl_server_credentials(
                [(self.settings.tls_key.read_bytes(), self.settings.tls_cert.read_bytes())]
            )
            self.grpc_port = self._grpc.add_secure_port(self.settings.grpc, credentials)
        else:
            self.grpc_port = self._grpc.add_insecure_port(self.settings.grpc)
        if self.grpc_port == 0:
            raise OSError(f"cannot listen for gRPC on {self.settings.grpc} (in use, or not an address of this host)")
        await self._grpc.start()
        # Open event streams are cut after a second at shutdown; browsers reconnect by themselves.
        host, port = split_address(self.settings.http)
        app = make_app(self._app_deps(), origin.policy_for(host, self.settings.allowed_hosts))
        visdom_routes.add_routes(app, self.visdom, "/visdom")
        BulkRoutes(self.bulk, self.settings.data, require_admin).add_to(app)
        self._http = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._http.setup()
        site = web.TCPSite(self._http, host, port, ssl_context=self._http_ssl())
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else port
        tls = self.settings.tls_cert is not None
        logger.info(
            "runstream serving: gRPC%s on %s, HTTP%s on %s:%d, data in %s; %s",
            " (TLS)" if tls else "",
            self.settings.grpc.rsplit(":", 1)[0] + f":{self.grpc_port}",
            "S" if tls else "",
            host,
            self.http_port,
            self.settings.database,
            f"{len(self.settings.tokens)} tokens" if self.settings.tokens else "no authentication",
        )
        await self._start_visdom()
        if self.settings.tokens and not tls:
            logger.warning("runstream: tokens without TLS travel in clear text; see --tls-cert and --tls-key")

    async def _start_visdom(self) -> None:
        """The Visdom port: optional, so a taken port (a real Visdom, a second server) only warns."""
        if self.settings.visdom is None:
            return
        host, port = split_address(self.settings.visdom)
        hosts = origin.guard(origin.policy_for(host, self.settings.allowed_hosts))
        runner = web.AppRunner(visdom_routes.make_app(self.visdom, [hosts]), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self._http_ssl())
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            logger.warning(
                "runstream: not serving Visdom on %s (%s); Visdom clients can use base_url='/visdom' on the HTTP "
                "port, or pass --visdom HOST:PORT with a free port",
                self.settings.visdom,
                exc.strerror or exc,
            )
            return
        self._visdom_runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        self.visdom_port = sockets[0].getsockname()[1] if sockets else port
        logger.info("runstream serving Visdom on %s:%d (and under /visdom on the HTTP port)", host, self.visdom_port)

    def _app_deps(self) -> AppDeps:
        return AppDeps(
            reader=self.reader,
            health=self.health,
            changes=self.changes,
            sql_timeout=self.settings.sql_timeout,
            sql_max_bytes=self.settings.sql_max_bytes,
            tokens=self.settings.tokens,
            visdom=ViewReads(self.reader, self.visdom.changes),
            projector=self.projector,
            run_actions=self.run_actions,
            reads=self.reads,
        )

    def _alive_runs(self) -> list[str]:
        """The runs this server sees alive (a lake server publishes them for crash detection across servers)."""
        return self.crashes.alive_runs()

    def health(self) -> Health:
        """The counters of the writer, the ingest service and the compactor, copied at one moment."""
        writer, compactor = self.writer.stats, self.compactor.stats
        return Health(
            points_committed=writer.points,
            batches_committed=writer.batches,
            batches_duplicate=writer.duplicates,
            batches_rejected=self.ingest.counters.rejected_batches,
            queued_points=self.writer.queued_points,
            uncompacted_points=compactor.uncompacted_points,
            compactions=compactor.compactions,
            merges=compactor.merges,
            generations=compactor.generations,
            compacting=compactor.busy,
            compaction_deferred=compactor.deferred,
            compaction_seconds=compactor.seconds,
            duckdb_memory_limit=self.memory_limit,
            commits=writer.commits,
            commit_seconds_sum=writer.commit_seconds_sum,
            commit_seconds_buckets=tuple(zip(COMMIT_SECONDS_BUCKETS, writer.commit_seconds_buckets, strict=True)),
            retention=self.retention.as_json(),
        )

    def _http_ssl(self) -> ssl.SSLContext | None:
        if not (self.settings.tls_cert and self.settings.tls_key):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        return context

    async def stop(self) -> None:
        """Refuse new calls, let open streams finish (at most DRAIN_SECONDS), commit, close."""
        self.ingest.drain()
        self._stopping.set()
        if self._crash_checks is not None:
            await self._crash_checks
        if self._retention_task is not None:
            await self._retention_task
        if self._grpc is not None:
            await self._grpc.stop(DRAIN_SECONDS)
        if self._visdom_runner is not None:
            await self._visdom_runner.cleanup()
        if self._http is not None:
            await self._http.cleanup()
        await asyncio.to_thread(self.projector.close)
        await asyncio.to_thread(self.compactor.stop)
        await asyncio.to_thread(self.writer.stop)
        if self.mover is not None:
            await asyncio.to_thread(self.mover.stop)  # a last move: what was acknowledged goes to the lake
        if self.lake_watch is not None:
            await asyncio.to_thread(self.lake_watch.stop)
        self.reader.close()
        self.bulk.close()
        self.con.close()


def open_database(path: Path, config: dict[str, str | bool | int | float | list[str]]) -> duckdb.DuckDBPyConnection:
    """The server's DuckDB file; a file this DuckDB is too old to read stops the server with what to do."""
    try:
        return duckdb.connect(str(path), config=config)
    except duckdb.IOException as exc:
        if "newer version of DuckDB" not in str(exc):
            raise
        raise StoreOpenError(
            f"{path} was written by a newer DuckDB than this server's {duckdb.__version__} (a lake server runs on "
            "DuckDB 1.5.5), which cannot read it. Serve it with DuckDB 2.x (pip install 'runstream[server]'), or "
            "give the lake server another --data, or copy the file into 1.5.5's format with DuckDB 2.x while no "
            "server runs, in SQL: ATTACH 'OLD' AS old (READ_ONLY); ATTACH 'NEW' AS new (STORAGE_VERSION 'v1.5.0'); "
            "COPY FROM DATABASE old TO new; then put NEW in OLD's place"
        ) from exc


async def serve(
    settings: ServerSettings, ready: asyncio.Event | None = None, on_stop: Callable[[], None] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT; then `on_stop()` (if given), and drain."""
    server = Server(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    if on_stop is not None:
        on_stop()
    logger.info("runstream: stopping; committing what was acknowledged")
    await server.stop()
    logger.info("runstream: stopped")


def run(settings: ServerSettings, on_stop: Callable[[], None] | None = None) -> None:
    keep_freed_memory()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings, on_stop=on_stop))
