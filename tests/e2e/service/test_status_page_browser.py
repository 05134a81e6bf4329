"""Headless Chromium (Debian's package) loads the status page, sees a finished push, and saves a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.service.conftest import KEY, SEED, Api, ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package: apt-get install -y chromium")
def test_status_page_in_a_browser(service: ServiceProcess, api: Api, tmp_path: Path) -> None:
    record = (SEED / "study.json").read_bytes()
    api("POST", "/api/v1/studies", data=record, headers={"Content-Type": "application/json"})
    job = api("POST", "/api/v1/jobs", json={"kind": "push", "study": "NCT04753476", "server": "hapi"}).json()
    assert api.wait(job["id"], {"succeeded", "failed"})["state"] == "succeeded"

    # A browser sends the API key as the Basic password; the page asks for it with WWW-Authenticate: Basic.
    page = f"http://status:{KEY}@127.0.0.1:{service.port}/"
    dom = _chromium(tmp_path, "--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "trialfhir service" in dom.stdout
    assert job["id"][:8] in dom.stdout and 'class="state succeeded"' in dom.stdout

    screenshot = tmp_path / "status-page.png"
    shot = _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,900", page)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    if keep := os.environ.get("ADAPTER_TEST_ARTIFACTS"):  # where CI or a person wants to look at it
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / screenshot.name)

    # Without the key the browser gets the 401 page, not the jobs.
    refused = _chromium(tmp_path, "--dump-dom", f"http://127.0.0.1:{service.port}/")
    assert job["id"][:8] not in refused.stdout
