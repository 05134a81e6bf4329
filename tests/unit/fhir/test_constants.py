"""The NCT pattern is written once in Python; the JSON Schemas we publish must say the same."""

from __future__ import annotations

from adapter.fhir.constants import NCT_PATTERN, is_nct_id
from adapter.sources.package_descriptor import schema


def test_published_schemas_use_the_one_nct_pattern() -> None:
    package = schema("trial-package.schema.json")["properties"]["study"]["properties"]["nct_id"]
    study = schema("ctgov-v2-study.schema.json")
    nct = study["properties"]["protocolSection"]["properties"]["identificationModule"]["properties"]["nctId"]
    assert package["pattern"] == nct["pattern"] == f"^{NCT_PATTERN.pattern}$"


def test_a_trailing_newline_is_not_an_nct_number() -> None:
    assert is_nct_id("NCT04753476")
    assert not is_nct_id("NCT04753476\n")
    assert not is_nct_id("NCT0475347")
