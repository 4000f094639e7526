"""tensorboardX's examples/demo.py, as calls: the same SummaryWriter calls in the same order, with
synthetic tensors and a small local model in place of MNIST and torchvision's ResNet-18, against a real
server. Every tag it logs must be in the views afterwards, and no warning may be raised (runstream once
warned "not supported" here, and raised at `use_metadata` and at the `add_scalar` after `close()`).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support import ServerProcess

torch = pytest.importorskip("torch")

SAMPLE_RATE = 44100
FREQS = [262, 294, 330, 349, 392, 440, 440, 440, 440, 440, 440]
TP, FP = [75, 64, 21, 5, 0], [150, 105, 18, 0, 0]
TN, FN = [0, 45, 132, 150, 150], [0, 11, 54, 70, 75]
PRECISION, RECALL = [0.3333333, 0.3786982, 0.5384616, 1.0, 0.0], [1.0, 0.8533334, 0.28, 0.0666667, 0.0]


class SmallNet(torch.nn.Module):  # type: ignore[misc]
    """Stands in for ResNet-18: convolutions, batch norms (which the demo skips) and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3)
        self.fc = torch.nn.Linear(8, 10)


def grid(images: Any) -> Any:
    """Stands in for torchvision.utils.make_grid(normalize=True, scale_each=True): a CHW grid of 8 columns."""
    rows = [torch.cat(list(images[i : i + 8]), dim=2) for i in range(0, len(images), 8)]
    out = torch.cat(rows, dim=1)
    return (out - out.min()) / (out.max() - out.min())


