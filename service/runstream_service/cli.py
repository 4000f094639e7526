"""The `runstream` command: serve, demo, sql."""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from runstream_service import cli_bulk, cli_runs
from runstream_service.projector.cache import DEFAULT_BOUND_GIB as DEFAULT_PROJECTOR_CACHE_GIB
from runstream_service.settings import (
    OFF,
    SERVE_SETTINGS,
    CompactionPolicy,
    ServerSettings,
    is_loopback,
    split_address,
)

SERVER_EXTRA_HINT = "the server needs its extra: pip install 'runstream[server]'"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runstream", description="Metrics service for machine-learning training.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the ingestion server and dashboard")
    for setting in SERVE_SETTINGS:
        serve.add_argument(setting.flag, default=setting.default, help=f"{setting.help} (default: {setting.default})")
    serve.add_argument("--insecure", action="store_true", help="allow a non-loopback address without tokens")
    serve.add_argument(
        "--sql-timeout", type=float, default=10.0, help="seconds a user's SQL may run, at most 60 (default: 10)"
    )
    serve.add_argument(
        "--sql-max-bytes",
        type=int,
        default=ServerSettings.sql_max_bytes,
        help="bytes an Arrow answer of POST /api/sql may hold; it ends with an error past them "
        "(default: %(default)s, 2 GiB)",
    )
    serve.add_argument(
        "--memory-limit",
        default=None,
        help="DuckDB's memory (cached data, sorts, joins; it spills to disk beyond), e.g. 4GB "
        "(default: DuckDB's, 80%% of the machine's memory)",
    )
    serve.add_argument("--demo", action="store_true", help="also stream synthetic demo runs into this server")
    serve.add_argument(
        "--compact-points",
        type=int,
        default=CompactionPolicy.hot_points,
        help="sort and roll up arriving scalar points once this many wait (default: %(default)s)",
    )
    serve.add_argument(
        "--compact-seconds",
        type=float,
        default=CompactionPolicy.hot_seconds,
        help="... or once they have waited this many seconds (default: %(default)s)",
    )
    serve.add_argument(
        "--crash-after",
        type=float,
        default=300.0,
        help="seconds a running run may go without an open stream or a write before it is shown as crashed "
        "(counted from the server's start; default: %(default)s)",
    )
    serve.add_argument(
        "--projector-cache-gib",
        type=float,
        default=DEFAULT_PROJECTOR_CACHE_GIB,
        help="bound of the Projector's folder in the data directory (vectors written for its workers, finished "
        "projections), least recently used evicted first (default: %(default)s)",
    )
    cli_bulk.add_retention_flags(serve)
    # Testing only (bench/overload.py): slows the writer down by this many microseconds per point.
    serve.add_argument("--test-slow-writer-us", type=float, default=0.0, help=argparse.SUPPRESS)

    demo = commands.add_parser("demo", help="stream synthetic runs into a server")
    demo.add_argument("--server", default=os.environ.get("RUNSTREAM_SERVER", "127.0.0.1:50051"), help="HOST:PORT")
    demo.add_argument("--runs", type=int, default=4, help="number of runs (default: 4)")
    demo.add_argument("--steps", type=int, default=2000, help="steps per run (default: 2000)")
    demo.add_argument("--rate", type=float, default=200.0, help="steps per second, 0 for as fast as possible")
    demo.add_argument("--project", default="demo", help="project of the runs (default: demo)")

    sync = commands.add_parser("sync", help="upload spooled and offline runs to a server")
    sync.add_argument(
        "dir",
        nargs="?",
        default=os.environ.get("RUNSTREAM_DIR", "./runstream-spool"),
        help="spool directory (default: RUNSTREAM_DIR, else ./runstream-spool)",
    )
    sync.add_argument(
        "--server", default=None, help="HOST:PORT (default: RUNSTREAM_SERVER, else the server the run was logged to)"
    )
    sync.add_argument("--timeout", type=float, default=600.0, help="seconds to wait per spool (default: 600)")

    sql = commands.add_parser("sql", help="query a runstream database with SQL")
    sql.add_argument("query", help='for example "SELECT tag, count(*) FROM scalars GROUP BY tag"')
    source = sql.add_mutually_exclusive_group()
    source.add_argument(
        "--data", default="runstream-data", help="data directory, read directly (default: runstream-data)"
    )
    source.add_argument("--url", help="a running server's HTTP address, e.g. http://127.0.0.1:8080 (read-only SQL)")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")

    tbi = commands.add_parser("import-tensorboard", help="import TensorBoard event files (a run per directory)")
    tbi.add_argument("logdir", help="a TensorBoard log directory; each directory under it with event files is a run")
    tbi.add_argument(
        "--project", default=os.environ.get("RUNSTREAM_PROJECT", "tensorboard"), help="project of the runs"
    )
    target = tbi.add_mutually_exclusive_group()
    target.add_argument("--server", help="HOST:PORT of a running server (default: RUNSTREAM_SERVER or 127.0.0.1:50051)")
    target.add_argument("--data", help="a data directory no server holds: imported through a temporary local server")
    tbi.add_argument(
        "--follow",
        action="store_true",
        help="keep importing as jobs write: new runs, new event files and grown files, until Ctrl-C",
    )
    tbi.add_argument(
        "--interval", type=float, default=2.0, help="with --follow: seconds between looks at LOGDIR (default: 2)"
    )
    cli_runs.add_commands(commands)
    cli_bulk.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "sync":
            return _sync(args)
        if args.command == "import-tensorboard":
            return _import_tensorboard(args)
        if args.command in cli_runs.COMMANDS:
            return cli_runs.run(args)
        if args.command in cli_bulk.COMMANDS:
            return cli_bulk.run(args)
        return _sql(args)
    except ModuleNotFoundError as exc:
        if exc.name in ("duckdb", "aiohttp", "uvloop", "pyarrow"):
            print(f"runstream: {exc.name} is missing; {SERVER_EXTRA_HINT}", file=sys.stderr)
            return 2
        raise


