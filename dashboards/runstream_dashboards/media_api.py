"""The Audio, Video and Mesh tabs' reads: lists as JSON, each clip, video or mesh by its own URL.

`GET /api/audio?run=&tag=` -> `{run_id, tag, audio: [{step, rank, wall_time, sample_rate, channels,
frames, duration, url}]}`; each `url` (`/api/audio/clip?run=&tag=&step=&rank=`) answers the WAV file,
with byte ranges (an <audio> element asks for them to seek).
`GET /api/videos?run=&tag=` -> `{run_id, tag, videos: [{step, rank, wall_time, width, height, frames,
fps, mime, url}]}`; each `url` (`/api/video?...`) answers the APNG or GIF (an <img> plays it).
`GET /api/meshes?run=&tag=` -> `{run_id, tag, meshes: [{step, rank, sample, wall_time, vertex_count,
face_count, has_colors, config, url}]}`; each `url` (`/api/mesh?...&sample=`) answers the mesh as
binary, little-endian: vertex_count x 3 float32 (x, y, z), then face_count x 3 uint32 (vertex
indices), then vertex_count x 3 uint8 (r, g, b) when it has colours; headers `X-Vertex-Count`,
`X-Face-Count`, `X-Has-Colors` (0 or 1). The browser makes typed arrays of the body without parsing
it, so a mesh of a million vertices does not stop the page. With `format=json`, the same as
`{vertices: [...], faces: [...] | null, colors: [...] | null, config: {...}}`, for scripts.

Blobs carry an ETag and a year of caching, as `/api/image` does: a point's bytes do not change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from runstream_dashboards import auth, params
from runstream_dashboards.ports import AppDeps
from runstream_service.errors import BadRequest
from runstream_service.store import media_queries
from runstream_service.store.media_queries import Blob

DEPS_KEY: web.AppKey[AppDeps] = web.AppKey("media_deps")
MAX_STEP = 2**63 - 1
MAX_RANK = 2**31 - 1
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _json(payload: object) -> web.Response:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    return web.Response(body=body, content_type="application/json")


def _point(request: web.Request) -> tuple[str, str, int, int]:
    step = params.integer(request, "step", -1, 0, MAX_STEP)
    if step < 0:
        raise BadRequest("missing query parameter 'step'")
    rank = params.integer(request, "rank", 0, 0, MAX_RANK)
    return params.required(request, "run"), params.required(request, "tag"), step, rank


def _listed(request: web.Request, route: str, items: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """Each item with its `url`: the route with run, tag and the item's `keys` as the query."""
    run_id, tag = request.query["run"], request.query["tag"]
    url = request.app.router[route].url_for()
    for item in items:
        item["url"] = str(url.with_query({"run": run_id, "tag": tag} | {k: str(item[k]) for k in keys}))
    return items


def _cache_headers(request: web.Request, data: bytes) -> dict[str, str]:
    etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
    # Behind tokens, shared caches must not keep a clip for people without one.
    audience = "public" if request.app[auth.TOKENS_KEY] is None else "private"
    return {"ETag": etag, "Cache-Control": f"{audience}, max-age=31536000, immutable", "Accept-Ranges": "bytes"}


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end exclusive) of a single `Range: bytes=` header over `size` bytes; None for the whole
    body (no header, or one this does not serve: several ranges, other units). Raises ValueError when the
    range lies outside the body (416)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # bytes=-N: the last N bytes
        suffix = int(match[2])
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(0, size - suffix), size
    start = int(match[1])
    end = min(size, int(match[2]) + 1) if match[2] else size
    if start >= size or end <= start:
        raise ValueError(f"range {header!r} outside {size} bytes")
    return start, end


