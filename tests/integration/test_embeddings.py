"""Embeddings end to end: the seed's projector example through SummaryWriter into a live server, and a
large embedding sent in chunks; what SQL and the Projector's reads return equals what was logged.
Synthetic data stands in for MNIST; nothing is downloaded."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
from PIL import Image

from runstream_service.store.embeddings import list_embeddings, load_embedding, load_images
from support import ServerProcess


def _mnist_like(batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A batch of 28 x 28 grayscale images in [0, 1] (NCHW) and their labels 0..9."""
    labels = rng.integers(0, 10, batch)
    images = rng.random((batch, 1, 28, 28), dtype=np.float32)
    return images, labels


def _read(server: ServerProcess) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(server.data_dir / "runstream.duckdb"), read_only=True)


def test_the_seed_projector_example_is_stored_as_logged(server: ServerProcess) -> None:
    from runstream.tensorboard import SummaryWriter

    rng = np.random.default_rng(7)
    logged: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    weights = rng.standard_normal((28 * 28, 11)).astype(np.float32)
    with SummaryWriter("runs/mnist", project="projector", server=server.address) as writer:
        for n_iter in range(61):  # the seed logs the output of a batch every 30 batches
            images, labels = _mnist_like(256, rng)
            out = images.reshape(256, -1) @ weights  # a 256 x 11 "model output"
            writer.add_scalar("loss", float(out.mean()), n_iter)
            if n_iter % 30 == 0:
                writer.add_embedding(out, metadata=labels, label_img=images, global_step=n_iter)
                logged[n_iter] = (out, labels, images)
        run_id = writer.run.id
    server.stop()

    con = _read(server)
    listed = list_embeddings(con)
    assert [(e["run_id"], e["tag"], e["step"], e["rows"], e["dims"], e["complete"]) for e in listed] == [
        (run_id, "default", step, 256, 11, True) for step in (0, 30, 60)
    ]
    for step, (out, labels, images) in logged.items():
        rows = con.execute(
            "SELECT idx, vector, metadata, image FROM embeddings WHERE run_id = ? AND tag = 'default' AND step = ? "
            "ORDER BY idx",
            [run_id, step],
        ).fetchall()
        assert [r[0] for r in rows] == list(range(256))
        np.testing.assert_array_equal(np.array([r[1] for r in rows], dtype=np.float32), out)
        assert [json.loads(r[2]) for r in rows] == [{"label": int(label)} for label in labels]
        expected = (np.clip(images[:, 0], 0, 1) * 255 + 0.5).astype(np.uint8)
        for i in (0, 17, 255):
            np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(rows[i][3]))), expected[i])

        loaded = load_embedding(con, run_id, "default", step)
        np.testing.assert_array_equal(loaded.vectors, out)
        assert loaded.metadata == [{"label": int(label)} for label in labels]
        assert loaded.columns == ["label"] and loaded.has_images and loaded.complete
        thumbs = load_images(con, run_id, "default", step, [3, 200])
        assert sorted(thumbs) == [3, 200]
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(thumbs[200]))), expected[200])


def test_metadata_with_a_header_keeps_its_columns(server: ServerProcess) -> None:
    from runstream.tensorboard import SummaryWriter

    mat = np.arange(12, dtype=np.float64).reshape(4, 3)
    rows = [["a", 1], ["b", 2.5], ["c", None], ["d", True]]
    with SummaryWriter("runs/header", project="projector", server=server.address) as writer:
        writer.add_embedding(mat, metadata=rows, metadata_header=["name", "value"], tag="words", global_step=3)
        run_id = writer.run.id
    server.stop()
    loaded = load_embedding(_read(server), run_id, "words", 3)
    np.testing.assert_array_equal(loaded.vectors, mat.astype(np.float32))
    assert loaded.columns == ["name", "value"]
    assert loaded.metadata == [{"name": n, "value": v} for n, v in rows]
    assert not loaded.has_images


