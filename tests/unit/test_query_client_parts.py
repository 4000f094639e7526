"""The SDK's query client without a server: where it asks, the SQL it sends, how it reads an Arrow
stream (also one the server ended with an error), and how runs and history are shaped."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import pyarrow as pa
import pyarrow.ipc
import pytest

from runstream import _query
from runstream._query import (
    QueryError,
    endpoint,
    history_frame,
    history_sql,
    read_stream,
    runs_frame,
    runs_sql,
    sql_literal,
)

# -- where to ask ----------------------------------------------------------------------------------


def test_the_address_comes_from_the_argument_then_runstream_url_then_the_default() -> None:
    env = {"RUNSTREAM_URL": "http://metrics.lab:9000/"}
    assert endpoint(environ={}).url == "http://127.0.0.1:8080"
    assert endpoint(environ=env).url == "http://metrics.lab:9000"
    assert endpoint("http://other:1", environ=env).url == "http://other:1"


def test_token_and_ca_as_for_init() -> None:
    env = {"RUNSTREAM_TOKEN": "from-env", "RUNSTREAM_TLS_CA": "/ca.pem"}
    assert endpoint(environ=env).token == "from-env" and endpoint(environ=env).tls_ca == "/ca.pem"
    assert endpoint(token="given", tls_ca="", environ=env).token == "given"
    assert endpoint(environ={}).token == "" and endpoint(environ={}).context() is None


def test_an_address_without_a_scheme_uses_tls_when_a_ca_is_given() -> None:
    assert endpoint("metrics.lab:8080", environ={}).url == "http://metrics.lab:8080"
    assert endpoint("metrics.lab:8080", tls_ca="/ca.pem", environ={}).url == "https://metrics.lab:8080"


@pytest.mark.parametrize("url", ["", "  ", "ftp://x:1"])
def test_a_bad_address_is_refused_before_any_call(url: str) -> None:
    with pytest.raises(ValueError, match="url must"):
        endpoint(url, environ={})


# -- the SQL sent ----------------------------------------------------------------------------------


def test_values_are_quoted_as_sql_literals() -> None:
    assert sql_literal("mnist") == "'mnist'"
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal("x' OR 1=1 --") == "'x'' OR 1=1 --'"
    with pytest.raises(ValueError):
        sql_literal("a\x00b")


def test_runs_and_history_sql() -> None:
    assert runs_sql(None) == "SELECT * FROM runs ORDER BY created_at, run_id"
    assert "WHERE project = 'p''s'" in runs_sql("p's")
    text = history_sql("r1", ["loss", "acc"], 2, wall_time=True)
    assert text.startswith("SELECT tag, step, value, wall_time FROM scalars")
    assert "run_id = 'r1' AND rank = 2 AND tag IN ('loss', 'acc')" in text
    assert "tag IN" not in history_sql("r1", None, 0, wall_time=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_id": ""}, "run_id"),
        ({"run_id": "r", "rank": -1}, "rank"),
        ({"run_id": "r", "rank": True}, "rank"),
        ({"run_id": "r", "tags": []}, "tags"),
        ({"run_id": "r", "tags": ["loss", 3]}, "tags"),
    ],
)
def test_history_arguments_are_checked_before_any_call(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _query.history(url="http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_a_server_that_is_not_there_says_where_it_looked() -> None:
    with pytest.raises(_query.ServerUnavailableError, match=r"http://127.0.0.1:1.*RUNSTREAM_URL"):
        _query.query("SELECT 1", url="http://127.0.0.1:1")


# -- reading the stream ----------------------------------------------------------------------------

SCHEMA = pa.schema([("step", pa.int64()), ("value", pa.float64())])


def stream(*batches: pa.RecordBatch, error: str | None = None, end: bool = True) -> bytes:
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_stream(sink, SCHEMA)
    for batch in batches:
        writer.write_batch(batch)
    if error is not None:
        writer.write_batch(pa.RecordBatch.from_pylist([], schema=SCHEMA), custom_metadata={b"runstream.error": error})
    if end:
        writer.close()
        return bytes(sink.getvalue())
    data = bytes(sink.getvalue())  # getvalue() ends nothing: the writer was not closed
    return data


def batch(steps: range) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"step": list(steps), "value": [s / 2 for s in steps]}, schema=SCHEMA)


def test_a_stream_reads_as_one_table() -> None:
    table = read_stream(io.BytesIO(stream(batch(range(3)), batch(range(3, 5)))))
    assert table.schema == SCHEMA and table.column("step").to_pylist() == [0, 1, 2, 3, 4]


def test_an_error_at_the_end_of_the_stream_is_raised() -> None:
    data = stream(batch(range(3)), error="the query ran longer than the time limit", end=False)
    with pytest.raises(QueryError, match="time limit"):
        read_stream(io.BytesIO(data))


def test_a_stream_cut_short_is_an_error_not_a_short_table() -> None:
    data = stream(batch(range(1000)), batch(range(1000, 2000)))
    with pytest.raises(QueryError, match="ended early"):
        read_stream(io.BytesIO(data[: len(data) // 2]))
    with pytest.raises(QueryError, match="not an Arrow stream"):
        read_stream(io.BytesIO(b'{"error": "x"}'))


# -- shaping ---------------------------------------------------------------------------------------


def test_runs_have_their_config_flattened() -> None:
    table = pa.table(
        {
            "run_id": ["a", "b", "c"],
            "config": [
                '{"lr": 0.1, "optimizer": {"name": "adam", "beta": 0.9}}',
                '{"lr": 0.2, "layers": [1, 2]}',
                None,
            ],
        }
    )
    frame = runs_frame(table)
    assert list(frame.columns) == [
        "run_id",
        "config.lr",
        "config.optimizer.name",
        "config.optimizer.beta",
        "config.layers",
    ]
    assert frame["config.lr"].tolist()[:2] == [0.1, 0.2] and math.isnan(frame["config.lr"].tolist()[2])
    assert frame.loc[0, "config.optimizer.name"] == "adam"
    assert frame.loc[1, "config.layers"] == [1, 2]


def history_rows(rows: list[tuple[str, int, float, float]]) -> pa.Table:
    tag, step, value, wall = zip(*rows) if rows else ((), (), (), ())
    return pa.table(
        {
            "tag": pa.array(tag, pa.string()),
            "step": pa.array(step, pa.int64()),
            "value": pa.array(value, pa.float64()),
            "wall_time": pa.array(wall, pa.float64()),
        }
    )


def test_history_is_one_column_per_tag_with_nan_where_a_tag_has_no_point() -> None:
    table = history_rows([("loss", 0, 1.0, 10.0), ("acc", 0, 0.1, 10.5), ("loss", 1, 0.5, 11.0), ("acc", 2, 0.3, 12.0)])
    frame = history_frame(table, ["loss", "acc", "never"], wall_time=False)
    assert frame.index.name == "step" and frame.index.tolist() == [0, 1, 2]
    assert list(frame.columns) == ["loss", "acc", "never"]
    assert frame["loss"].tolist()[:2] == [1.0, 0.5] and math.isnan(frame["loss"].tolist()[2])
    assert math.isnan(frame.loc[1, "acc"]) and frame.loc[2, "acc"] == 0.3
    assert frame["never"].isna().all()


def test_history_with_wall_times_and_all_tags_sorted() -> None:
    table = history_rows([("loss", 0, 1.0, 10.0), ("acc", 0, 0.1, 10.5)])
    frame = history_frame(table, None, wall_time=True)
    assert list(frame.columns) == ["acc", "acc.wall_time", "loss", "loss.wall_time"]
    assert frame.loc[0, "loss.wall_time"] == 10.0


def test_history_keeps_the_last_point_written_at_a_step() -> None:
    table = history_rows([("loss", 5, 1.0, 10.0), ("loss", 5, 2.0, 20.0)])  # ordered by step, wall_time
    assert history_frame(table, ["loss"], wall_time=False).loc[5, "loss"] == 2.0


def test_history_of_no_points_is_empty_with_the_asked_columns() -> None:
    frame = history_frame(history_rows([]), ["loss"], wall_time=False)
    assert frame.empty and list(frame.columns) == ["loss"] and frame.index.name == "step"


# -- a light base install --------------------------------------------------------------------------


def test_importing_the_sdk_imports_neither_pyarrow_nor_pandas() -> None:
    code = "import sys, runstream; print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_without_pyarrow_or_pandas_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install 'runstream\[query\]'"):
        _query.query("SELECT 1", url="http://127.0.0.1:1")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pandas: pip install 'runstream\[query\]'"):
        _query.runs(url="http://127.0.0.1:1")
