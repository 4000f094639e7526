"""add_graph of a ResNet-50 (built here: torchvision is not used) with runstream's SummaryWriter and, in
the same run, with tensorboardX's.

`value` is the median seconds of runstream's `SummaryWriter.add_graph(model, x)` (the caller's time:
trace, walk, JSON, hand-over to the sender), `ratio` tensorboardX's median seconds / ours (goal >= 1),
`nodes` and `edges` the stored graph's counts, read back over SQL. `first_draw_ms`: the Graphs tab's first
draw of this graph in headless Chromium, from the start of navigation to `?tab=graphs` (goal <= 2,000; the
median of 3 fresh page loads after a warm-up; null without Chromium); `expand_all_ms`: every box opened,
the whole graph laid out and drawn again (how responsive the tab stays on a graph this size).

    python bench/graph.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import torch
from _harness import Server, emit
from torch import nn


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 reduce, 3x3, 1x1 expand (x4), a projection on the shortcut when shapes change."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        y: torch.Tensor = self.relu(out + (x if self.downsample is None else self.downsample(x)))
        return y


class ResNet50(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        y: torch.Tensor = self.fc(torch.flatten(self.avgpool(x), 1))
        return y


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def first_draw_ms(server: Server) -> tuple[float | None, float | None]:
    """(first draw, expand-all redraw) in milliseconds in the Graphs tab; (None, None) without Chromium."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return None, None
    from playwright.sync_api import sync_playwright

    drawn = "window.__runstream?.graphs?.drawnAt != null"
    firsts, expands = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for _ in range(4):  # the first load warms the server's caches
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{server.http_url}/?project=bench&tab=graphs")
            page.wait_for_function(drawn, timeout=60_000)
            firsts.append(page.evaluate("window.__runstream.graphs.drawnAt"))  # from the start of navigation
            expands.append(
                page.evaluate(
                    """() => new Promise((done) => {
                        const g = window.__runstream.graphs, draws = g.draws, start = performance.now();
                        g.expandAll();
                        const wait = () => (g.draws > draws ? done(g.drawnAt - start) : requestAnimationFrame(wait));
                        wait();
                    })"""
                )
            )
            context.close()
        browser.close()
    return statistics.median(firsts[1:]), statistics.median(expands[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import tensorboardX

    from runstream.tensorboard import SummaryWriter

    torch.manual_seed(0)
    model, example = ResNet50(), torch.zeros(1, 3, 224, 224)
    params = sum(p.numel() for p in model.parameters())
    print(f"ResNet-50 built here: {params / 1e6:.1f}M parameters", file=sys.stderr)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    ours: list[float] = []
    theirs: list[float] = []
    with Server() as server, tempfile.TemporaryDirectory() as logdir:
        writer = SummaryWriter("runs/graph-bench", project="bench", server=server.address)
        tbx = tensorboardX.SummaryWriter(logdir=logdir)
        for i in range(args.repeat + 1):  # alternate, the first of each is a warm-up
            for fn, times in (
                (lambda: writer.add_graph(model, example), ours),
                (lambda: tbx.add_graph(model, example), theirs),
            ):
                start = time.perf_counter()
                fn()
                if i:
                    times.append(time.perf_counter() - start)
        writer.close()
        tbx.close()
        run_id = writer.run.id
        draw_ms, expand_ms = first_draw_ms(server)
        server.stop()
        counts: Any = server.sql(
            f"SELECT count(*), max(nodes), max(edges), max(parameters) FROM graphs WHERE run_id = '{run_id}'"
        )[0]
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    print(f"runstream add_graph {ours}, tensorboardX {theirs}", file=sys.stderr)
    emit(
        "graph_add_resnet50",
        ours_s,
        "s",
        ratio=theirs_s / ours_s,
        tensorboardx_s=theirs_s,
        graphs_stored=int(counts[0]),
        nodes=int(counts[1]),
        edges=int(counts[2]),
        parameters_ok=int(counts[3]) == params,
        first_draw_ms=draw_ms,
        expand_all_ms=expand_ms,
    )


if __name__ == "__main__":
    main()
