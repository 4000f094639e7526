"""The Projector's folder on disk, held under a size bound.

It holds the vectors of each embedding opened (`data-<hash>.npy`, written for the worker processes: 4 GiB
for 1M x 1,024) and each finished projection (`<cache key>.npy` and its `.json`). Past `bound_bytes`, the
files used longest ago go first (a file's modification time is its last use: a use touches it), except
those in use: the vectors of an embedding still open or of a job not finished, and the file just written.
A projection evicted is computed again when asked; vectors evicted are written again when opened.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BOUND_GIB = 16


@dataclass(frozen=True)
class CachedFile:
    path: Path
    size: int
    used: float  # seconds since the epoch


def to_evict(files: Sequence[CachedFile], bound_bytes: int, keep: Collection[Path]) -> list[Path]:
    """The files to delete, least recently used first, until the rest fit in `bound_bytes`. Pure."""
    total = sum(f.size for f in files)
    evicted = []
    for f in sorted(files, key=lambda f: (f.used, f.path.name)):
        if total <= bound_bytes:
            break
        if f.path in keep:
            continue
        evicted.append(f.path)
        total -= f.size
    return evicted


def trim(folder: Path, bound_bytes: int, keep: Collection[Path]) -> list[Path]:
    """Delete what `to_evict` names (a result's .json with its .npy); return the deleted .npy files."""
    files = []
    for path in folder.glob("*.npy"):  # files being written end in .partial; the .json files are tiny
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        files.append(CachedFile(path, status.st_size, status.st_mtime))
    evicted = to_evict(files, bound_bytes, keep)
    for path in evicted:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
    return evicted


def touch(path: Path) -> None:
    """Mark `path` as used now (it is evicted later than files used before)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        pass
