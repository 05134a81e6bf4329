"""Shared fixtures: a real HAPI FHIR server for integration and e2e tests, the seed trial on it, and Spark.

The server is the one named by ``ADAPTER_TEST_FHIR_URL``, or one this session
starts on a free port and stops at the end (built with Maven on first use).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO = Path(__file__).resolve().parent.parent
SHARED_SAMPLES = REPO.parent / "shared" / "ctgov-samples"
SEED = REPO / "fixtures" / "NCT04753476"


def _load_server_tool() -> Any:
    spec = importlib.util.spec_from_file_location("fhirserver", REPO / "tools" / "fhir-server" / "fhirserver.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A ``local[2]`` session; skipped only where no Java is installed, and never in CI (CI has Java 17)."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")) and not os.environ.get("CI"):
        pytest.skip("Spark needs Java, and none is installed")
    from adapter.engines import spark_engine

    session = spark_engine.session("local[2]")
    yield session
    session.stop()


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """For commands run through the CLI: an empty config file and a journal folder of this test's own."""
    monkeypatch.setenv("ADAPTER_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ADAPTER_CONFIG", str(tmp_path / "config.yaml"))
    (tmp_path / "config.yaml").write_text("{}\n")
    return tmp_path / "journal"


@pytest.fixture(scope="session")
def fhir_base_url() -> Iterator[str]:
    """Base URL of a running HAPI FHIR R4 server, e.g. http://127.0.0.1:8080/fhir."""
    if url := os.environ.get("ADAPTER_TEST_FHIR_URL"):
        yield url.rstrip("/")
        return
    tool = _load_server_tool()
    port = _free_port()
    url = tool.start(port, "mem", "4g")
    try:
        yield url
    finally:
        tool.stop(port)


@pytest.fixture(scope="session")
def fhir_http(fhir_base_url: str) -> Iterator[requests.Session]:
    """A plain HTTP session for checking the server's state independently of our client."""
    with requests.Session() as session:
        session.headers.update({"Accept": "application/fhir+json", "Cache-Control": "no-cache"})
        yield session


@pytest.fixture(scope="session")
def seeded(fhir_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The server's base URL, with the seed trial pushed once per session (study record, then trial package).

    For tests that only read the seed: the pushes are idempotent PUTs to deterministic ids, so the
    shared server ends the same whatever ran before. Tests of push itself push on their own.
    """
    from adapter.settings import ServerSettings
    from adapter.sync.inputs import open_input
    from adapter.sync.push import push_source

    server = ServerSettings(name="seed", base_url=fhir_base_url)
    journal_dir = tmp_path_factory.mktemp("seed-journal")
    for source in (SEED / "study.json", SEED):
        report = push_source(open_input(str(source)), server, journal_dir)
        assert report.ok, report.failures
    return fhir_base_url


def validation_errors(http: requests.Session, base_url: str, resource: dict[str, Any]) -> list[str]:
    """Run the server's ``$validate`` on ``resource``; return its error and fatal issues."""
    from adapter.fhir.json import dumpb

    response = http.post(
        f"{base_url}/{resource['resourceType']}/$validate",
        data=dumpb(resource),  # the project's bytes: decimals with their digits (requests' json= cannot write them)
        headers={"Content-Type": "application/fhir+json"},
        timeout=120,
    )
    outcome = response.json()
    assert outcome.get("resourceType") == "OperationOutcome", outcome
    return [
        f"{issue.get('severity')}: {issue.get('diagnostics')} at {issue.get('expression') or issue.get('location')}"
        for issue in outcome.get("issue", [])
        if issue.get("severity") in ("error", "fatal")
    ]
