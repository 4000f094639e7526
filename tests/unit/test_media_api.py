"""The Audio, Video and Mesh tabs' reads in-process: the real schema in an in-memory DuckDB, rows put in
by hand with the contract's columns, the HTTP app's routes over it (no server, no writer thread).
The live-server path (SDK -> gRPC -> views -> these routes) is tests/browser/test_media_tabs.py's."""

from __future__ import annotations

import asyncio
import io
import json
import wave
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from runstream_dashboards.app import make_app
from runstream_dashboards.media_api import byte_range, mesh_body
from runstream_dashboards.ports import AppDeps, Health
from runstream_service.store import media_queries
from runstream_service.store.schema import create_schema

RUN = "run-a"


def wav_bytes(frames: int, rate: int, channels: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.zeros(frames * channels, "<i2").tobytes())
    return out.getvalue()


def gif_bytes(frames: int, size: tuple[int, int]) -> bytes:
    images = [Image.new("RGB", size, (40 * i % 256, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=250, loop=0)
    return out.getvalue()


VERTICES = np.array([[1, 1, 1], [-1, -1, 1], [1, -1, -1], [-1, 1, -1]], np.float32)
COLORS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 255]], np.uint8)
FACES = np.array([[0, 2, 3], [0, 3, 1], [0, 1, 2], [1, 3, 2]], np.int32)
CLIP = wav_bytes(8000, 16000, 2)
GIF = gif_bytes(3, (8, 6))


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    create_schema(con)
    con.execute(
        "INSERT INTO run_meta (run_id, project, name, config, status, created_at, world_size) "
        "VALUES (?, 'p', 'a', '{}', 'running', 0, 1)",
        [RUN],
    )
    con.execute(
        "INSERT INTO series VALUES (1, ?, 'audio', 'voice'), (2, ?, 'video', 'clip'), (3, ?, 'mesh', 'shape')",
        [RUN, RUN, RUN],
    )
    con.execute("INSERT INTO audio_points VALUES (1, 5, 0, 1.0, 16000, 2, 8000, ?)", [CLIP])
    con.execute("INSERT INTO video_points VALUES (2, 7, 0, 1.0, 8, 6, 3, 4.0, 'image/gif', ?)", [GIF])
    con.execute(
        "INSERT INTO mesh_points VALUES (3, 1, 0, 1.0, 0, 4, 4, ?, ?, ?, ?), "
        "(3, 1, 0, 1.0, 1, 4, 0, ?, NULL, NULL, '{}')",
        [
            VERTICES.ravel().tolist(),
            COLORS.ravel().tolist(),
            FACES.ravel().tolist(),
            json.dumps({"camera": {"fov": 60}}),
            (VERTICES * 2).ravel().tolist(),
        ],
    )
    yield con
    con.close()


