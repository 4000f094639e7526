"""The graph document made from a traced torch model (sdk/runstream/_graph.py)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from runstream._graph import GraphTraceError, trace_model  # noqa: E402


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8 * 4 * 4, 10)
        self.unused = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.fc(torch.cat([torch.flatten(x, 1)], 1))


def test_nodes_edges_shapes_attributes_and_parameters() -> None:
    model = Small().train()
    doc = trace_model(model, torch.zeros(2, 3, 8, 8))
    names = [n["name"] for n in doc["nodes"]]
    assert names[0] == "input/x.1" and names[-1].startswith("output/")
    conv = doc["nodes"][names.index("features.0/_convolution")]
    assert conv["scope"] == "features.0" and conv["op"] == "aten::_convolution"
    assert conv["output_shape"] == [2, 8, 8, 8]
    assert conv["attributes"]["stride"] == [1, 1] and conv["attributes"]["padding"] == [1, 1]
    assert conv["parameters"] == 3 * 8 * 9 + 8
    assert doc["nodes"][names.index("features.1/batch_norm")]["attributes"]["training"] is False  # eval mode
    assert doc["nodes"][names.index("fc/linear")]["output_shape"] == [2, 10]
    # the list that feeds cat passes its producer straight through: flatten -> cat
    assert [names.index("flatten"), names.index("cat")] in doc["edges"]
    # a chain from the input to the output
    assert len(doc["edges"]) == len(names) - 1
    assert doc["parameters"] == sum(p.numel() for p in model.parameters())
    assert sum(n["parameters"] for n in doc["nodes"]) == doc["parameters"] - 6  # `unused` is never read
    assert doc["modules"]["features.0"] == "Conv2d" and doc["modules"][""] == "Small"
    assert model.training and model.features[1].training  # modes restored
    json.dumps(doc, allow_nan=False)


def test_repeated_ops_in_one_scope_get_numbered_names() -> None:
    class Twice(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(torch.relu(x))

    names = [n["name"] for n in trace_model(Twice(), torch.zeros(3))["nodes"]]
    assert names[1:3] == ["relu", "relu_1"]


def test_a_tracing_error_reaches_the_caller_clearly() -> None:
    with pytest.raises(GraphTraceError, match="could not trace Small.*input_to_model"):
        trace_model(Small(), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="needs input_to_model"):
        trace_model(Small(), None)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        trace_model(object(), torch.zeros(1))
