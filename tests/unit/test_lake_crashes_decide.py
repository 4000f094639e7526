"""store/lake_crashes.py's decision, pure: which lake runs are crashed, which are running again."""

from __future__ import annotations

from runstream_service.store.lake_crashes import decide


def test_decide_marks_unseen_running_runs_crashed_and_seen_crashed_runs_running() -> None:
    runs = [("idle", "running", 100.0), ("live", "running", 100.0), ("back", "crashed", 150.0), ("done", "finished", 0)]
    seen = {"live": 195.0, "back": 160.0, "idle": 120.0}
    assert decide(runs, seen, now=200.0, crash_after=30.0) == (["idle"], ["back"])
    assert decide(runs, {}, now=120.0, crash_after=30.0) == ([], [])  # opened 20 s ago, never seen: not yet
