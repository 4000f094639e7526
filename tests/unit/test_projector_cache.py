"""The Projector's folder under its size bound: least recently used out first, files in use kept."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from runstream_service.projector.cache import CachedFile, to_evict, touch, trim


def files(*specs: tuple[str, int, float]) -> list[CachedFile]:
    return [CachedFile(Path(name), size, used) for name, size, used in specs]


def test_least_recently_used_go_first_until_the_rest_fits() -> None:
    found = files(("new", 40, 3.0), ("old", 40, 1.0), ("mid", 40, 2.0))
    assert to_evict(found, 120, keep=()) == []
    assert to_evict(found, 80, keep=()) == [Path("old")]
    assert to_evict(found, 50, keep=()) == [Path("old"), Path("mid")]
    assert to_evict(found, 0, keep=()) == [Path("old"), Path("mid"), Path("new")]


def test_files_in_use_stay_even_over_the_bound() -> None:
    found = files(("in-use", 100, 1.0), ("other", 10, 2.0), ("written", 100, 3.0))
    assert to_evict(found, 50, keep={Path("in-use"), Path("written")}) == [Path("other")]


def test_trim_deletes_results_with_their_json_and_keeps_what_a_use_touched(tmp_path: Path) -> None:
    def write(name: str, used: float) -> Path:
        path = tmp_path / name
        np.save(path, np.zeros(1000, dtype=np.float32))  # about 4 KB each
        os.utime(path, (used, used))
        return path

    old_result, vectors, newest = write("key1.npy", 100.0), write("data-abc.npy", 200.0), write("key2.npy", 300.0)
    (tmp_path / "key1.json").write_text("{}")
    (tmp_path / "key3.npy.partial").write_bytes(b"x" * 100_000)  # being written: neither counted nor deleted
    touch(old_result)  # used now: the newest use
    size = old_result.stat().st_size
    assert trim(tmp_path, 2 * size, keep={newest}) == [vectors]
    assert trim(tmp_path, size, keep={newest}) == [old_result]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key2.npy", "key3.npy.partial"]
