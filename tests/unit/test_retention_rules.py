"""Retention rules: the file, the flags, which rule applies to a project, and the thinning jobs' sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from runstream_service.retention import (
    DAY_SECONDS,
    ProjectRetention,
    RetentionError,
    RetentionPolicy,
    load_policy,
    parse_policy,
    with_flags,
)
from runstream_service.retention_job import jobs_of


def test_a_toml_file_and_the_flags_merge_with_the_flags_winning(tmp_path: Path) -> None:
    path = tmp_path / "retention.toml"
    path.write_text(
        'interval_seconds = 60\n[projects.mnist]\nraw_after_days = 30\ndelete_after_days = 365\n[projects."*"]\n'
        "delete_after_days = 90\n"
    )
    policy = with_flags(load_policy(path), ["mnist=400", "scratch=1.5"], ["*=7"], None)
    assert policy.interval_seconds == 60
    assert policy.for_project("mnist") == ProjectRetention(delete_after_days=400, raw_after_days=30)
    assert policy.for_project("scratch") == ProjectRetention(delete_after_days=1.5)
    assert policy.for_project("other") == ProjectRetention(delete_after_days=90, raw_after_days=7)


def test_json_files_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "retention.json"
    path.write_text('{"projects": {"a": {"raw_after_days": 2}}}')
    assert load_policy(path) == RetentionPolicy({"a": ProjectRetention(raw_after_days=2)})


def test_cutoffs_only_for_projects_with_a_rule() -> None:
    policy = RetentionPolicy({"a": ProjectRetention(delete_after_days=1), "b": ProjectRetention(raw_after_days=2)})
    now = 10 * DAY_SECONDS
    assert policy.cutoffs(["a", "b", "c"], now) == {"a": (9 * DAY_SECONDS, None), "b": (None, 8 * DAY_SECONDS)}
    assert RetentionPolicy().empty and not policy.empty


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"projects": {"a": {"delete_after_days": 0}}}, "projects.a.delete_after_days: expected a number of days > 0"),
        ({"projects": {"a": {"keep": 3}}}, "projects.a: expected one or both of delete_after_days, raw_after_days"),
        ({"projects": {"a": {"raw_after_days": "7"}}}, "expected a number of days > 0, got '7'"),
        ({"interval_seconds": -1}, "interval_seconds must be a number of seconds > 0"),
        ({"project": {}}, "unknown keys ['project']"),
    ],
)
def test_mistakes_name_the_key(document: dict[str, object], message: str) -> None:
    with pytest.raises(RetentionError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_policy(document, "f.toml")


def test_flags_say_what_they_expect() -> None:
    with pytest.raises(RetentionError, match="expected PROJECT=DAYS"):
        with_flags(RetentionPolicy(), ["90"], [], None)
    with pytest.raises(RetentionError, match="DAYS must be a number"):
        with_flags(RetentionPolicy(), [], ["a=soon"], None)


def test_unreadable_files_say_which_and_why(tmp_path: Path) -> None:
    with pytest.raises(RetentionError, match="not valid TOML"):
        (tmp_path / "r.toml").write_text("projects = [")
        load_policy(tmp_path / "r.toml")
    with pytest.raises(RetentionError, match="No such file"):
        load_policy(tmp_path / "missing.toml")


def test_thinning_jobs_hold_at_most_the_limit_unless_one_series_is_bigger() -> None:
    series = [(1, 5, 0.0), (2, 5, 0.0), (3, 20, 0.0), (4, 1, 0.0), (5, 9, 0.0)]
    assert [[s for s, _, _ in job] for job in jobs_of(series, limit=10)] == [[1, 2], [3], [4, 5]]
    assert jobs_of([], limit=10) == []
