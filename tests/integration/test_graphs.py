"""The seed's graph example through SummaryWriter into a live server: what SQL reads back equals what was
logged. The model (a small VGG-like CNN) is built here; nothing is downloaded."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from support import ServerProcess

torch = pytest.importorskip("torch")
nn = torch.nn


def vgg_like() -> Any:
    """VGG's pattern (conv-conv-pool blocks, then a classifier), small enough for a test."""

    def block(cin: int, cout: int) -> Any:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )

    class VGGLike(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(block(3, 8), block(8, 16), block(16, 32))
            self.classifier = nn.Sequential(nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Dropout(), nn.Linear(64, 10))

        def forward(self, x: Any) -> Any:
            return self.classifier(torch.flatten(self.features(x), 1))

    return VGGLike()


def test_add_graph_is_stored_and_read_back_over_sql(server: ServerProcess) -> None:
    from runstream._graph import trace_model
    from runstream.tensorboard import SummaryWriter

    model = vgg_like()
    example = torch.zeros(1, 3, 32, 32)
    expected = trace_model(model, example)
    with SummaryWriter("runs/vgg", project="graphs", server=server.address) as writer:
        writer.add_graph(model, example)
        writer.add_graph(model, (example,))  # the next graph of the run is step 1
        run_id = writer.run.id
    listed = json.load(urllib.request.urlopen(f"{server.http_url}/api/graphs?run={run_id}"))
    assert [(g["tag"], g["step"], g["nodes"]) for g in listed["graphs"]] == [
        ("graph", 0, len(expected["nodes"])),
        ("graph", 1, len(expected["nodes"])),
    ]
    assert json.load(urllib.request.urlopen(f"{server.http_url}/api/graph?run={run_id}&step=1")) == expected
    try:
        urllib.request.urlopen(f"{server.http_url}/api/graph?run={run_id}&step=7")
        raise AssertionError("a missing graph must be a 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and "no graph tag 'graph' at step 7" in json.load(exc)["error"]
    server.stop()
    rows = server.sql(
        "SELECT tag, step, rank, nodes, edges, parameters, doc FROM graphs WHERE run_id = ? ORDER BY step", [run_id]
    )
    assert [r[:3] for r in rows] == [("graph", 0, 0), ("graph", 1, 0)]
    for _, _, _, nodes, edges, parameters, doc in rows:
        assert json.loads(doc) == expected
        assert (nodes, edges) == (len(expected["nodes"]), len(expected["edges"]))
        assert parameters == sum(p.numel() for p in model.parameters())
    stored = server.sql(
        "SELECT name, scope, op, output_shape, parameters FROM graph_nodes WHERE run_id = ? AND step = 0", [run_id]
    )
    assert stored == [(n["name"], n["scope"], n["op"], n["output_shape"], n["parameters"]) for n in expected["nodes"]]
    conv = [r for r in stored if r[0] == "features.0.0/_convolution"]
    assert conv == [("features.0.0/_convolution", "features.0.0", "aten::_convolution", [1, 8, 32, 32], 3 * 8 * 9 + 8)]


def test_a_tracing_error_reaches_the_caller(server: ServerProcess) -> None:
    from runstream._graph import GraphTraceError
    from runstream.tensorboard import SummaryWriter

    with SummaryWriter("runs/bad", project="graphs", server=server.address) as writer:
        with pytest.raises(GraphTraceError, match="could not trace VGGLike"):
            writer.add_graph(vgg_like(), torch.zeros(1, 5, 32, 32))


def test_import_of_tensorboardx_graph_events_matches_what_it_wrote(tmp_path: Any, server: ServerProcess) -> None:
    import subprocess
    import sys

    tensorboardX = pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    logdir = tmp_path / "logs"
    with tensorboardX.SummaryWriter(logdir=str(logdir / "vgg")) as writer:
        writer.add_graph(vgg_like(), torch.zeros(1, 3, 32, 32))
    result = subprocess.run(
        [sys.executable, "-m", "runstream_service", "import-tensorboard", str(logdir), "--server", server.address],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    server.stop()
    acc = event_accumulator.EventAccumulator(str(logdir / "vgg"))
    acc.Reload()
    written = acc.Graph()  # TensorBoard's own reading of the GraphDef tensorboardX wrote
    ((tag, step, nodes, edges, doc),) = server.sql("SELECT tag, step, nodes, edges, doc FROM graphs")
    stored = json.loads(doc)
    assert (tag, step, nodes) == ("graph", 0, len(written.node))
    assert [(n["name"], n["op"]) for n in stored["nodes"]] == [(n.name, n.op) for n in written.node]
    index = {n.name: i for i, n in enumerate(written.node)}
    expected_edges = {(index[src], i) for i, n in enumerate(written.node) for src in n.input if src in index}
    assert {tuple(e) for e in stored["edges"]} == expected_edges and edges == len(expected_edges)
    for node, source in zip(stored["nodes"], written.node, strict=True):
        shapes = source.attr["_output_shapes"].list.shape
        assert node["output_shape"] == ([d.size for d in shapes[0].dim] if shapes else None)
