"""A local S3 API for the object-store tests: moto's server mode over HTTP, in a subprocess.

:func:`start` runs ``python -m moto.server`` on a free port of 127.0.0.1 and
waits until it answers; the fixture ``s3`` (imported by the test modules that
use it) starts one per module and gives each test a fresh bucket. The tests
skip only where ``s3fs`` or ``moto[server]`` is not installed; CI installs
both (the ``test`` extra).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

#: what moto accepts (it checks no signatures); also put in the environment of the tests' subprocesses
CREDENTIALS = {"key": "testing", "secret": "testing"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(timeout: float = 30.0):
    """Start a moto S3 server; returns ``(Popen, endpoint_url)``."""
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                return proc, endpoint
            except OSError:
                time.sleep(0.05)
        stop(proc)  # port taken meanwhile, or too slow: try another
    raise RuntimeError("could not start moto's S3 server")


def stop(proc):
    proc.kill()  # it keeps nothing worth a clean shutdown
    proc.wait(10)


@dataclass
class S3:
    endpoint: str
    bucket: str

    @property
    def options(self) -> dict:
        """``storage_options`` for s3fs."""
        return {"endpoint_url": self.endpoint, **CREDENTIALS}

    def url(self, name: str = "run") -> str:
        return f"s3://{self.bucket}/{name}"

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **self.options)


@pytest.fixture(scope="module")
def s3_endpoint():
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    pytest.importorskip("flask")  # moto[server]
    proc, endpoint = start()
    try:
        yield endpoint
    finally:
        stop(proc)


@pytest.fixture
def s3(s3_endpoint):
    """A fresh bucket on the module's S3 server."""
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    env = S3(s3_endpoint, bucket)
    env.fs().mkdir(bucket)
    return env


def subprocess_env() -> dict:
    """Environment for child processes that talk to the server (credentials as AWS variables)."""
    return {**os.environ, "AWS_ACCESS_KEY_ID": CREDENTIALS["key"], "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret"],
            "AWS_DEFAULT_REGION": "us-east-1"}
