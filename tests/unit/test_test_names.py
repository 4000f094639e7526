"""pytest imports test modules by their basename (rootdir-relative "prepend" mode): two with one name in
different folders stop the whole run at collection. Fail here, with the names, instead."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parents[1]


def test_every_test_module_name_is_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
