"""A real ``trialfhir serve`` process on a free port, configured with the shared HAPI server as ``hapi``."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from adapter.service.keys import hash_key

REPO = Path(__file__).resolve().parents[3]
SEED = REPO / "fixtures" / "NCT04753476"
KEY = "e2e-key-" + "x" * 32
PACKAGE_FILES = ("package.yaml", "study.json", "subjects.csv", "measurements.csv", "administrations.csv")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    """One service process; ``restart`` keeps its data folder and port."""

    config: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "ADAPTER_CONFIG": str(self.config)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "adapter", "serve", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.config.parent,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the service did not become ready:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None


class Api:
    """requests with the API key, against the service."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {KEY}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.service.url + path, timeout=60, **kwargs)

    def wait(self, job_id: str, states: set[str], timeout: float = 300, condition: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self("GET", f"/api/v1/jobs/{job_id}").json()
            if job["state"] in states and (condition is None or condition(job)):
                return job
            assert time.monotonic() < deadline, f"job {job_id} stuck: {job}"
            time.sleep(0.1)

    def upload_package(self) -> requests.Response:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in PACKAGE_FILES:
                archive.write(SEED / name, f"NCT04753476/{name}")
        return self("POST", "/api/v1/studies", data=buffer.getvalue(), headers={"Content-Type": "application/zip"})


def start_service(tmp_path: Path, servers: str) -> ServiceProcess:
    """A started service whose config names ``servers`` (YAML lines under ``servers:``)."""
    config = tmp_path / "service.yaml"
    config.write_text(
        f"journal_dir: {tmp_path / 'journal'}\nservers:\n{servers}"
        f"service:\n  data_dir: {tmp_path / 'data'}\n  workers: 2\n  api_keys:\n    e2e: {hash_key(KEY)}\n",
        encoding="utf-8",
    )
    process = ServiceProcess(config=config, port=free_port(), log=tmp_path / "service.log")
    process.start()
    return process


@pytest.fixture
def service(fhir_base_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = start_service(tmp_path, f"  hapi:\n    base_url: {fhir_base_url}\n    bundle_entries: 100\n")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def api(service: ServiceProcess) -> Api:
    return Api(service)
