"""Server settings, declared as data: the CLI's flags, their defaults and help come from here."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runstream_service.projector.cache import DEFAULT_BOUND_GIB
from runstream_service.retention import RetentionPolicy

if TYPE_CHECKING:
    from runstream_service.auth import TokenTable
    from runstream_service.store.lake import LakeConfig


@dataclass(frozen=True)
class Setting:
    name: str
    flag: str
    default: str | None
    help: str


SERVE_SETTINGS: tuple[Setting, ...] = (
    Setting("data", "--data", "runstream-data", "directory of the DuckDB file (runstream.duckdb)"),
    Setting("grpc", "--grpc", "127.0.0.1:50051", "HOST:PORT of the gRPC ingestion service"),
    Setting("http", "--http", "127.0.0.1:8080", "HOST:PORT of the HTTP dashboard (/healthz for now)"),
    Setting(
        "visdom",
        "--visdom",
        "127.0.0.1:8097",
        "HOST:PORT where the Visdom protocol is served, or `off` (also under /visdom on --http); "
        "if the port is taken, the server warns and goes on without it",
    ),
    Setting("tokens", "--tokens", None, "file of tokens and scopes, one `TOKEN SCOPE[,SCOPE...]` a line"),
    Setting("tls_cert", "--tls-cert", None, "PEM certificate (chain) file: serve gRPC and HTTP over TLS"),
    Setting("tls_key", "--tls-key", None, "PEM private key file of --tls-cert"),
    Setting(
        "allowed_hosts",
        "--allowed-hosts",
        None,
        "HOST[,HOST...]: Host names the HTTP and Visdom ports answer besides loopback's (a server bound to "
        "loopback answers only those; bound elsewhere, any Host unless this narrows it)",
    ),
    Setting(
        "lake",
        "--lake",
        None,
        "CATALOG: scale out on DuckLake with this PostgreSQL catalog ('dbname=DB host=H user=U' or "
        "postgresql://U@H:PORT/DB); needs --data-path and the lake extra (README: Scale-out on DuckLake)",
    ),
    Setting("data_path", "--data-path", None, "the lake's Parquet files: a shared directory or s3://BUCKET/PREFIX"),
    Setting("lake_s3_endpoint", "--lake-s3-endpoint", None, "HOST:PORT of an S3-compatible server for s3:// paths"),
    Setting(
        "lake_max_backlog",
        "--lake-max-backlog",
        "20000000",
        "POINTS: acknowledged here and not yet moved to the lake, at most; beyond, batches are refused with "
        "RESOURCE_EXHAUSTED (clients spool and retry) until the lake takes them, so a lost disk loses at most this",
    ),
)

DATABASE_FILE = "runstream.duckdb"
OFF = "off"


@dataclass(frozen=True)
class CompactionPolicy:
    """When the compactor (store/compactor.py) sorts and rolls up arriving scalar points."""

    hot_points: int = 2_000_000  # as soon as this many wait
    hot_seconds: float = 5.0  # ... or once they have waited this long
    poll_seconds: float = 0.5
    # During a burst (more points committed in the last second than this), compaction waits so
    # ingestion has the CPU, unless more than `burst_hot_points` wait (reads then scan too many).
    burst_points_per_s: int = 1_000_000
    burst_hot_points: int = 16_000_000


@dataclass(frozen=True)
class ServerSettings:
    data: Path
    grpc: str
    http: str
    insecure: bool = False
    sql_timeout: float = 10.0  # seconds a user's SQL may run
    sql_max_bytes: int = 2 << 30  # bytes of an Arrow answer of POST /api/sql
    memory_limit: str | None = None  # DuckDB's memory_limit; None: DuckDB's default
    slow_writer_us: float = 0.0  # testing only: extra writer time per point, to show backpressure
    tokens: TokenTable | None = None  # None: no authentication (loopback, or --insecure)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    visdom: str | None = None  # HOST:PORT of the Visdom listener; None: off (it still answers under /visdom)
    allowed_hosts: tuple[str, ...] = ()  # Host names answered besides loopback's (normalised, no port)
    compaction: CompactionPolicy = CompactionPolicy()
    crash_after: float = 300.0  # seconds without an open stream or a write before a running run is `crashed`
    projector_cache_bytes: int = DEFAULT_BOUND_GIB << 30  # bound of the Projector's folder (projector/cache.py)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)  # per project (retention.py)
    lake: LakeConfig | None = None  # scale-out on DuckLake (store/lake.py); None: this file only

    @property
    def database(self) -> Path:
        return self.data / DATABASE_FILE


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
