"""The HPARAMS tab's one read: runs by hyperparameters, other config keys and final metrics, as columns.

`GET /api/hparams?project=P&q=TEXT&config.KEY=VALUE` (the project's runs, filtered as /api/runs does)
or `GET /api/hparams?runs=ID,ID` -> `{"runs": {"run_id": [...], "name": [...], "status": [...],
"created_at": [...]}, "columns": [{"key", "group", "type", "values": [...]}], "truncated": bool}`.

One request answers for every run, whatever their number, so the tab draws hundreds of runs after
one round trip. Each column holds one value per run, in the order of `runs` (newest run first), `null`
where a run has none:
- group `hparam`: the keys of a run's config `hparams` (what SummaryWriter.add_hparams stores), as
  `hparams.KEY`; `domain` lists the values `hparam_domain_discrete` declared for it, if any;
- group `config`: every other config key, nested objects flattened with dots (`optimizer.lr`), lists
  as JSON text;
- group `metric`: each scalar tag's last value by step -- the value at the series' greatest step
  (with several points there, rank 0's, then the last written), and that step in `steps`. For an
  add_hparams run these are its metric_dict.
`type` is `number` when every value is a number, `bool` when every value is a boolean, else `string`
(the other values written as text).

The metrics are one SQL query through the reads seam (AppDeps.reads): on one server's file,
store/queries.py's last_values (series_stats, the writer's per-series summary, gives each series' last
step, and a join on (series_id, step) picks the points there, so the read does not aggregate a series'
history); on a lake server, store/lake_queries.py's over the whole lake. Config flattening is plain
Python over the runs' JSON (pure, below).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import duckdb
import orjson
from aiohttp import web

from runstream_dashboards import params
from runstream_dashboards.ports import AppDeps, RunReads
from runstream_service.errors import BadRequest, NotFound
from runstream_service.store import queries

DEPS_KEY: web.AppKey[AppDeps] = web.AppKey("hparams_deps")
MAX_RUNS = 10_000  # the newest ones; `truncated` says when there were more
HPARAMS = "hparams"
DOMAINS = "hparam_domain_discrete"

Value = bool | int | float | str


# -- pure: configs to columns ---------------------------------------------------------------------


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Value]:
    """A config as flat `dotted.key -> value`: objects recursed into, lists as JSON text, nulls left out."""
    flat: dict[str, Value] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
    return flat


def config_values(config: Mapping[str, Any]) -> dict[str, Value]:
    """A run's hyperparameters (`hparams.KEY`) and other config keys; the hparam domains are not values."""
    return flatten({k: v for k, v in config.items() if k != DOMAINS})


def column_type(values: list[Value | None]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "number"
    return "string"


def _text(value: Value | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return queries.js_number(float(value)) if isinstance(value, float) else str(value)


def config_columns(configs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The hparam and config columns of these runs' configs: hparams first, each group in the order
    its keys first appear (the order the user wrote them)."""
    rows = [config_values(c) for c in configs]
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    ordered = [k for k in keys if k.startswith(f"{HPARAMS}.")] + [k for k in keys if not k.startswith(f"{HPARAMS}.")]
    domains: dict[str, list[Any]] = {}
    for config in configs:
        declared = config.get(DOMAINS)
        if isinstance(declared, Mapping):
            for name, values in declared.items():
                if isinstance(values, list):
                    domains.setdefault(f"{HPARAMS}.{name}", values)
    columns = []
    for key in ordered:
        values = [row.get(key) for row in rows]
        kind = column_type(values)
        column: dict[str, Any] = {
            "key": key,
            "group": "hparam" if key.startswith(f"{HPARAMS}.") else "config",
            "type": kind,
            "values": [_text(v) for v in values] if kind == "string" else values,
        }
        if key in domains:
            column["domain"] = domains[key]
        columns.append(column)
    return columns


def metric_columns(run_ids: list[str], rows: list[tuple[str, str, int, float | None]]) -> list[dict[str, Any]]:
    """(run_id, tag, step, value) rows -> one `metric` column per tag (sorted), aligned with `run_ids`."""
    index = {run_id: i for i, run_id in enumerate(run_ids)}
    by_tag: dict[str, dict[str, Any]] = {}
    for run_id, tag, step, value in rows:
        column = by_tag.get(tag)
        if column is None:
            column = by_tag[tag] = {
                "key": tag,
                "group": "metric",
                "type": "number",
                "values": [None] * len(run_ids),
                "steps": [None] * len(run_ids),
            }
        column["values"][index[run_id]] = value
        column["steps"][index[run_id]] = step
    return [by_tag[tag] for tag in sorted(by_tag)]


# -- the read, on a cursor ------------------------------------------------------------------------


def read_hparams(
    cur: duckdb.DuckDBPyConnection,
    reads: RunReads,
    project: str | None,
    text: str | None,
    config: dict[str, str],
    run_ids: list[str] | None,
) -> dict[str, Any]:
    """The table of the chosen runs (run_ids, else the project's runs matching text and config), read through
    `reads` (this server's file, or a lake server's whole lake)."""
    if run_ids is not None:
        wanted = set(run_ids)
        found = [run for run in reads.list_runs(cur, None, None, {}) if run["run_id"] in wanted]
        missing = [run_id for run_id in run_ids if run_id not in {run["run_id"] for run in found}]
        if missing:
            raise NotFound(f"unknown run id(s): {', '.join(missing)}")
    else:
        found = reads.list_runs(cur, project, text, config)
    truncated = len(found) > MAX_RUNS
    found = found[:MAX_RUNS]
    ids = [r["run_id"] for r in found]
    return {
        "runs": {name: [r[name] for r in found] for name in ("run_id", "name", "status", "created_at")},
        "columns": config_columns([r["config"] for r in found]) + metric_columns(ids, reads.last_values(cur, ids)),
        "truncated": truncated,
    }


# -- HTTP -----------------------------------------------------------------------------------------


async def hparams(request: web.Request) -> web.Response:
    run_ids = params.run_ids(request, limit=MAX_RUNS) if "runs" in request.query else None
    project = request.query.get("project") or None
    if run_ids is None and project is None:
        raise BadRequest("give project=P (its runs, filtered as /api/runs filters them) or runs=ID,ID")
    text = request.query.get("q") or None
    config = {k[len("config.") :]: v for k, v in request.query.items() if k.startswith("config.") and len(k) > 7}
    deps = request.app[DEPS_KEY]
    found = await deps.reader.run(lambda cur: read_hparams(cur, deps.reads, project, text, config, run_ids))
    body = orjson.dumps(found, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    return web.Response(body=body, content_type="application/json")


def setup(app: web.Application, deps: AppDeps) -> None:
    app[DEPS_KEY] = deps
    app.router.add_get("/api/hparams", hparams)