def demo_calls(writer: Any, json_path: Path) -> None:
    model = SmallNet()
    for n_iter in range(100):
        with writer.use_metadata(global_step=n_iter):
            s1 = torch.rand(1)
            writer.add_scalar("data/scalar_systemtime", s1[0], summary_description="# markdown is supported!")
            writer.add_scalar("data/scalar_customtime", s1[0], walltime=n_iter, display_name="dudubird")
            writer.add_scalars(
                "data/scalar_group",
                {"xsinx": n_iter * np.sin(n_iter), "xcosx": n_iter * np.cos(n_iter), "arctanx": np.arctan(n_iter)},
            )
            x = torch.rand(32, 3, 64, 64)
            if n_iter % 10 == 0:
                writer.add_image("Image", grid(x))
                writer.add_image_with_boxes(
                    "imagebox_label",
                    torch.ones(3, 240, 240) * 0.5,
                    torch.Tensor([[10, 10, 100, 100], [101, 101, 200, 200]]),
                    labels=["abcde" + str(n_iter), "fgh" + str(n_iter)],
                )
                t = torch.arange(SAMPLE_RATE * 2, dtype=torch.float32)
                writer.add_audio("myAudio", torch.cos(FREQS[n_iter // 10] * math.pi * t / SAMPLE_RATE))
                writer.add_text("Text", "text logged at step:" + str(n_iter))
                writer.add_text("markdown Text", """a|b\n-|-\nc|d""")
                for name, param in model.named_parameters():
                    if "bn" not in name:
                        writer.add_histogram(name, param)
                writer.add_pr_curve("xoxo", np.random.randint(2, size=100), np.random.rand(100))
                writer.add_pr_curve_raw("prcurve with raw data", TP, FP, TN, FN, PRECISION, RECALL)
    writer.export_scalars_to_json(str(json_path))

    images = torch.randint(0, 256, (100, 28, 28)).float()  # stands in for MNIST's test images
    label = torch.randint(0, 10, (100,))
    features = images.view(100, 784)
    writer.add_embedding(features, metadata=label, label_img=images.unsqueeze(1))
    writer.add_embedding(features, global_step=1, tag="noMetadata")
    images_train = torch.randint(0, 256, (100, 28, 28)).float()
    labels_train = torch.randint(0, 10, (100,))
    features_train = images_train.view(100, 784)
    all_features = torch.cat((features, features_train))
    all_labels = torch.cat((label, labels_train))
    all_images = torch.cat((images, images_train))
    dataset_label = ["test"] * 100 + ["train"] * 100
    all_labels = list(zip(all_labels, dataset_label))
    writer.add_embedding(
        all_features,
        metadata=all_labels,
        label_img=all_images.unsqueeze(1),
        metadata_header=["digit", "dataset"],
        global_step=2,
    )

    vid = torch.randint(0, 256, (16 * 48, 28, 28), dtype=torch.uint8).view(16, 48, 1, 28, 28)
    writer.add_video("video", vid_tensor=vid)
    writer.add_video("video_1_fps", vid_tensor=vid, fps=1)
    writer.close()
    writer.add_scalar("implicit reopen writer", 100, 0)


def test_demo_calls_land_in_the_views(server: ServerProcess, tmp_path: Path) -> None:
    from runstream.tensorboard import SummaryWriter

    json_path = tmp_path / "all_scalars.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        writer = SummaryWriter(server=server.address, project="demo")
        demo_calls(writer, json_path)
        writer.close()
    ours = [str(w.message) for w in caught if "runstream" in w.filename or "runstream" in str(w.message)]
    assert ours == []
    logdir = writer.get_logdir()
    run_id = writer.run.id

    exported = json.loads(json_path.read_text())
    assert sorted(exported) == [f"{logdir}/data/scalar_group/{k}" for k in ("arctanx", "xcosx", "xsinx")]
    rows = exported[f"{logdir}/data/scalar_group/xsinx"]
    assert [r[1] for r in rows] == list(range(100))
    assert rows[3][2] == pytest.approx(3 * np.sin(3))

    server.stop()

    def count(view: str, tag: str, extra: str = "") -> int:
        query = f"SELECT count(*) FROM {view} WHERE run_id = ? AND tag = ? {extra}"
        return int(server.sql(query, [run_id, tag])[0][0])

    assert server.sql("SELECT name, status FROM runs WHERE run_id = ?", [run_id]) == [(logdir, "finished")]
    for tag in ("data/scalar_systemtime", "data/scalar_customtime", *exported_tags()):
        assert count("scalars", tag, "AND step BETWEEN 0 AND 99") == 100, tag
    assert server.sql(
        "SELECT min(wall_time), max(wall_time) FROM scalars WHERE run_id = ? AND tag = 'data/scalar_customtime'",
        [run_id],
    ) == [(0.0, 99.0)]
    assert count("scalars", "implicit reopen writer") == 1
    assert count("images", "Image") == 10
    assert count("images", "imagebox_label", "AND boxes IS NOT NULL") == 10
    boxes = server.sql("SELECT boxes FROM images WHERE run_id = ? AND tag = 'imagebox_label' AND step = 30", [run_id])
    assert json.loads(boxes[0][0]) == {
        "boxes": [[10, 10, 100, 100], [101, 101, 200, 200]],
        "labels": ["abcde30", "fgh30"],
    }
    assert server.sql(
        "SELECT DISTINCT sample_rate, channels, frames FROM audio WHERE run_id = ? AND tag = 'myAudio'", [run_id]
    ) == [(44100.0, 1, 88200)]
    assert count("audio", "myAudio") == count("texts", "Text") == count("texts", "markdown Text") == 10
    for name, _ in SmallNet().named_parameters():
        assert count("histograms", name) == (0 if "bn" in name else 10), name
    assert count("pr_curves", "xoxo", "AND thresholds = 127") == 10
    assert count("pr_curves", "prcurve with raw data", "AND thresholds = 5") == 10
    assert server.sql(
        "SELECT tag, step, count(*) FROM embeddings WHERE run_id = ? GROUP BY ALL ORDER BY step", [run_id]
    ) == [("default", 0, 100), ("noMetadata", 1, 100), ("default", 2, 200)]
    assert server.sql(
        "SELECT tag, width, height, frames, fps, mime FROM videos WHERE run_id = ? ORDER BY tag", [run_id]
    ) == [("video", 112, 112, 48, 4.0, "image/apng"), ("video_1_fps", 112, 112, 48, 1.0, "image/apng")]
    assert server.sql(
        "SELECT tag, display_name, description FROM tag_info WHERE run_id = ? ORDER BY tag", [run_id]
    ) == [("data/scalar_customtime", "dudubird", ""), ("data/scalar_systemtime", "", "# markdown is supported!")]


def exported_tags() -> list[str]:
    return [f"data/scalar_group/{k}" for k in ("xsinx", "xcosx", "arctanx")]
