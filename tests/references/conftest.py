"""Fixtures for the reference and actor-dataset tests: a real face, and a local S3 server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

FACE = Path(__file__).parent / "data" / "astronaut_portrait.jpg"
# where dlib's HOG detector finds the face in FACE (x, y, w, h)
FACE_BOX = (88, 47, 75, 75)


@pytest.fixture
def face_path() -> Path:
    return FACE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible server on 127.0.0.1 (real HTTP, real boto3 client)."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(s3_server, monkeypatch) -> dict:
    """Credentials and endpoint through the standard environment variables only."""
    env = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    return env


@pytest.fixture
def bucket(aws_env):
    import uuid

    import boto3

    name = f"actors-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name
