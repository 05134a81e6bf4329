"""SDTM of the seed trial as HAPI gives it back: check-sdtm passes, LB/VS hold the values as collected."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from adapter.client import FhirClient
from adapter.export.exporter import export
from adapter.export.sdtm.check import check_folder
from adapter.sync.pull import pull

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "NCT04753476"
NCT = "NCT04753476"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sdtm(seeded: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pulled, out = tmp_path_factory.mktemp("pulled"), tmp_path_factory.mktemp("sdtm")
    with FhirClient(seeded) as client:
        report = pull(client, NCT, pulled, mode="search")
    assert report.ok, report.problems
    export(pulled, out, "sdtm")
    return out


def test_the_pulled_trials_sdtm_passes_check_sdtm(sdtm: Path) -> None:
    assert check_folder(sdtm) == []
    written = {p.stem for p in sdtm.glob("*.xpt")}
    assert {"ts", "ta", "te", "tv", "dm", "se", "sv", "ds", "ex", "cm", "pr", "lb", "vs", "rs", "mb", "re"} <= written


def test_lb_and_vs_values_are_the_digits_the_sites_wrote(sdtm: Path) -> None:
    subjects = {r["subject_id"]: r["site_id"] for r in _rows(SEED / "subjects.csv")}
    written = {}
    for name in ("lb", "vs"):
        p = name.upper()
        for row in _rows(sdtm / f"{name}.csv"):
            written.setdefault((row["USUBJID"], row[f"{p}DTC"][:16]), set()).add(row[f"{p}ORRES"])
    found = 0
    for source in _rows(SEED / "measurements.csv"):
        moment = source["collected_at"].replace(" ", "T")[:16]
        values = written.get((f"{NCT}-{subjects[source['subject_id']]}-{source['subject_id']}", moment), set())
        if source["value"] in values:
            found += 1
    assert found > 3000, "the sites' own digits, not a float's"
