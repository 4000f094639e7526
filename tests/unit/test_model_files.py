"""ONNX and OpenVINO IR model files read into the Graphs kind's document (add_onnx_graph,
add_openvino_graph): nodes, edges, scopes, shapes, attributes and parameter counts."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from runstream._model_files import onnx_document, openvino_document

IR = """<?xml version="1.0"?>
<net name="tiny" version="11">
  <layers>
    <layer id="0" name="data" type="Parameter"><output><port id="0"><dim>1</dim><dim>3</dim></port></output></layer>
    <layer id="1" name="fc/weights" type="Const"><output><port id="0"><dim>4</dim><dim>3</dim></port></output></layer>
    <layer id="2" name="fc/MatMul" type="MatMul">
      <data transpose_a="false" transpose_b="true"/>
      <output><port id="2"><dim>1</dim><dim>4</dim></port></output>
    </layer>
    <layer id="3" name="out" type="Result"/>
  </layers>
  <edges>
    <edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
    <edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>
    <edge from-layer="2" from-port="2" to-layer="3" to-port="0"/>
  </edges>
</net>
"""


def test_openvino_ir(tmp_path: Path) -> None:
    path = tmp_path / "model.xml"
    path.write_text(IR)
    doc = openvino_document(str(path))
    by_name = {n["name"]: n for n in doc["nodes"]}
    assert [n["op"] for n in doc["nodes"]] == ["prim::Input", "Const", "MatMul", "prim::Output"]
    matmul = by_name["fc/MatMul"]
    assert matmul["scope"] == "fc" and matmul["output_shape"] == [1, 4] and matmul["parameters"] == 12
    assert matmul["attributes"] == {"transpose_a": "false", "transpose_b": "true"}
    assert doc["edges"] == [[0, 2], [1, 2], [2, 3]] and doc["parameters"] == 12


def test_openvino_refuses_what_is_not_ir(tmp_path: Path) -> None:
    path = tmp_path / "x.xml"
    path.write_text("<html/>")
    with pytest.raises(ValueError, match="no <layers>"):
        openvino_document(str(path))


def test_onnx_model(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weight = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], [0.0] * 12)
    nodes = [
        helper.make_node("Gemm", ["x", "W"], ["h"], name="/fc/Gemm", transB=1),
        helper.make_node("Relu", ["h"], ["y"], name="/act/Relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    doc = onnx_document(str(path))
    assert [(n["name"], n["op"], n["scope"]) for n in doc["nodes"]] == [
        ("input/x", "prim::Input", ""),
        ("/fc/Gemm", "Gemm", "fc"),
        ("/act/Relu", "Relu", "act"),
        ("output/y", "prim::Output", ""),
    ]
    assert doc["nodes"][1]["parameters"] == 12 and doc["nodes"][1]["attributes"] == {"transB": 1}
    assert doc["nodes"][3]["output_shape"] == [1, 4]
    assert doc["edges"] == [[0, 1], [1, 2], [2, 3]] and doc["parameters"] == 12


def test_onnx_without_the_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_onnx(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    monkeypatch.setattr("importlib.import_module", lambda name: no_onnx(name))
    with pytest.raises(ImportError, match="pip install onnx"):
        onnx_document("model.onnx")
