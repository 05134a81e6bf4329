"""The NCT pattern is written once in Python; the JSON Schemas we publish must say the same."""

from __future__ import annotations

import pytest

from adapter.errors import ConfigError
from adapter.fhir.constants import DEFAULT_PROJECT_BASE, NCT_PATTERN, PROJECT_BASE_ENV, is_nct_id, project_base
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


def test_the_project_base_defaults_when_unset_or_empty() -> None:
    assert project_base(None) == project_base("") == DEFAULT_PROJECT_BASE == "https://trialfhir.dev/fhir/"
    assert project_base("https://fhir.example.org/trial/") == "https://fhir.example.org/trial/"
    assert project_base("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/"


@pytest.mark.parametrize("value", [
    "https://fhir.example.org/trial",  # no final "/": CodeSystem/x would be glued to the last segment
    "fhir.example.org/trial/",  # not absolute
    "urn:oid:1.2.3/",  # no host to hold the URLs
    "https:///trial/",
    "https://fhir.example.org/trial/?v=2/",
    "https://fhir.example.org/trial/#x/",
    "https://fhir.example.org/a b/",
    "https://fhir.example.org/trial/\n",
])
def test_a_project_base_that_is_no_base_url_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{PROJECT_BASE_ENV}=.* is not a base URL"):
        project_base(value)