class CursorReader:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    async def run(self, read: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        return read(self.con)


HEALTH = Health(0, 0, 0, 0, 0, 0, 0, 0, 0, False, 0, 0.0, "1 GiB", 0, 0.0, ())


class NoChanges:
    commit_number = 0

    def runs_changed_since(self, commit_number: int) -> list[str]:
        return []


def call(con: duckdb.DuckDBPyConnection, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    async def go() -> tuple[int, bytes, Any]:
        deps = AppDeps(
            reader=CursorReader(con), health=lambda: HEALTH, changes=NoChanges(), sql_timeout=5.0, tokens=None
        )
        async with TestClient(TestServer(make_app(deps))) as client:
            reply = await client.get(path, headers=headers)
            return reply.status, await reply.read(), reply.headers

    return asyncio.run(go())


def test_audio_list_and_clip_with_ranges_and_cache(con: duckdb.DuckDBPyConnection) -> None:
    status, body, _ = call(con, f"/api/audio?run={RUN}&tag=voice")
    (clip,) = json.loads(body)["audio"]
    assert status == 200
    assert {k: clip[k] for k in ("step", "rank", "sample_rate", "channels", "frames", "duration")} == {
        "step": 5,
        "rank": 0,
        "sample_rate": 16000.0,
        "channels": 2,
        "frames": 8000,
        "duration": 0.5,
    }
    status, data, headers = call(con, clip["url"])
    assert status == 200 and data == CLIP and headers["Content-Type"] == "audio/wav"
    assert "immutable" in headers["Cache-Control"] and headers["Accept-Ranges"] == "bytes"
    assert call(con, clip["url"], {"If-None-Match": headers["ETag"]})[0] == 304
    status, data, headers = call(con, clip["url"], {"Range": "bytes=4-11"})
    assert status == 206 and data == CLIP[4:12] and headers["Content-Range"] == f"bytes 4-11/{len(CLIP)}"
    status, data, _ = call(con, clip["url"], {"Range": "bytes=-10"})
    assert status == 206 and data == CLIP[-10:]
    status, _, headers = call(con, clip["url"], {"Range": f"bytes={len(CLIP)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(CLIP)}"


def test_video_list_and_bytes(con: duckdb.DuckDBPyConnection) -> None:
    status, body, _ = call(con, f"/api/videos?run={RUN}&tag=clip")
    (video,) = json.loads(body)["videos"]
    assert (video["step"], video["width"], video["height"], video["frames"], video["fps"], video["mime"]) == (
        7,
        8,
        6,
        3,
        4.0,
        "image/gif",
    )
    status, data, headers = call(con, video["url"])
    assert status == 200 and data == GIF and headers["Content-Type"] == "image/gif"
    assert Image.open(io.BytesIO(data)).n_frames == 3


def test_mesh_list_binary_and_json(con: duckdb.DuckDBPyConnection) -> None:
    status, body, _ = call(con, f"/api/meshes?run={RUN}&tag=shape")
    meshes = json.loads(body)["meshes"]
    assert [(m["sample"], m["vertex_count"], m["face_count"], m["has_colors"]) for m in meshes] == [
        (0, 4, 4, True),
        (1, 4, 0, False),
    ]
    assert meshes[0]["config"] == {"camera": {"fov": 60}} and meshes[1]["config"] == {}
    status, data, headers = call(con, meshes[0]["url"])
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert (headers["X-Vertex-Count"], headers["X-Face-Count"], headers["X-Has-Colors"]) == ("4", "4", "1")
    assert np.array_equal(np.frombuffer(data, "<f4", 12).reshape(4, 3), VERTICES)
    assert np.array_equal(np.frombuffer(data, "<u4", 12, offset=48).reshape(4, 3), FACES)
    assert np.array_equal(np.frombuffer(data, "u1", 12, offset=96).reshape(4, 3), COLORS)
    status, data, headers = call(con, meshes[1]["url"])
    assert (headers["X-Face-Count"], headers["X-Has-Colors"]) == ("0", "0")
    assert np.array_equal(np.frombuffer(data, "<f4").reshape(4, 3), VERTICES * 2)
    status, body, _ = call(con, meshes[0]["url"] + "&format=json")
    got = json.loads(body)
    assert got["vertices"] == VERTICES.ravel().tolist() and got["faces"] == FACES.ravel().tolist()
    assert got["colors"] == COLORS.ravel().tolist() and got["config"] == {"camera": {"fov": 60}}


def test_missing_points_and_parameters_say_what(con: duckdb.DuckDBPyConnection) -> None:
    status, body, _ = call(con, f"/api/audio?run={RUN}&tag=nothing")
    assert status == 404 and "no audio tag 'nothing'" in json.loads(body)["error"]
    status, body, _ = call(con, f"/api/audio/clip?run={RUN}&tag=voice&step=6")
    assert status == 404 and "no audio 'voice' at step 6" in json.loads(body)["error"]
    status, body, _ = call(con, f"/api/video?run={RUN}&tag=clip")
    assert status == 400 and "'step'" in json.loads(body)["error"]
    status, body, _ = call(con, f"/api/mesh?run={RUN}&tag=shape&step=1&sample=2")
    assert status == 404 and "sample 2" in json.loads(body)["error"]
    status, body, _ = call(con, "/api/meshes?run=nobody&tag=shape")
    assert status == 404 and "unknown run id" in json.loads(body)["error"]


def test_a_million_vertices_come_back_as_typed_arrays(con: duckdb.DuckDBPyConnection) -> None:
    n = 1_000_000
    vertices = np.random.default_rng(0).random((n, 3), np.float32)
    con.execute("INSERT INTO series VALUES (4, ?, 'mesh', 'cloud')", [RUN])
    con.execute(
        "INSERT INTO mesh_points SELECT 4, 0, 0, 1.0, 0, ?, 0, ?::FLOAT[], NULL, NULL, '{}'", [n, vertices.ravel()]
    )
    mesh = media_queries.mesh_arrays(con, RUN, "cloud", 0, 0, 0)
    assert mesh.vertices.dtype == np.float32 and np.array_equal(mesh.vertices, vertices.ravel())
    assert mesh.faces is None and mesh.colors is None
    assert len(mesh_body(mesh)) == n * 12


def test_byte_ranges() -> None:
    assert byte_range(None, 100) is None
    assert byte_range("bytes=0-", 100) == (0, 100)
    assert byte_range("bytes=10-19", 100) == (10, 20)
    assert byte_range("bytes=90-500", 100) == (90, 100)
    assert byte_range("bytes=-30", 100) == (70, 100)
    assert byte_range("bytes=-300", 100) == (0, 100)
    assert byte_range("bytes=0-1,5-6", 100) is None  # several ranges: the whole body
    assert byte_range("items=0-1", 100) is None
    for bad in ("bytes=100-", "bytes=5-2", "bytes=-0"):
        with pytest.raises(ValueError):
            byte_range(bad, 100)
