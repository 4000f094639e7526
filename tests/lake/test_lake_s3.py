"""The lake's data on S3-compatible storage: a local S3 server (moto in server mode, started by .ci/run)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from conftest import lake_query

import runstream
from runstream_service.launcher import LocalServer
from runstream_service.store.lake import LakeConfig

ENDPOINT = os.environ.get("RUNSTREAM_LAKE_S3", "")


@pytest.mark.skipif(
    not ENDPOINT, reason="RUNSTREAM_LAKE_S3 (HOST:PORT of a local S3 server) is not set: .ci/run sets it"
)
def test_a_server_writes_the_lake_to_s3(
    tmp_path: Path, lake_config: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3  # type: ignore[import-untyped,import-not-found,unused-ignore]

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")  # the local server takes any keys; the server process inherits them
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=f"http://{ENDPOINT}", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    config = LakeConfig(lake_config.catalog, f"s3://{bucket}/runs", s3_endpoint=ENDPOINT)
    args = ["--lake", config.catalog, "--data-path", config.data_path, "--lake-s3-endpoint", ENDPOINT]
    with LocalServer(tmp_path / "a", args) as server:
        run = runstream.init(project="p", name="s3", run_id="s3", server=server.address)
        for step in range(50_000):
            run.log({"loss": float(step)}, step=step)
        assert run.finish().unsent_points == 0
        deadline = time.monotonic() + 60
        while lake_query(config, "SELECT count(*) FROM lake.scalars")[0][0] != 50_000 and time.monotonic() < deadline:
            time.sleep(0.5)
    assert lake_query(config, "SELECT count(DISTINCT step) FROM lake.scalars") == [(50_000,)]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(key.startswith("runs/") and key.endswith(".parquet") for key in keys), keys
