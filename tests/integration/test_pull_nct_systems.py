"""Pull finds a study another tool wrote under another spelling of the ClinicalTrials.gov system.

We write ``http://clinicaltrials.gov`` (HL7's registration); other converters write
``https://`` or a trailing slash. HAPI's token search needs the exact system, so pull
searches every spelling at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.client import FhirClient
from adapter.fhir.constants import NCT_SYSTEM, NCT_SYSTEMS
from adapter.sync.pull import pull
from tests.synthetic import trial

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("number, system", [(n, s) for n, s in enumerate(NCT_SYSTEMS) if s != NCT_SYSTEM])
def test_pull_finds_a_study_written_under_another_nct_system(
    fhir_base_url: str, tmp_path: Path, number: int, system: str
) -> None:
    nct = f"NCT0999110{number}"
    resources = list(trial(nct, subjects=2, measurements=1))
    study = next(r for r in resources if r["resourceType"] == "ResearchStudy")
    study["identifier"] = [{"system": system, "value": nct}]
    with FhirClient(fhir_base_url) as client:
        for resource in resources:
            client.update(f"{resource['resourceType']}/{resource['id']}", resource)
        report = pull(client, nct, tmp_path, mode="search")
    assert report.ok, report.problems
    pulled = json.loads((tmp_path / "ResearchStudy.ndjson").read_text(encoding="utf-8"))
    assert pulled["identifier"] == [{"system": system, "value": nct}]
    assert report.counts == {"Organization": 1, "ResearchStudy": 1, "Patient": 2, "ResearchSubject": 2,
                             "Observation": 2}  # fmt: skip
