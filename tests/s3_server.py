"""A real S3 API on localhost: moto's standalone server as a subprocess, one bucket in it.

The tests reach it as a user reaches any S3-compatible store (MinIO, R2, Ceph): s3fs with
the endpoint and credentials from the environment (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), which every process a job starts inherits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Dummy credentials: moto accepts any; they only have to be present, as a real store's are.
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours its request log by status
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "soundry-test-key", "AWS_SECRET_ACCESS_KEY": "soundry-test-secret"}


@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    process: subprocess.Popen
    log: Path  # the server's request log: one line per request, method and key

    def requests(self) -> list[str]:
        """The request lines logged so far, e.g. `PUT /bucket/key HTTP/1.1` (keys URL-quoted)."""
        lines = ANSI_COLOUR.sub("", self.log.read_text()).splitlines()
        return [line.split('"')[1] for line in lines if line.count('"') >= 2]

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def environment(self) -> dict[str, str]:
        """What a process needs to reach the server: endpoint, credentials, region."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # no credential lookups on a cloud metadata address
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_listening(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto's server did not listen on port {port} within {timeout_s:.0f} s")


@contextlib.contextmanager
def s3_server(log: Path, bucket: str = "soundry") -> Iterator[S3Server]:
    """Start the server on a free port, create `bucket`, stop the server when the block ends."""
    import boto3

    port = _free_port()
    with open(log, "wb") as out:  # a file, not a pipe: the server logs every request, and a full pipe would stall it
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_listening(port, process, log)
        server = S3Server(f"http://127.0.0.1:{port}", bucket, process, log)
        env = server.environment()
        boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=bucket)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
