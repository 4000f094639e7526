"""The graph kind on the server: the decoder's rules, the rows, the `graphs` and `graph_nodes` views, and
opening a file made before graphs existed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from runstream.v1 import ingest_pb2 as pb
from runstream_service.store.schema import create_schema
from runstream_service.store.tables import BUILDERS, KindPoints
from runstream_service.validate import InvalidBatch, decode_batch

DOC: dict[str, Any] = {
    "nodes": [
        {
            "name": "input/x",
            "scope": "",
            "op": "prim::Input",
            "output_shape": [2, 3],
            "attributes": {},
            "parameters": 0,
        },
        {
            "name": "fc/linear",
            "scope": "fc",
            "op": "aten::linear",
            "output_shape": [2, 4],
            "attributes": {"k": [1, 2]},
            "parameters": 16,
        },
        {
            "name": "output/y",
            "scope": "",
            "op": "prim::Output",
            "output_shape": None,
            "attributes": {},
            "parameters": 0,
        },
    ],
    "edges": [[0, 1], [1, 2]],
    "parameters": 20,
}


def _batch(*docs: str) -> pb.Batch:
    batch = pb.Batch(run_id="r", writer_id="w", seq=1, tags=["graph"])
    batch.graphs.tag_index = np.zeros(len(docs), "<u4").tobytes()
    batch.graphs.step = np.arange(len(docs), dtype="<i8").tobytes()
    batch.graphs.wall_time = np.full(len(docs), 1.5, "<f8").tobytes()
    batch.graphs.doc.extend(docs)
    return batch


def test_a_graph_is_decoded_with_its_counts() -> None:
    graphs = decode_batch(_batch(json.dumps(DOC), json.dumps({"nodes": [], "edges": []}))).graphs
    assert graphs is not None
    assert graphs.nodes.tolist() == [3, 0] and graphs.edges.tolist() == [2, 0]
    assert graphs.parameters.tolist() == [20, 0]


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ("{", "graphs.doc[0]", "is not JSON"),
        ('{"nodes": [], "edges": [], "x": NaN}', "graphs.doc[0]", "is not JSON"),
        ("[]", "graphs.doc[0]", 'lists "nodes" and "edges"'),
        ('{"nodes": [{"name": "a"}], "edges": []}', "graphs.doc[0].nodes[0]", '"name" and "op"'),
        (
            '{"nodes": [{"name": "a", "op": "b", "output_shape": [1.5]}], "edges": []}',
            "graphs.doc[0].nodes[0].output_shape",
            "integers",
        ),
        (
            '{"nodes": [{"name": "a", "op": "b", "parameters": -1}], "edges": []}',
            "graphs.doc[0].nodes[0].parameters",
            ">= 0",
        ),
        ('{"nodes": [{"name": "a", "op": "b"}], "edges": [[0, 1]]}', "graphs.doc[0].edges[0]", "below 1"),
        ('{"nodes": [], "edges": [], "parameters": "many"}', "graphs.doc[0].parameters", "integer"),
    ],
)
def test_a_bad_graph_is_refused_naming_the_field(doc: str, field: str, message: str) -> None:
    with pytest.raises(InvalidBatch, match=message) as caught:
        decode_batch(_batch(doc))
    assert caught.value.field == field


def test_rows_and_views_read_back_what_was_sent(tmp_path: Path) -> None:
    graphs = decode_batch(_batch(json.dumps(DOC))).graphs
    assert graphs is not None
    rows = BUILDERS["graph"]([KindPoints(rank=0, series_id=np.array([7], np.int32), columns=graphs)])
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    create_schema(con)
    con.execute("INSERT INTO series VALUES (7, 'r', 'graph', 'graph')")
    con.register("rows", rows)
    con.execute("INSERT INTO graph_points SELECT * FROM rows")
    (row,) = con.execute("SELECT run_id, tag, step, rank, nodes, edges, parameters, doc FROM graphs").fetchall()
    assert row[:7] == ("r", "graph", 0, 0, 3, 2, 20) and json.loads(row[7]) == DOC
    nodes = con.execute("SELECT name, scope, op, output_shape, parameters FROM graph_nodes").fetchall()
    assert nodes == [(n["name"], n["scope"], n["op"], n["output_shape"], n["parameters"]) for n in DOC["nodes"]]


def test_a_file_made_before_graphs_opens_and_gets_them(tmp_path: Path) -> None:
    path = str(tmp_path / "old.duckdb")
    con = duckdb.connect(path)
    create_schema(con)
    con.execute("DROP VIEW graph_nodes; DROP VIEW graphs; DROP TABLE graph_points")
    con.close()
    con = duckdb.connect(path)
    create_schema(con)
    assert con.execute("SELECT count(*) FROM graphs").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM graph_nodes").fetchone() == (0,)
