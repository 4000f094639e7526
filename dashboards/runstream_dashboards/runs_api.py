"""Run actions over HTTP: delete, rename, tags, note, archive (runstream_service.run_actions).

- `DELETE /api/runs/{run_id}` -> `{"deleted": {"run_id", "project", "name", "points", "deleted_by", "deleted_at"}}`
- `PATCH /api/runs/{run_id}` with a JSON object of any of `name`, `tags` (replaces them), `add_tags`,
  `remove_tags`, `note`, `archived` -> `{"run_id", "name", "tags", "note", "archived"}`
- `GET /api/run_deletions` -> `{"deletions": [...]}`: the log of deletes (the `run_deletions` view)

With --tokens the app's middleware has already required `read`; these changes need `admin:PROJECT`
(the run's project) or `admin:*` too (runstream_service.auth). A delete is logged with who made it:
the token's fingerprint, or `http, no tokens` on a server without tokens.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from runstream_dashboards import auth
from runstream_dashboards.ports import AppDeps, RunActions
from runstream_service.auth import require_admin
from runstream_service.errors import BadRequest, NotFound
from runstream_service.store import lifecycle

ACTIONS_KEY: web.AppKey[RunActions] = web.AppKey("run_actions")
DEPS_KEY: web.AppKey[AppDeps] = web.AppKey("runs_deps")
LABELS = ("tags", "add_tags", "remove_tags", "note", "archived")


def _json(payload: object) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


def _actions(request: web.Request) -> RunActions:
    actions = request.app.get(ACTIONS_KEY)
    if actions is None:
        raise NotFound("this server was started without run actions")
    return actions


def _allowed(request: web.Request, run_id: str) -> str:
    """Who acts (for the log), once their token may change the run's project."""
    project = _actions(request).project_of(run_id)
    token = auth.request_token(request)
    if request.app[auth.TOKENS_KEY] is None:
        return "http, no tokens"
    assert token is not None  # the middleware let the request through with a known token
    require_admin(token, project)
    return f"token {token.fingerprint}"


async def delete_run(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    who = _allowed(request, run_id)
    return _json({"deleted": await _actions(request).delete(run_id, who)})


async def change_run(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    try:
        body: Any = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest('the body must be JSON, e.g. {"name": "baseline", "add_tags": ["best"]}') from None
    if not isinstance(body, dict) or not body:
        raise BadRequest(f"the body must be a JSON object with any of: name, {', '.join(LABELS)}")
    unknown = sorted(set(body) - {"name", *LABELS})
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; use name, {', '.join(LABELS)}")
    if "archived" in body and not isinstance(body["archived"], bool):
        raise BadRequest("archived: must be true or false")
    _allowed(request, run_id)
    actions = _actions(request)
    if "name" in body:
        await actions.rename(run_id, lifecycle.check_name(body["name"]))
    labels = {key: body[key] for key in LABELS if key in body}
    answer: dict[str, Any] = {"run_id": run_id}
    if "name" in body:
        answer["name"] = body["name"]
    answer |= await actions.label(run_id, labels)
    return _json(answer)


async def run_deletions(request: web.Request) -> web.Response:
    found = await request.app[DEPS_KEY].reader.run(lifecycle.deletions)
    return _json({"deletions": found})


def setup(app: web.Application, deps: AppDeps) -> None:
    app[DEPS_KEY] = deps
    if deps.run_actions is not None:
        app[ACTIONS_KEY] = deps.run_actions
    app.router.add_delete("/api/runs/{run_id}", delete_run)
    app.router.add_patch("/api/runs/{run_id}", change_run)
    app.router.add_get("/api/run_deletions", run_deletions)
