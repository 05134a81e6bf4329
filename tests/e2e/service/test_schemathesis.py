"""schemathesis against the running service's /openapi.json: no server errors, no response off the document.

The configured FHIR server is unreachable on purpose: jobs schemathesis submits fail at once
without touching anything. Needs no FHIR server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.service.conftest import KEY, SEED, Api, start_service

pytestmark = pytest.mark.e2e

# Every check runs (schemathesis 4's default) except one, on one operation: a body of the right media type is
# not yet a ClinicalTrials.gov record or trial package, and the service rightly answers 400 to one that is not.
CONFIG = """
[parameters]
study_id = "NCT04753476"

[[operations]]
include-path = "/api/v1/studies"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
"""


@pytest.mark.slow  # 14 s with --durations on the shared HAPI server
def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    service = start_service(tmp_path, "  nowhere:\n    base_url: http://127.0.0.1:9/fhir\n    max_retries: 0\n")
    try:
        api = Api(service)
        study = api("POST", "/api/v1/studies", data=(SEED / "study.json").read_bytes(),
                    headers={"Content-Type": "application/json"})  # fmt: skip
        assert study.status_code == 201
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG, encoding="utf-8")
        command = [
            Path(sys.executable).parent / "schemathesis", "--config-file", config, "run", f"{service.url}/openapi.json",
            "--header", f"Authorization: Bearer {KEY}", "--max-examples", "40", "--generation-deterministic",
            "--no-shrink", "--report", "junit", "--report-dir", tmp_path / "report",
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
        assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
        assert "Tested: 13" in run.stdout and " passed" in run.stdout
    finally:
        service.stop()
    log = (tmp_path / "service.log").read_text()
    assert "Traceback" not in log and KEY not in log
