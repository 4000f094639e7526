"""SDK settings: declared as data, resolved once from arguments, then environment, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
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


def resolve(overrides: Mapping[str, object | None], environ: Mapping[str, str] | None = None) -> SdkConfig:
    """Arguments win over the environment, which wins over the defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for setting in SETTINGS:
        given = overrides.get(setting.name)
        values[setting.name] = str(given) if given is not None else env.get(setting.env, setting.default)
    if not values["run_id"]:
        values["run_id"] = env.get("TORCHELASTIC_RUN_ID", "")
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