def _serve(args: argparse.Namespace) -> int:
    from runstream_service.auth import TokenFileError, TokenTable, load_tokens

    tokens: TokenTable | None = None
    if args.tokens:
        try:
            tokens = load_tokens(Path(args.tokens))
        except TokenFileError as exc:
            print(f"runstream: {exc}", file=sys.stderr)
            return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("runstream: --tls-cert and --tls-key go together; give both, or neither", file=sys.stderr)
        return 2
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path and not Path(path).is_file():
            print(f"runstream: {flag} {path}: no such file", file=sys.stderr)
            return 2
    visdom = None if args.visdom == OFF else args.visdom
    from runstream_dashboards.origin import parse_allowed_hosts

    try:
        allowed_hosts = parse_allowed_hosts(args.allowed_hosts) if args.allowed_hosts is not None else ()
    except ValueError as exc:
        print(f"runstream: {exc}", file=sys.stderr)
        return 2
    for address in (args.grpc, args.http, *([visdom] if visdom else [])):
        try:
            host, _ = split_address(address)
        except ValueError as exc:
            print(f"runstream: {exc}", file=sys.stderr)
            return 2
        if not is_loopback(host) and tokens is None and not args.insecure:
            print(
                f"runstream: refusing to listen on {address} without tokens; anyone who reaches it could write "
                "and read. Pass --tokens FILE (README: Security), bind 127.0.0.1, or pass --insecure on a "
                "trusted network.",
                file=sys.stderr,
            )
            return 2
    from runstream_service.server import StoreOpenError, run
    from runstream_service.store.lake import LakeError

    if args.compact_points < 1 or args.compact_seconds <= 0:
        print("runstream: --compact-points and --compact-seconds must be positive", file=sys.stderr)
        return 2
    if args.memory_limit is not None and not re.fullmatch(
        r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", args.memory_limit.strip()
    ):
        print(f"runstream: --memory-limit {args.memory_limit!r}: give a size such as 512MB or 4GB", file=sys.stderr)
        return 2
    if not args.crash_after > 0:
        print("runstream: --crash-after must be more than 0 seconds", file=sys.stderr)
        return 2
    if not args.projector_cache_gib > 0:
        print("runstream: --projector-cache-gib must be more than 0", file=sys.stderr)
        return 2
    from runstream_service.retention import RetentionError

    try:
        retention = cli_bulk.retention_policy(args)
    except RetentionError as exc:
        print(f"runstream: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.sql_timeout <= 60:
        print("runstream: --sql-timeout must be more than 0 and at most 60 seconds", file=sys.stderr)
        return 2
    if args.sql_max_bytes < 1:
        print("runstream: --sql-max-bytes must be a positive number of bytes", file=sys.stderr)
        return 2
    if bool(args.lake) != bool(args.data_path):
        print("runstream: --lake and --data-path go together; give both, or neither", file=sys.stderr)
        return 2
    lake = None
    if args.lake:
        from runstream_service.store.lake import LakeConfig

        try:
            max_backlog = int(args.lake_max_backlog)
        except ValueError:
            max_backlog = -1
        if max_backlog < 1:
            print(
                f"runstream: --lake-max-backlog must be a positive number of points, not {args.lake_max_backlog!r}",
                file=sys.stderr,
            )
            return 2
        lake = LakeConfig(args.lake, args.data_path, s3_endpoint=args.lake_s3_endpoint, max_backlog_points=max_backlog)
    settings = ServerSettings(
        lake=lake,
        data=Path(args.data),
        grpc=args.grpc,
        http=args.http,
        insecure=args.insecure,
        sql_timeout=args.sql_timeout,
        sql_max_bytes=args.sql_max_bytes,
        memory_limit=args.memory_limit.strip() if args.memory_limit else None,
        slow_writer_us=args.test_slow_writer_us,
        tokens=tokens,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        visdom=visdom,
        allowed_hosts=allowed_hosts,
        compaction=CompactionPolicy(hot_points=args.compact_points, hot_seconds=args.compact_seconds),
        crash_after=args.crash_after,
        projector_cache_bytes=int(args.projector_cache_gib * 2**30),
        retention=retention,
    )
    demo = None
    if args.demo:
        host, port = split_address(args.grpc)
        target = f"{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
        # Its own session, so Ctrl-C reaches the server (which drains) and not the demo. About three
        # minutes of runs streaming in, so the dashboard shows live updates.
        demo_command = ["demo", "--server", target, "--steps", "20000", "--rate", "100"]
        demo = subprocess.Popen([sys.executable, "-m", "runstream_service", *demo_command], start_new_session=True)

    def stop_demo() -> None:  # before the server drains: its writers then find no server gone mid-stream
        if demo is not None and demo.poll() is None:
            demo.terminate()

    try:
        run(settings, on_stop=stop_demo)
    except (StoreOpenError, LakeError) as exc:
        print(f"runstream: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_demo()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from runstream_service.demo import stream_demo

    run_ids = stream_demo(args.server, runs=args.runs, steps=args.steps, rate=args.rate, project=args.project)
    print(f"runstream demo: streamed {len(run_ids)} runs of {args.steps} steps into {args.server}")
    return 0


def _import_tensorboard(args: argparse.Namespace) -> int:
    from runstream._transport import TransportError
    from runstream_service.tbfollow import follow
    from runstream_service.tbimport import import_tensorboard, local_server

    logdir = Path(args.logdir)
    if args.interval <= 0:
        print("runstream import-tensorboard: --interval must be a number of seconds > 0", file=sys.stderr)
        return 2
    try:
        if args.data:
            with local_server(Path(args.data)) as address:
                if args.follow:
                    follow(logdir, args.project, address, token="", interval=args.interval)
                else:
                    import_tensorboard(logdir, args.project, address, token="")
        else:
            server = args.server or os.environ.get("RUNSTREAM_SERVER", "127.0.0.1:50051")
            if args.follow:
                follow(logdir, args.project, server, interval=args.interval)
            else:
                import_tensorboard(logdir, args.project, server)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"runstream import-tensorboard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C while following: quit at once, without a traceback
        print("runstream import-tensorboard: interrupted", file=sys.stderr)
        return 130
    except TransportError as exc:  # the server refused or did not answer: say which, without a traceback
        if exc.unreachable:
            where = args.server or os.environ.get("RUNSTREAM_SERVER", "127.0.0.1:50051")
            print(
                f"runstream import-tensorboard: cannot reach the server at {where} ({exc}). Start one with "
                "`runstream serve`, pass --server HOST:PORT, or import into a stopped server's data with --data DIR.",
                file=sys.stderr,
            )
        else:
            print(f"runstream import-tensorboard: the server refused the import: {exc}", file=sys.stderr)
        return 1
    return 0


def _sync(args: argparse.Namespace) -> int:
    from runstream._sync import format_result, sync

    results = sync(args.dir, server=args.server, timeout=args.timeout)
    for result in results:
        print(format_result(result))
    uploaded = [r for r in results if r.outcome == "uploaded"]
    print(
        f"runstream sync: {len(results)} spools in {args.dir}: {len(uploaded)} uploaded "
        f"({sum(r.points for r in results)} points in {sum(r.batches for r in results)} batches), "
        f"{sum(r.outcome == 'skipped' for r in results)} in use, {sum(not r.ok for r in results)} failed or incomplete"
    )
    return 0 if all(r.ok for r in results) else 1


def _sql(args: argparse.Namespace) -> int:
    from runstream_service.sql import SqlError, format_rows, query_file, query_url

    try:
        if args.url:
            columns, rows = query_url(args.url, args.query)
        else:
            columns, rows = query_file(Path(args.data), args.query)
    except SqlError as exc:
        print(f"runstream sql: {exc}", file=sys.stderr)
        return 1
    print(format_rows(columns, rows, args.format))
    return 0
