"""A model's graph as a document: trace it with torch.jit.trace, then walk the traced graph ourselves.

Only `trace_model` touches torch (imported inside the call, so `import runstream` never pays for
it); `graph_document` is a pure walk over the traced graph's nodes and values. The document is what
the Graphs kind stores (proto/runstream/v1/ingest.proto, message Graphs):

    {"nodes": [{"name", "scope", "op", "output_shape", "attributes", "parameters"}, ...],
     "edges": [[from, to], ...],          # indices into nodes, data flowing from -> to
     "parameters": total,                 # the model's parameters, used or not
     "modules": {scope: class name}}      # for the boxes the Graphs tab draws around a scope

Why walk it ourselves: TensorBoard's walker needs the tensorboard package and makes a node of
every constant and list; here constants and constant lists become the consuming node's
attributes, named after the op's schema (`stride`, `padding`, ...), and lists of tensors pass
their producers straight through, so a ResNet-50 has ~ 300 nodes rather than ~ 2,000.
A scope is the module path as in `named_modules()` ("layer1.0.conv1"; "" for the model itself),
and a node's name is "<scope>/<op>" with a counter when an op repeats within its scope, so the
names of two runs of one architecture agree, which is what comparing two graphs keys on.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

__all__ = ["GraphTraceError", "graph_document", "trace_model"]

# Nodes that carry no computation of their own: folded into attributes or passed through.
_PASS_THROUGH = frozenset(
    {"prim::ListConstruct", "prim::TupleConstruct", "prim::ListUnpack", "prim::TupleUnpack", "prim::TupleIndex"}
)
_MAX_ATTRIBUTE_ITEMS = 64  # longer constant lists are summarised, to keep the document small


class GraphTraceError(RuntimeError):
    """torch.jit.trace could not trace the model; the message says why and what to try."""


def trace_model(model: Any, input_to_model: Any, use_strict_trace: bool = True) -> dict[str, Any]:
    """Trace `model` on `input_to_model` (a tensor or a tuple/list of them) in eval mode, without
    autograd, and return its graph document. Modules' train/eval flags are restored afterwards."""
    import torch  # only here: runstream does not depend on torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"add_graph needs a torch.nn.Module, not {type(model).__name__}")
    if input_to_model is None:
        raise ValueError("add_graph needs input_to_model: an example input (a tensor or a tuple of tensors)")
    args = tuple(input_to_model) if isinstance(input_to_model, (list, tuple)) else (input_to_model,)
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # torch 2.x deprecates jit.trace for compiling; as a way to read a model's graph it still works.
            warnings.filterwarnings("ignore", r"`torch\.jit\.trace", DeprecationWarning)
            # check_trace re-runs the model and traces it again to compare; a drawing does not need it.
            traced = torch.jit.trace(model, args, strict=use_strict_trace, check_trace=False)  # type: ignore[no-untyped-call]
        graph = traced.graph
        torch._C._jit_pass_inline(graph)
    except Exception as exc:  # the tracer raises RuntimeError, TypeError, ValueError, ...
        raise GraphTraceError(
            f"torch.jit.trace could not trace {type(model).__name__}: {exc}. Check that input_to_model "
            "matches what forward() takes; pass use_strict_trace=False if forward returns lists or dicts."
        ) from exc
    finally:
        for module, training in flags:
            module.training = training
    sizes = {name: int(p.numel()) for name, p in model.named_parameters()}
    modules = {name: type(module).__name__ for name, module in model.named_modules()}
    return graph_document(graph, sizes, modules)


def graph_document(graph: Any, parameter_sizes: dict[str, int], modules: dict[str, str]) -> dict[str, Any]:
    """Walk an inlined traced graph (torch._C.Graph) into the document described above.

    `parameter_sizes` maps a parameter's path ("fc.weight") to its number of elements; each parameter
    is counted once, on the first node that reads it.
    """
    walker = _Walker(parameter_sizes)
    for value in graph.inputs():
        walker.add_input(value)
    for node in graph.nodes():
        walker.add_node(node)
    for value in graph.outputs():
        walker.add_output(value)
    return {
        "nodes": walker.nodes,
        "edges": walker.edges,
        "parameters": sum(parameter_sizes.values()),
        "modules": modules,
    }


