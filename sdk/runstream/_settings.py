"""SDK settings: declared as data, resolved once from arguments, then environment, then defaults."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("server", "RUNSTREAM_SERVER", "127.0.0.1:50051", "host:port of the runstream gRPC server"),
    Setting("token", "RUNSTREAM_TOKEN", "", "bearer token sent with every call"),
    Setting("tls_ca", "RUNSTREAM_TLS_CA", "", "PEM file of the CA (or self-signed certificate) to trust: use TLS"),
    Setting("project", "RUNSTREAM_PROJECT", "default", "project of new runs"),
    Setting("mode", "RUNSTREAM_MODE", "online", "online (stream, spool when needed) or offline (spool only)"),
    Setting("dir", "RUNSTREAM_DIR", "./runstream-spool", "where spooled and offline runs are kept"),
    Setting("spool_max_bytes", "RUNSTREAM_SPOOL_MAX_BYTES", str(1 << 30), "disk budget of one run's spool"),
    Setting("spool_policy", "RUNSTREAM_SPOOL_POLICY", "block", "spool full: block (log() waits) or drop (counted)"),
    Setting("run_id", "RUNSTREAM_RUN_ID", "", "run id shared by every rank of a job (else TORCHELASTIC_RUN_ID)"),
)


@dataclass(frozen=True)
class SdkConfig:
    server: str
    token: str
    tls_ca: str
    project: str
    mode: str
    dir: str
    spool_max_bytes: str
    spool_policy: str
    run_id: str
    rank: int
    world_size: int


def torchrun_run_id(env: Mapping[str, str], parent_identity: Callable[[], str | None]) -> str:
    """The run id that every rank of a torchrun job shares: TORCHELASTIC_RUN_ID, torchrun's --rdzv-id.

    Its default is the literal "none" (with neither --rdzv-id nor --standalone), the same for every job:
    used as it is, every such job would log into one run. When all ranks are on this node
    (LOCAL_WORLD_SIZE == WORLD_SIZE), they share their parent, torchrun's agent: its identity (host,
    pid and start time) names the job. Across nodes there is no such common ground: "" (each rank its own
    run; set RUNSTREAM_RUN_ID, or torchrun's --rdzv-id, to join them).
    """
    run_id = env.get("TORCHELASTIC_RUN_ID", "")
    if run_id != "none":
        return run_id
    if env.get("LOCAL_WORLD_SIZE", "1") != env.get("WORLD_SIZE", "1"):
        return ""
    parent = parent_identity()
    if parent is None:
        return ""
    return "torchrun-" + hashlib.sha256(parent.encode()).hexdigest()[:16]


def _parent_identity() -> str | None:
    """This host, the parent process's pid and its start time (Linux /proc), or None where unknown."""
    ppid = os.getppid()
    try:
        with open(f"/proc/{ppid}/stat") as stat:
            started = stat.read().rsplit(")", 1)[1].split()[19]  # field 22: start time, in clock ticks
    except (OSError, IndexError):
        return None
    return f"{socket.gethostname()}:{ppid}:{started}"


def resolve(overrides: Mapping[str, object | None], environ: Mapping[str, str] | None = None) -> SdkConfig:
    """Arguments win over the environment, which wins over the defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for setting in SETTINGS:
        given = overrides.get(setting.name)
        values[setting.name] = str(given) if given is not None else env.get(setting.env, setting.default)
    if not values["run_id"]:
        values["run_id"] = torchrun_run_id(env, _parent_identity)
    if values["mode"] not in ("online", "offline"):
        raise ValueError(f"RUNSTREAM_MODE must be 'online' or 'offline', not {values['mode']!r}")
    if values["spool_policy"] not in ("block", "drop"):
        raise ValueError(f"RUNSTREAM_SPOOL_POLICY must be 'block' or 'drop', not {values['spool_policy']!r}")
    if _int_setting(values["spool_max_bytes"], None, "spool_max_bytes (RUNSTREAM_SPOOL_MAX_BYTES)", 0) <= 0:
        raise ValueError(f"RUNSTREAM_SPOOL_MAX_BYTES must be a positive integer, not {values['spool_max_bytes']!r}")
    rank = _int_setting(overrides.get("rank"), env.get("RANK"), "rank (RANK)", 0)
    world_size = _int_setting(overrides.get("world_size"), env.get("WORLD_SIZE"), "world_size (WORLD_SIZE)", 1)
    if rank < 0 or world_size < 1 or rank >= world_size:
        raise ValueError(f"rank must be in [0, world_size): got rank={rank}, world_size={world_size}")
    return SdkConfig(rank=rank, world_size=world_size, **values)


def _int_setting(given: object | None, from_env: str | None, what: str, default: int) -> int:
    raw = given if given is not None else from_env
    if raw is None or raw == "":
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise ValueError(f"{what} must be an integer, got {raw!r}") from None
