"""The Audio, Video and Mesh tabs in headless Chromium, over a live server fed through the SDK: two runs
log tones, small animations and meshes at two steps; a third logs a point cloud of a million vertices.
Each tab renders (clips whose duration loads, videos with their natural size, meshes whose WebGL
canvas holds more than the background) and the step slider changes what is shown. Screenshots go to
test-artifacts/media-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runstream
from support import ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 60_000
RATE = 16_000
BIG = 1_000_000
TETRA_VERTICES = np.array([[1, 1, 1], [-1, -1, 1], [1, -1, -1], [-1, 1, -1]], np.float32)
TETRA_COLORS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 255]], np.uint8)
TETRA_FACES = np.array([[0, 2, 3], [0, 3, 1], [0, 1, 2], [1, 3, 2]], np.int32)


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def moving_square(frames: int, shift: int) -> np.ndarray:
    video = np.full((frames, 32, 48, 3), 240, np.uint8)
    for i in range(frames):
        x = (4 * i + shift) % 40
        video[i, 12:20, x : x + 8] = (200, 40, 40)
    return video


def sphere_cloud(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(n, 3)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    colors = ((points + 1) * 127.5).astype(np.uint8)
    return points, colors


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("media")) / "data").start()
    cloud, cloud_colors = sphere_cloud(2000)
    for name, freq, seconds in (("tone-a", 440.0, 1.0), ("tone-b", 660.0, 0.5)):
        run = runstream.init(project="media", name=name, server=server.address)
        for step in (0, 1):
            run.log_audio("sound/tone", tone(freq * (step + 1), seconds), RATE, step=step)
            run.log_video("anim/square", moving_square(8, shift=step * 20), fps=4, step=step)
            run.log_mesh(
                "mesh/tetra",
                TETRA_VERTICES * (step + 1),
                colors=TETRA_COLORS,
                faces=TETRA_FACES,
                config={"camera": {"cls": "PerspectiveCamera", "fov": 60}},
                step=step,
            )
            run.log_mesh("mesh/cloud", cloud * (1 + step), colors=cloud_colors, step=step)
        run.finish()
    big, big_colors = sphere_cloud(BIG)
    run = runstream.init(project="bigmesh", name="million", server=server.address)
    run.log_mesh("cloud", big, colors=big_colors, step=0)
    run.finish()
    yield server
    server.stop()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"media-{name}.png"))


@pytest.fixture
def media_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_audio_tab_plays_each_run_s_clip(media_page: Any, media_server: ServerProcess) -> None:
    page = media_page
    page.goto(f"{media_server.http_url}/?project=media&tab=audio")
    cards = page.get_by_test_id("audio-card")
    cards.first.wait_for(timeout=TIMEOUT_MS)
    assert cards.count() == 2
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=audio]')].every(a => a.readyState >= 1 && a.duration > 0)",
        timeout=TIMEOUT_MS,
    )
    durations = page.eval_on_selector_all("[data-testid=audio]", "els => els.map(a => a.duration)")
    assert sorted(round(d, 2) for d in durations) == [0.5, 1.0]
    labels = sorted(cards.locator("[data-testid=audio-label]").all_text_contents())
    assert labels == ["step 1 · 2/2 · 16 kHz · mono · 0.50 s", "step 1 · 2/2 · 16 kHz · mono · 1.00 s"]
    screenshot(page, "audio")
    src = cards.first.get_by_test_id("audio").get_attribute("src")
    cards.first.get_by_test_id("audio-slider").fill("0")
    assert cards.first.get_by_test_id("audio").get_attribute("src") != src
    assert cards.first.get_by_test_id("audio-label").inner_text().startswith("step 0 · 1/2")


def test_video_tab_shows_each_run_s_animation(media_page: Any, media_server: ServerProcess) -> None:
    page = media_page
    page.goto(f"{media_server.http_url}/?project=media&tab=video")
    cards = page.get_by_test_id("videos-card")
    cards.first.wait_for(timeout=TIMEOUT_MS)
    assert cards.count() == 2
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=video]')].every(v => v.complete && v.naturalWidth > 0)",
        timeout=TIMEOUT_MS,
    )
    sizes = page.eval_on_selector_all("[data-testid=video]", "els => els.map(v => [v.naturalWidth, v.naturalHeight])")
    assert sizes == [[48, 32], [48, 32]]
    label = cards.first.get_by_test_id("videos-label").inner_text()
    assert label == "step 1 · 2/2 · 8 frames · 4 fps · 2.0 s · 48\u00d732"
    screenshot(page, "video")
    cards.first.get_by_test_id("videos-slider").fill("0")
    assert "step=0" in (cards.first.get_by_test_id("video").get_attribute("src") or "")


def drawn_pixels(page: Any, index: int) -> int:
    probe = page.evaluate(f"window.__runstream.mesh.probe({index})")
    assert probe is not None, f"mesh card {index} has no drawing"
    return int(probe["drawn"])


def test_mesh_tab_draws_meshes_and_point_clouds(media_page: Any, media_server: ServerProcess) -> None:
    page = media_page
    page.goto(f"{media_server.http_url}/?project=media&tab=mesh")
    cards = page.get_by_test_id("meshes-card")
    cards.first.wait_for(timeout=TIMEOUT_MS)
    assert cards.count() == 4  # two tags x two runs
    page.wait_for_function("(window.__runstream.mesh?.draws ?? 0) >= 4", timeout=TIMEOUT_MS)
    for i in range(4):
        assert drawn_pixels(page, i) > 500
    labels = cards.locator("[data-testid=meshes-label]").all_text_contents()
    assert "step 1 · 2/2 · 2,000 vertices · point cloud · colours" in labels
    assert "step 1 · 2/2 · 4 vertices · 4 faces · colours" in labels
    screenshot(page, "mesh")
    tetra = cards.filter(has_text="4 faces").first
    draws = page.evaluate("window.__runstream.mesh.draws")
    tetra.get_by_test_id("meshes-slider").fill("0")
    page.wait_for_function(f"window.__runstream.mesh.draws > {draws}", timeout=TIMEOUT_MS)
    box = tetra.get_by_test_id("mesh-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 30, steps=5)
    page.mouse.up()
    screenshot(page, "mesh-rotated")


def test_a_million_vertex_point_cloud_draws(media_page: Any, media_server: ServerProcess) -> None:
    page = media_page
    page.goto(f"{media_server.http_url}/?project=bigmesh&tab=mesh")
    page.get_by_test_id("meshes-card").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function("(window.__runstream.mesh?.draws ?? 0) >= 1", timeout=TIMEOUT_MS)
    assert drawn_pixels(page, 0) > 10_000
    assert (
        page.get_by_test_id("meshes-label").inner_text() == "step 0 · 1/1 · 1,000,000 vertices · point cloud · colours"
    )
    screenshot(page, "mesh-million")
