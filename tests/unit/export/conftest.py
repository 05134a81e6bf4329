"""The seed trial (fixtures/NCT04753476) mapped offline to an NDJSON folder and exported as SDTM, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.export.exporter import export
from adapter.fhir.json import dumps
from adapter.package import write_mapped_package
from adapter.sources.ctgov import read_study
from adapter.studybundle import study_resources

SEED = Path(__file__).resolve().parents[3] / "fixtures" / "NCT04753476"


@pytest.fixture(scope="session")
def seed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed package and its registry record as ``<Type>.ndjson`` files, as a pull would write them."""
    folder = tmp_path_factory.mktemp("seed")
    write_mapped_package(SEED, folder)
    by_type: dict[str, list[str]] = {}
    for resource in study_resources(read_study(SEED / "study.json")):
        by_type.setdefault(resource["resourceType"], []).append(dumps(resource))
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "rejects.ndjson").unlink()
    return folder


@pytest.fixture(scope="session")
def seed_sdtm(seed_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed trial's SDTM folder."""
    out = tmp_path_factory.mktemp("seed-sdtm")
    export(seed_folder, out, "sdtm")
    return out
