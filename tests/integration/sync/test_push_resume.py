"""A push killed with SIGKILL at several points, then run again, leaves the server as one clean push does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.sync.test_push import new_nct, search_counts, server_state
from tests.synthetic import counts, trial

pytestmark = pytest.mark.integration

TRIALFHIR = Path(sys.executable).parent / "trialfhir"
SUBJECTS, MEASUREMENTS = 40, 10


def write_ndjson(folder: Path, resources: list[dict[str, Any]]) -> None:
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for resource_type, lines in by_type.items():
        (folder / f"{resource_type}.ndjson").write_text("\n".join(lines) + "\n")


def push_killed_after(folder: Path, base_url: str, env: dict[str, str], marker: str, occurrence: int) -> list[str]:
    """Run ``trialfhir -v push`` and SIGKILL it once ``marker`` has appeared ``occurrence`` times on stderr."""
    command = [TRIALFHIR, "-v", "push", str(folder), "--server", base_url]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as process:
        assert process.stderr is not None
        seen, lines = 0, []
        for line in process.stderr:
            lines.append(line)
            if marker in line:
                seen += 1
                if seen == occurrence:
                    process.send_signal(signal.SIGKILL)
                    break
        process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, "".join(lines)  # it really died part-way
    return lines


def test_killed_pushes_resume_to_the_state_of_one_clean_push(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path
) -> None:
    nct = new_nct()
    resources = list(trial(nct, SUBJECTS, MEASUREMENTS))
    folder = tmp_path / "mapped"
    folder.mkdir()
    write_ndjson(folder, resources)
    env = {**os.environ, "ADAPTER_JOURNAL_DIR": str(tmp_path / "journal"), "ADAPTER_BUNDLE_ENTRIES": "10",
           "ADAPTER_CONCURRENCY": "2", "ADAPTER_CONFIG": str(tmp_path / "none.yaml")}  # fmt: skip
    (tmp_path / "none.yaml").write_text("{}\n")

    # Kill points: while planning, after the first bundle, mid-way through the observations, near the end.
    push_killed_after(folder, fhir_base_url, env, "journal", 1)
    for bundles in (1, 12, 25):
        push_killed_after(folder, fhir_base_url, env, "bundle of", bundles)
    partial = server_state(fhir_http, fhir_base_url, resources)
    assert 0 < sum(value is not None for value in partial.values()) < len(resources)

    final = subprocess.run(
        [TRIALFHIR, "push", str(folder), "--server", fhir_base_url, "--json"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)
    written = sum(t["written"] for t in summary["types"].values())
    unchanged = sum(t["unchanged"] for t in summary["types"].values())
    assert written + unchanged == len(resources) and 0 < written < len(resources)  # it resumed, not restarted

    # The state one clean push gives: every resource once, exactly as mapped, at version 1.
    state = server_state(fhir_http, fhir_base_url, resources)
    for resource in resources:
        assert state[f"{resource['resourceType']}/{resource['id']}"] == ("1", resource)
    assert search_counts(fhir_http, fhir_base_url, resources) == counts(SUBJECTS, MEASUREMENTS)

    again = subprocess.run(
        [TRIALFHIR, "push", str(folder), "--server", fhir_base_url, "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert sum(t["written"] for t in json.loads(again.stdout)["types"].values()) == 0
