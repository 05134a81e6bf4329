"""The Synthea hospital on the test server: generated (cached) and loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.collect.hospital import POPULATION, SEED, synthea_tool


@pytest.fixture(scope="session")
def synthea_hospital(fhir_base_url: str) -> Path:
    """The folder of Synthea's bundles, after loading them (idempotently) into the test server."""
    tool = synthea_tool()
    folder: Path = tool.generate(SEED, POPULATION)
    tool.load(fhir_base_url, folder)
    return folder