class _Walker:
    def __init__(self, parameter_sizes: dict[str, int]) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[list[int]] = []
        self._sizes = parameter_sizes
        self._counted: set[str] = set()
        self._sources: dict[int, tuple[int, ...]] = {}  # value -> the nodes that produce it
        self._constants: dict[int, Any] = {}  # value -> its constant, JSON-ready
        self._paths: dict[int, str] = {}  # value -> attribute path from the model ("" is the model)
        self._names: dict[str, int] = {}
        self._argument_names: dict[str, list[str]] = {}

    def add_input(self, value: Any) -> None:
        if value.type().kind() == "ClassType":  # the module itself: parameters are read from it
            self._paths[value.unique()] = ""
            return
        self._sources[value.unique()] = (self._append("", "input/" + value.debugName(), "prim::Input", value, {}, 0),)

    def add_output(self, value: Any) -> None:
        index = self._append("", "output/" + value.debugName(), "prim::Output", value, {}, 0)
        for source in self._sources.get(value.unique(), ()):
            self.edges.append([source, index])

    def add_node(self, node: Any) -> None:
        kind = node.kind()
        if kind == "prim::Constant":
            self._constants[node.output().unique()] = _constant(node.output())
            return
        if kind == "prim::GetAttr":
            parent = self._paths.get(node.input().unique())
            if parent is not None:
                name = node.s("name")
                self._paths[node.output().unique()] = f"{parent}.{name}" if parent else name
            return
        inputs = list(node.inputs())
        if kind in _PASS_THROUGH:
            ids = [v.unique() for v in inputs]
            if kind.endswith("Construct") and all(i in self._constants for i in ids):
                self._constants[node.output().unique()] = _shorten([self._constants[i] for i in ids])
                return
            passed = tuple(s for i in ids for s in self._sources.get(i, ()))
            for output in node.outputs():
                self._sources[output.unique()] = passed
            return
        scope = _scope(node.scopeName())
        names = self._arguments(node)
        attributes: dict[str, Any] = {}
        sources: list[int] = []
        parameters = 0
        for position, value in enumerate(inputs):
            uid = value.unique()
            if uid in self._constants:
                key = names[position] if position < len(names) else f"input{position}"
                attributes[key] = self._constants[uid]
            elif uid in self._paths:
                path = self._paths[uid]
                if path in self._sizes and path not in self._counted:
                    self._counted.add(path)
                    parameters += self._sizes[path]
            else:
                sources.extend(self._sources.get(uid, ()))
        short = kind.split("::", 1)[-1]
        index = self._append(
            scope,
            f"{scope}/{short}" if scope else short,
            kind,
            node.output() if node.outputsSize() else None,
            attributes,
            parameters,
        )
        for source in dict.fromkeys(sources):
            self.edges.append([source, index])
        for output in node.outputs():
            self._sources[output.unique()] = (index,)

    def _append(self, scope: str, name: str, op: str, value: Any, attributes: dict[str, Any], parameters: int) -> int:
        seen = self._names.get(name)
        self._names[name] = 1 if seen is None else seen + 1
        if seen is not None:
            name = f"{name}_{seen}"
        self.nodes.append(
            {
                "name": name,
                "scope": scope,
                "op": op,
                "output_shape": None if value is None else _shape(value.type()),
                "attributes": attributes,
                "parameters": parameters,
            }
        )
        return len(self.nodes) - 1

    def _arguments(self, node: Any) -> list[str]:
        schema = node.schema()
        names = self._argument_names.get(schema)
        if names is None:
            names = []
            if schema != "(no schema)":
                import torch

                names = [a.name for a in torch._C.parse_schema(schema).arguments]
            self._argument_names[schema] = names
        return names


def _scope(scope_name: str) -> str:
    """'__module.layer1/__module.layer1.0' -> 'layer1.0' (the innermost module's path)."""
    last = scope_name.rsplit("/", 1)[-1]
    return last[len("__module.") :] if last.startswith("__module.") else last.removeprefix("__module")


def _shape(value_type: Any) -> list[int] | None:
    if value_type.kind() != "TensorType":
        return None
    try:
        sizes = value_type.sizes()
    except RuntimeError:  # rank unknown
        return None
    return None if sizes is None or any(s is None for s in sizes) else [int(s) for s in sizes]


def _constant(value: Any) -> Any:
    try:
        constant = value.toIValue()
    except RuntimeError:
        return str(value.type())
    return _jsonable(constant)


def _jsonable(item: Any) -> Any:
    if item is None or isinstance(item, (bool, int, str)):
        return item
    if isinstance(item, float):
        return item if math.isfinite(item) else str(item)
    if isinstance(item, (list, tuple)):
        return _shorten([_jsonable(i) for i in item])
    shape = getattr(item, "shape", None)
    if shape is not None:  # a constant tensor: its shape and type, not its values
        return f"tensor{list(shape)} {getattr(item, 'dtype', '')}".strip()
    return str(item)


def _shorten(items: list[Any]) -> Any:
    if len(items) <= _MAX_ATTRIBUTE_ITEMS:
        return items
    return f"[{len(items)} items: {', '.join(json.dumps(i) for i in items[:8])}, ...]"
