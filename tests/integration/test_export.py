"""`runstream export`: the views, filtered, to Parquet (types kept) and CSV, through a server and from its file."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import runstream
from support import ServerProcess


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runstream_service", *args], capture_output=True, text=True, timeout=300
    )


def log_runs(server: ServerProcess) -> str:
    """Two runs of project `a`, one of `b`; returns the id of a's first run."""
    first = ""
    for project, name in (("a", "one"), ("a", "two"), ("b", "three")):
        with runstream.init(project=project, name=name, server=server.address, config={"lr": 0.1}) as run:
            for step in range(50):
                run.log({"loss": 1.0 / (step + 1), "acc": step / 50}, step=step)
            run.log_histogram("weights", np.linspace(-1, 1, 200), step=3)
            run.log_image("sample", np.full((3, 4, 3), 200, np.uint8), step=3)
            first = first or run.id
    return first


def test_export_through_the_server_and_from_the_file_gives_the_same_typed_rows(
    server: ServerProcess, tmp_path: Path
) -> None:
    first = log_runs(server)
    done = cli("export", str(tmp_path / "url"), "--project", "a", "--url", server.http_url)
    assert done.returncode == 0, done.stderr
    assert server.stop() == 0
    done = cli("export", str(tmp_path / "file"), "--project", "a", "--data", str(server.data_dir))
    assert done.returncode == 0, done.stderr

    files = {p.name for p in (tmp_path / "url").iterdir()}
    assert files == {"runs.parquet", "scalars.parquet", "histograms.parquet", "images.parquet"}
    assert files == {p.name for p in (tmp_path / "file").iterdir()}
    runs = pq.read_table(tmp_path / "url" / "runs.parquet")
    assert sorted(runs.column("name").to_pylist()) == ["one", "two"]
    scalars = pq.read_table(tmp_path / "url" / "scalars.parquet")
    assert scalars.num_rows == 2 * 2 * 50
    histograms = pq.read_table(tmp_path / "url" / "histograms.parquet")
    assert histograms.schema.field("bucket_limits").type == pa.list_(pa.float64())
    images = pq.read_table(tmp_path / "url" / "images.parquet")
    assert pa.types.is_binary(images.schema.field("data").type) or pa.types.is_large_binary(
        images.schema.field("data").type
    )
    con = duckdb.connect(str(server.data_dir / "runstream.duckdb"), read_only=True)
    try:
        (png,) = con.execute("SELECT data FROM images WHERE run_id = ?", [first]).fetchall()[0]
    finally:
        con.close()
    assert png in images.column("data").to_pylist()
    for name in files:
        through_server = pq.read_table(tmp_path / "url" / name)
        from_file = pq.read_table(tmp_path / "file" / name)
        assert through_server.column_names == from_file.column_names
        key = [(c, "ascending") for c in through_server.column_names if c in ("run_id", "tag", "step", "rank")]
        assert through_server.sort_by(key).to_pylist() == from_file.sort_by(key).to_pylist()


def test_export_of_one_run_and_tag_to_csv(server: ServerProcess, tmp_path: Path) -> None:
    first = log_runs(server)
    done = cli(
        "export", str(tmp_path / "out"), "--run", first, "--tag", "loss", "--format", "csv", "--url", server.http_url
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"runs.csv", "scalars.csv"}
    with open(tmp_path / "out" / "scalars.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 50 and {row["tag"] for row in read} == {"loss"} and {row["run_id"] for row in read} == {first}
    assert sorted(float(row["value"]) for row in read)[-1] == 1.0

    again = cli("export", str(tmp_path / "out"), "--url", server.http_url)  # never overwrites
    assert again.returncode == 1 and "empty directory" in again.stderr
