"""tensorboardX's examples/demo.py, as calls: the same SummaryWriter calls in the same order, with
synthetic tensors and a small local model in place of MNIST and torchvision's ResNet-18. Used by
tests/integration/test_tensorboardx_demo_calls.py (the views) and tests/browser/test_tensorboardx_demo_tabs.py
(the tabs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