def _blob(request: web.Request, blob: Blob) -> web.Response:
    headers = _cache_headers(request, blob.data)
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    try:
        wanted = byte_range(request.headers.get("Range"), len(blob.data))
    except ValueError:
        return web.Response(status=416, headers=headers | {"Content-Range": f"bytes */{len(blob.data)}"})
    if wanted is None:
        return web.Response(body=blob.data, content_type=blob.mime, headers=headers)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(blob.data)}"
    return web.Response(status=206, body=blob.data[start:end], content_type=blob.mime, headers=headers)


def _read(request: web.Request) -> Callable[..., Any]:
    return request.app[DEPS_KEY].reader.run


async def audio_list(request: web.Request) -> web.Response:
    run_id, tag = params.required(request, "run"), params.required(request, "tag")
    found = await _read(request)(lambda cur: media_queries.list_audio(cur, run_id, tag))
    return _json({"run_id": run_id, "tag": tag, "audio": _listed(request, "audio_clip", found, "step", "rank")})


async def audio_clip(request: web.Request) -> web.Response:
    run_id, tag, step, rank = _point(request)
    return _blob(request, await _read(request)(lambda cur: media_queries.audio_bytes(cur, run_id, tag, step, rank)))


async def video_list(request: web.Request) -> web.Response:
    run_id, tag = params.required(request, "run"), params.required(request, "tag")
    found = await _read(request)(lambda cur: media_queries.list_videos(cur, run_id, tag))
    return _json({"run_id": run_id, "tag": tag, "videos": _listed(request, "video", found, "step", "rank")})


async def video(request: web.Request) -> web.Response:
    run_id, tag, step, rank = _point(request)
    return _blob(request, await _read(request)(lambda cur: media_queries.video_bytes(cur, run_id, tag, step, rank)))


async def mesh_list(request: web.Request) -> web.Response:
    run_id, tag = params.required(request, "run"), params.required(request, "tag")
    found = await _read(request)(lambda cur: media_queries.list_meshes(cur, run_id, tag))
    meshes = _listed(request, "mesh", found, "step", "rank", "sample")
    for mesh in meshes:
        mesh["config"] = json.loads(mesh["config"] or "{}")
    return _json({"run_id": run_id, "tag": tag, "meshes": meshes})


def mesh_body(mesh: media_queries.MeshArrays) -> bytes:
    """The binary layout of the module docstring: vertices, faces, colours, each little-endian."""
    parts = [mesh.vertices.astype("<f4", copy=False).tobytes()]
    if mesh.faces is not None:
        parts.append(mesh.faces.astype("<u4", copy=False).tobytes())
    if mesh.colors is not None:
        parts.append(mesh.colors.astype("u1", copy=False).tobytes())
    return b"".join(parts)


async def mesh(request: web.Request) -> web.Response:
    run_id, tag, step, rank = _point(request)
    sample = params.integer(request, "sample", 0, 0, MAX_RANK)
    as_json = params.choice(request, "format", ("binary", "json")) == "json"
    found = await _read(request)(lambda cur: media_queries.mesh_arrays(cur, run_id, tag, step, rank, sample))
    if as_json:
        return _json(
            {
                "vertices": found.vertices,
                "faces": found.faces,
                "colors": found.colors,
                "config": json.loads(found.config),
            }
        )
    headers = {
        "X-Vertex-Count": str(found.vertices.size // 3),
        "X-Face-Count": str(0 if found.faces is None else found.faces.size // 3),
        "X-Has-Colors": "0" if found.colors is None else "1",
        "Cache-Control": "private, max-age=3600",
    }
    return web.Response(body=mesh_body(found), content_type="application/octet-stream", headers=headers)


def setup(app: web.Application, deps: AppDeps) -> None:
    app[DEPS_KEY] = deps
    app.router.add_get("/api/audio", audio_list)
    app.router.add_get("/api/audio/clip", audio_clip, name="audio_clip")
    app.router.add_get("/api/videos", video_list)
    app.router.add_get("/api/video", video, name="video")
    app.router.add_get("/api/meshes", mesh_list)
    app.router.add_get("/api/mesh", mesh, name="mesh")
