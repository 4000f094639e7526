"""The SummaryWriter methods the demo does not call, through a real server into their views: add_mesh
(a batch of meshes as samples, config kept), add_tensor, custom-scalar layouts, add_onnx_graph and
add_openvino_graph (graph documents), and a torch-style add_audio (1 x L)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from support import ServerProcess

IR = """<?xml version="1.0"?>
<net name="tiny" version="11"><layers>
  <layer id="0" name="data" type="Parameter"><output><port id="0"><dim>1</dim><dim>3</dim></port></output></layer>
  <layer id="1" name="fc/MatMul" type="MatMul"><output><port id="1"><dim>1</dim><dim>4</dim></port></output></layer>
  <layer id="2" name="out" type="Result"/>
</layers><edges>
  <edge from-layer="0" from-port="0" to-layer="1" to-port="0"/>
  <edge from-layer="1" from-port="1" to-layer="2" to-port="0"/>
</edges></net>
"""


def _onnx_file(path: Path) -> bool:
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        return False
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="/act/Relu")],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    onnx.save(helper.make_model(graph), str(path))
    return True


def test_writer_kinds_land_in_their_views(server: ServerProcess, tmp_path: Path) -> None:
    from runstream.tensorboard import SummaryWriter

    vertices = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 0, 1], [0, 1, 1]]], np.float32)
    colors = np.full((2, 3, 3), 128, np.uint8)
    faces = np.array([[[0, 1, 2]], [[0, 2, 1]]])
    xml = tmp_path / "model.xml"
    xml.write_text(IR)
    has_onnx = _onnx_file(tmp_path / "model.onnx")
    with SummaryWriter("runs/kinds", server=server.address) as writer:
        writer.add_mesh("mesh", vertices, colors, faces, config_dict={"camera": {"fov": 75}}, global_step=3)
        writer.add_mesh("cloud", vertices[:1], global_step=4)
        writer.add_tensor("tensor", np.arange(6, dtype=np.int16).reshape(2, 3), 5)
        writer.add_audio("torch_audio", np.zeros((1, 800)), 1, sample_rate=8000)
        writer.add_custom_scalars_multilinechart(["loss/.*"], category="train", title="losses")
        writer.add_custom_scalars_marginchart(["acc", "acc_lo", "acc_hi"], category="train", title="acc")
        writer.add_openvino_graph(str(xml))
        if has_onnx:
            writer.add_onnx_graph(str(tmp_path / "model.onnx"))
        run_id = writer.run.id
    server.stop()

    assert server.sql(
        "SELECT tag, step, sample, vertex_count, face_count, colors IS NULL, faces, config FROM meshes "
        "WHERE run_id = ? ORDER BY tag, sample",
        [run_id],
    ) == [
        ("cloud", 4, 0, 3, 0, True, None, "{}"),
        ("mesh", 3, 0, 3, 1, False, [0, 1, 2], '{"camera": {"fov": 75}}'),
        ("mesh", 3, 1, 3, 1, False, [0, 2, 1], '{"camera": {"fov": 75}}'),
    ]
    [(dtype, shape, data)] = server.sql("SELECT dtype, shape, data FROM tensors WHERE run_id = ?", [run_id])
    assert (dtype, shape, np.frombuffer(data, "<i2").tolist()) == ("int16", [2, 3], list(range(6)))
    assert server.sql("SELECT sample_rate, channels, frames FROM audio WHERE run_id = ?", [run_id]) == [
        (8000.0, 1, 800)
    ]
    [(layout,)] = server.sql("SELECT layout FROM custom_scalar_layouts WHERE run_id = ?", [run_id])
    assert json.loads(layout) == {
        "categories": [
            {
                "title": "train",
                "closed": False,
                "charts": [
                    {"title": "losses", "multiline": {"tags": ["loss/.*"]}},
                    {"title": "acc", "margin": {"series": [{"value": "acc", "lower": "acc_lo", "upper": "acc_hi"}]}},
                ],
            }
        ]
    }
    graphs = server.sql("SELECT step, nodes, edges FROM graphs WHERE run_id = ? ORDER BY step", [run_id])
    assert graphs[0] == (0, 3, 2)
    if has_onnx:
        assert graphs[1] == (1, 3, 2)
    else:
        pytest.skip("onnx is not installed: add_onnx_graph not tried")
