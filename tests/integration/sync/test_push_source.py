"""push_source: the one push set-up the CLI and the service share."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from adapter.errors import InputError
from adapter.settings import load_settings
from adapter.sync.inputs import open_input
from adapter.sync.push import push_source

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[3] / "fixtures" / "NCT04753476"


def test_delete_removed_is_refused_when_source_rows_were_rejected(
    tmp_path: Path, fhir_base_url: str, fhir_http: requests.Session
) -> None:
    package = tmp_path / "package"
    shutil.copytree(SEED, package)
    lines = (package / "measurements.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    first = lines[1].rstrip("\r\n").split(",")
    first[header.index("value")] = "not-a-number"
    lines[1] = ",".join(first) + "\n"
    (package / "measurements.csv").write_text("".join(lines), encoding="utf-8")
    server = load_settings(env={}).server(fhir_base_url)
    before = fhir_http.get(f"{fhir_base_url}/Observation", params={"_summary": "count"}, timeout=60).json()["total"]

    with pytest.raises(InputError, match="1 source row"):
        push_source(open_input(package), server, tmp_path / "journal", delete_removed=True)

    after = fhir_http.get(f"{fhir_base_url}/Observation", params={"_summary": "count"}, timeout=60).json()["total"]
    assert after == before, "nothing may be written or deleted when the push is refused"
