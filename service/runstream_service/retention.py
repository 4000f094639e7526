"""Retention per project: what to remove, and after how long. Pure: parsing and merging, no I/O but reading the file.

Two rules, each optional, per project (`*`: every project without its own entry):

- `delete_after_days`: a run that is no longer running (finished, failed or crashed) and has had no
  activity (its end, else its last point's wall time, else its start) for that many days is deleted,
  with everything it owns, as `runstream runs delete` deletes it (logged in `run_deletions` as
  `retention`).
- `raw_after_days`: a scalar series whose last point was logged (by its wall time) that many days
  ago keeps only the points its finest rollup tier names: per bucket of 16 steps, the first, the
  last, the smallest and the largest (all ranks at those steps). The rollup tiers stay whole, so
  every chart on the step axis draws as before wherever a pixel column spans 16 steps or more (the
  M4 of whole buckets is exact), and closer in it draws those points. At most 4 of every 16 points
  are kept. A later merge recomputes rollups from what is kept: their first, last, minimum and
  maximum stay exact, their counts and sums (means of grouped runs) then count the kept points.

The file (`--retention FILE`) is TOML or JSON (by its suffix; anything but `.json` is read as TOML):

    interval_seconds = 3600          # how often the rules are applied (default 3600)
    [projects.mnist]
    raw_after_days = 30
    delete_after_days = 365
    [projects."*"]
    delete_after_days = 90

Flags `--delete-runs-after PROJECT=DAYS` and `--raw-points-after PROJECT=DAYS` (repeatable) add to
the file's rules and win over it.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ANY_PROJECT = "*"
DEFAULT_INTERVAL_SECONDS = 3600.0
RULES = ("delete_after_days", "raw_after_days")
DAY_SECONDS = 86_400.0


class RetentionError(ValueError):
    """A retention file or flag that cannot be used; the message names it and says what is expected."""


@dataclass(frozen=True)
class ProjectRetention:
    delete_after_days: float | None = None
    raw_after_days: float | None = None

    def merged(self, other: ProjectRetention) -> ProjectRetention:
        """These rules with `other`'s where it has one."""
        return ProjectRetention(
            delete_after_days=other.delete_after_days
            if other.delete_after_days is not None
            else self.delete_after_days,
            raw_after_days=other.raw_after_days if other.raw_after_days is not None else self.raw_after_days,
        )


@dataclass(frozen=True)
class RetentionPolicy:
    projects: Mapping[str, ProjectRetention] = field(default_factory=dict)
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS

    @property
    def empty(self) -> bool:
        return not any(r.delete_after_days is not None or r.raw_after_days is not None for r in self.projects.values())

    def for_project(self, project: str) -> ProjectRetention:
        """The project's rules: its own entry, or `*`'s, or none."""
        return self.projects.get(project) or self.projects.get(ANY_PROJECT) or ProjectRetention()

    def cutoffs(self, projects: Iterable[str], now: float) -> dict[str, tuple[float | None, float | None]]:
        """project -> (delete runs idle since before, thin series last written before), as epoch seconds."""
        found: dict[str, tuple[float | None, float | None]] = {}
        for project in projects:
            rules = self.for_project(project)
            delete = None if rules.delete_after_days is None else now - rules.delete_after_days * DAY_SECONDS
            raw = None if rules.raw_after_days is None else now - rules.raw_after_days * DAY_SECONDS
            if delete is not None or raw is not None:
                found[project] = (delete, raw)
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "interval_seconds": self.interval_seconds,
            "projects": {
                name: {"delete_after_days": r.delete_after_days, "raw_after_days": r.raw_after_days}
                for name, r in sorted(self.projects.items())
            },
        }


def _days(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise RetentionError(f"{where}: expected a number of days > 0, got {value!r}")
    return float(value)


def parse_policy(document: Mapping[str, Any], source: str) -> RetentionPolicy:
    """The policy a parsed file holds; RetentionError naming the key that is wrong."""
    unknown = set(document) - {"interval_seconds", "projects"}
    if unknown:
        raise RetentionError(f"{source}: unknown keys {sorted(unknown)}; expected interval_seconds and projects")
    interval = document.get("interval_seconds", DEFAULT_INTERVAL_SECONDS)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < math.inf:
        raise RetentionError(f"{source}: interval_seconds must be a number of seconds > 0, got {interval!r}")
    projects = document.get("projects", {})
    if not isinstance(projects, Mapping):
        raise RetentionError(f"{source}: projects must be a table of project -> rules")
    rules: dict[str, ProjectRetention] = {}
    for name, entry in projects.items():
        where = f"{source}: projects.{name}"
        if not isinstance(entry, Mapping) or not entry or set(entry) - set(RULES):
            raise RetentionError(f"{where}: expected one or both of {', '.join(RULES)}, got {entry!r}")
        rules[str(name)] = ProjectRetention(
            delete_after_days=_days(entry["delete_after_days"], f"{where}.delete_after_days")
            if "delete_after_days" in entry
            else None,
            raw_after_days=_days(entry["raw_after_days"], f"{where}.raw_after_days")
            if "raw_after_days" in entry
            else None,
        )
    return RetentionPolicy(rules, float(interval))


def load_policy(path: Path) -> RetentionPolicy:
    """Read `path` (TOML, or JSON when it ends in .json)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RetentionError(f"--retention {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RetentionError(
            f"--retention {path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
        ) from None
    if not isinstance(document, Mapping):
        raise RetentionError(f"--retention {path}: expected a table at the top")
    return parse_policy(document, f"--retention {path}")


def parse_flag(value: str, rule: str, flag: str) -> tuple[str, ProjectRetention]:
    """`PROJECT=DAYS` of a rule flag."""
    project, sep, days = value.rpartition("=")
    if not sep or not project:
        raise RetentionError(f"{flag} {value!r}: expected PROJECT=DAYS (PROJECT may be '*')")
    try:
        number = float(days)
    except ValueError:
        raise RetentionError(f"{flag} {value!r}: DAYS must be a number") from None
    return project, ProjectRetention(**{rule: _days(number, f"{flag} {value!r}")})


def with_flags(
    policy: RetentionPolicy, delete_runs_after: list[str], raw_points_after: list[str], interval: float | None
) -> RetentionPolicy:
    """The file's policy with the flags' rules added (a flag wins over the file for its project and rule)."""
    projects = dict(policy.projects)
    for values, rule, flag in (
        (delete_runs_after, "delete_after_days", "--delete-runs-after"),
        (raw_points_after, "raw_after_days", "--raw-points-after"),
    ):
        for value in values:
            project, rules = parse_flag(value, rule, flag)
            projects[project] = projects.get(project, ProjectRetention()).merged(rules)
    if interval is not None and not 0 < interval < math.inf:
        raise RetentionError(f"--retention-interval must be a number of seconds > 0, got {interval}")
    return replace(policy, projects=projects, interval_seconds=interval or policy.interval_seconds)
