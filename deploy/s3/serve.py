"""A local S3-compatible server for the lake profile: moto in server mode, with the lake's bucket made at start.

moto keeps every object in memory: stopping the container loses the lake's data files (the catalog in
PostgreSQL then names files that are gone). It stands in for real S3 or MinIO so that the profile runs
anywhere; anything kept belongs on those (docker-compose.yml's comments say how).

Settings, from the environment: S3_HOST (default 0.0.0.0), S3_PORT (5000), S3_BUCKET (runstream-lake).
`serve.py --check` exits 0 once the bucket answers (the image's healthcheck).
"""

from __future__ import annotations

import os
import signal
import sys
import urllib.request

HOST = os.environ.get("S3_HOST", "0.0.0.0")
PORT = int(os.environ.get("S3_PORT", "5000"))
BUCKET = os.environ.get("S3_BUCKET", "runstream-lake")


def check() -> None:
    """Raises (exit 1) unless the bucket exists: until then the lake's servers cannot write."""
    host = "127.0.0.1" if HOST == "0.0.0.0" else HOST
    urllib.request.urlopen(f"http://{host}:{PORT}/{BUCKET}?max-keys=1", timeout=4).close()


def serve() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=HOST, port=PORT, verbose=False)
    server.start()
    host = "127.0.0.1" if HOST == "0.0.0.0" else HOST
    # moto takes any keys; the bucket is made in its us-east-1, where the servers' S3 secret points by default.
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{PORT}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    s3.create_bucket(Bucket=BUCKET)
    print(f"s3: moto on {HOST}:{PORT}, bucket {BUCKET} (in memory: gone when this container stops)", flush=True)
    # As PID 1 a process gets SIGTERM only if it handles it: docker stop then ends it at once.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.pause()


if __name__ == "__main__":
    check() if sys.argv[1:] == ["--check"] else serve()