def test_a_large_embedding_arrives_whole_in_chunks(server: ServerProcess) -> None:
    """300k x 64 float64 (150 MB): beyond the size copied at the call, so it is streamed from the
    caller's array, converted to float32 a chunk at a time."""
    import runstream

    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((300_000, 64))
    labels = np.arange(300_000) % 7
    with runstream.init(project="projector", name="big", server=server.address) as run:
        run.log_embedding("big", matrix, metadata=labels, step=5)
        assert run.flush(120)
        run_id = run.id
    server.stop()
    con = _read(server)
    ((chunks,),) = con.execute("SELECT count(DISTINCT wall_time) FROM embeddings").fetchall()
    assert chunks == 1  # one call: one embedding
    (listed,) = list_embeddings(con)
    assert (listed["rows"], listed["dims"], listed["total_rows"], listed["complete"]) == (300_000, 64, 300_000, True)
    loaded = load_embedding(con, run_id, "big", 5)
    np.testing.assert_array_equal(loaded.vectors, matrix.astype(np.float32))
    assert loaded.metadata[:3] == [{"label": 0}, {"label": 1}, {"label": 2}]
    assert loaded.metadata[-1] == {"label": int(labels[-1])}


def test_logging_the_same_tag_and_step_again_replaces_it(server: ServerProcess) -> None:
    import runstream

    with runstream.init(project="projector", name="again", server=server.address) as run:
        run.log_embedding("e", np.zeros((3, 2)), step=0)
        run.log_embedding("e", np.ones((5, 2)), step=0)
        run_id = run.id
    server.stop()
    con = _read(server)
    assert [(e["rows"], e["complete"]) for e in list_embeddings(con)] == [(5, True)]
    np.testing.assert_array_equal(load_embedding(con, run_id, "e", 0).vectors, np.ones((5, 2), np.float32))
    assert con.execute("SELECT count(*) FROM embeddings").fetchall() == [(8,)]


def test_import_of_tensorboardx_projector_output_matches_its_files(tmp_path: Path, server: ServerProcess) -> None:
    """tensorboardX writes projector folders (tensors.tsv, metadata.tsv, sprite.png); the import equals them."""
    import tensorboardX

    rng = np.random.default_rng(5)
    logdir = tmp_path / "logs"
    logged = {}
    with tensorboardX.SummaryWriter(logdir=str(logdir / "mnist")) as writer:
        for step in (0, 30):
            images, labels = _mnist_like(20, rng)
            mat = rng.standard_normal((20, 11)).astype(np.float32)
            writer.add_embedding(mat, metadata=labels.tolist(), label_img=images, global_step=step)
            logged[step] = mat
        rows = [[f"w{i}", str(i % 3)] for i in range(6)]
        writer.add_embedding(np.eye(6), metadata=rows, metadata_header=["word", "group"], tag="words", global_step=2)
    command = [sys.executable, "-m", "runstream_service", "import-tensorboard", str(logdir)]
    for _ in range(2):  # twice: nothing stored twice
        result = subprocess.run(
            [*command, "--server", server.address, "--project", "tb"], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr + result.stdout
    server.stop()
    con = _read(server)
    ((run_id,),) = con.execute("SELECT run_id FROM runs").fetchall()
    assert [(e["tag"], e["step"], e["rows"], e["dims"], e["complete"]) for e in list_embeddings(con)] == [
        ("default", 0, 20, 11, True),
        ("default", 30, 20, 11, True),
        ("words", 2, 6, 6, True),
    ]
    for step, mat in logged.items():
        folder = logdir / "mnist" / f"{step:05d}" / "default"
        loaded = load_embedding(con, run_id, "default", step)
        np.testing.assert_array_equal(loaded.vectors, mat)  # tensors.tsv holds float32 exactly
        labels = (folder / "metadata.tsv").read_text().split("\n")[:20]
        assert loaded.metadata == [{"label": label} for label in labels]
        sprite = np.asarray(Image.open(folder / "sprite.png"))
        per_row = sprite.shape[1] // 28
        thumbs = load_images(con, run_id, "default", step, list(range(20)))
        for i in (0, 7, 19):
            y, x = (i // per_row) * 28, (i % per_row) * 28
            np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(thumbs[i]))), sprite[y : y + 28, x : x + 28])
    words = load_embedding(con, run_id, "words", 2)
    assert words.columns == ["word", "group"]
    assert words.metadata == [{"word": w, "group": g} for w, g in rows]
    np.testing.assert_array_equal(words.vectors, np.eye(6, dtype=np.float32))
    assert con.execute("SELECT count(*) FROM embeddings").fetchall() == [(46,)]
