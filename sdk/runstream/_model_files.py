"""Model files (ONNX, OpenVINO IR) read into the graph document the Graphs kind stores (see _graph.py):

    {"nodes": [{"name", "scope", "op", "output_shape", "attributes", "parameters"}, ...],
     "edges": [[from, to], ...], "parameters": total, "modules": {}}

For SummaryWriter.add_onnx_graph and add_openvino_graph. A node's scope is its name up to the last
"/" (exporters name nodes by module path, "/layer1/conv/Conv"), as import-tensorboard does for a
GraphDef. Graph inputs and outputs are nodes of op "prim::Input" and "prim::Output", as traced graphs
have them, so the Graphs tab draws all three alike.

ONNX needs the `onnx` package (imported in the call only). OpenVINO's IR is an XML file, read with
the standard library, as tensorboardX reads it: no `openvino` package is needed.
"""

from __future__ import annotations

import importlib
import math
import xml.etree.ElementTree as ElementTree
from typing import Any

__all__ = ["onnx_document", "openvino_document"]

_MAX_ATTRIBUTE_ITEMS = 64


def _scope(name: str) -> str:
    return name.strip("/").rpartition("/")[0]


def _node(name: str, op: str, shape: list[int] | None, attributes: dict[str, Any], parameters: int) -> dict[str, Any]:
    return {
        "name": name,
        "scope": "" if op in ("prim::Input", "prim::Output") else _scope(name),
        "op": op,
        "output_shape": shape,
        "attributes": attributes,
        "parameters": parameters,
    }


def _json_ready(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [_json_ready(v) for v in value[:_MAX_ATTRIBUTE_ITEMS]]
        return items if len(value) <= _MAX_ATTRIBUTE_ITEMS else [*items, f"... {len(value)} items"]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return type(value).__name__  # a tensor or a subgraph: named, not stored


def onnx_document(path: str) -> dict[str, Any]:
    """The graph of the ONNX model file at `path`; raises ImportError without the onnx package."""
    try:  # by name: onnx is optional, and has no type stubs here
        onnx = importlib.import_module("onnx")
        helper = importlib.import_module("onnx.helper")
    except ImportError as exc:
        raise ImportError("add_onnx_graph reads the model with the onnx package: pip install onnx") from exc
    model = onnx.load(path)
    graph = model.graph
    sizes = {init.name: math.prod(init.dims) for init in graph.initializer}
    shapes: dict[str, list[int] | None] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value for d in dims] if dims and all(d.HasField("dim_value") for d in dims) else None
    nodes: list[dict[str, Any]] = []
    edges: list[list[int]] = []
    producer: dict[str, int] = {}
    for value in graph.input:
        if value.name not in sizes:  # initializers listed as inputs (older exporters) are parameters
            producer[value.name] = len(nodes)
            nodes.append(_node("input/" + value.name, "prim::Input", shapes.get(value.name), {}, 0))
    for i, node in enumerate(graph.node):
        index = len(nodes)
        attributes = {a.name: _json_ready(helper.get_attribute_value(a)) for a in node.attribute}
        parameters = sum(sizes.get(name, 0) for name in node.input)
        output = node.output[0] if node.output else ""
        nodes.append(
            _node(node.name or f"{node.op_type}_{i}", node.op_type, shapes.get(output), attributes, parameters)
        )
        for name in dict.fromkeys(node.input):
            if name in producer:
                edges.append([producer[name], index])
        for name in node.output:
            producer[name] = index
    for value in graph.output:
        index = len(nodes)
        nodes.append(_node("output/" + value.name, "prim::Output", shapes.get(value.name), {}, 0))
        if value.name in producer:
            edges.append([producer[value.name], index])
    return {"nodes": nodes, "edges": edges, "parameters": sum(sizes.values()), "modules": {}}


def openvino_document(path: str) -> dict[str, Any]:
    """The graph of the OpenVINO IR file (.xml) at `path`: its layers and edges; a layer's data
    attributes are its attributes, its first output port's dims its output shape, and the elements of
    its Const inputs its parameters."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise ValueError(f"{path} is not an OpenVINO IR XML file: {exc}") from None
    layers = root.find("layers")
    if layers is None:
        raise ValueError(f"{path} has no <layers>: is it an OpenVINO IR XML file (model.xml)?")
    index: dict[str, int] = {}
    nodes: list[dict[str, Any]] = []
    const_sizes: dict[int, int] = {}
    blob_total = 0
    for layer in layers:
        op = layer.get("type", "op")
        data = layer.find("data")
        attributes = {k: v for k, v in (data.attrib.items() if data is not None else ())}
        shape = None
        port = layer.find("output/port")
        if port is not None:
            dims = [d.text or "" for d in port.findall("dim")]
            shape = [int(d) for d in dims] if all(d.lstrip("-").isdigit() for d in dims) else None
        op_name = {"Parameter": "prim::Input", "Result": "prim::Output"}.get(op, op)
        index[layer.get("id", "")] = len(nodes)
        if op == "Const" and shape is not None:
            const_sizes[len(nodes)] = math.prod(shape)
        blobs = _blob_values(layer)
        blob_total += blobs
        nodes.append(_node(layer.get("name", f"layer{len(nodes)}"), op_name, shape, attributes, blobs))
    edges: list[list[int]] = []
    for edge in root.findall("edges/edge"):
        source, target = index.get(edge.get("from-layer", "")), index.get(edge.get("to-layer", ""))
        if source is None or target is None:
            continue
        edges.append([source, target])
        if source in const_sizes:
            nodes[target]["parameters"] += const_sizes[source]
    return {"nodes": nodes, "edges": edges, "parameters": sum(const_sizes.values()) + blob_total, "modules": {}}


_ELEMENT_BYTES = {"FP64": 8, "FP32": 4, "I32": 4, "FP16": 2, "I16": 2, "I8": 1, "U8": 1}


def _blob_values(layer: ElementTree.Element) -> int:
    """Older IR (version <= 7) keeps a layer's weights and biases as <blobs>, sized in bytes."""
    blobs = layer.find("blobs")
    if blobs is None:
        return 0
    size = sum(int(blob.get("size", "0")) for blob in blobs)
    return size // _ELEMENT_BYTES.get(layer.get("precision", "FP32"), 4)
