"""Credentials go only to the configured origin; links and redirects elsewhere are refused (issue 13, item 3).

A hostile (or misconfigured) server controls the URLs it answers with: search ``next`` links,
Bulk Data file URLs and redirects. Stubbed with ``responses``: a real server will not send them.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses

from adapter.auth import BearerAuth
from adapter.client import FhirClient
from adapter.errors import ConfigError, ServerError
from adapter.settings import Secret, ServerSettings, load_settings, url_origin

BASE = "https://fhir.test/r4"
OTHER = "https://attacker.test"
FILES = "https://files.test:8443"
TOKEN = "server-token-0123456789"


def client(*allowed: str) -> FhirClient:
    return FhirClient(BASE, auth=BearerAuth(Secret(TOKEN)), max_retries=0, allowed_origins=allowed)


def bundle(following: str | None) -> dict[str, Any]:
    links = [{"relation": "next", "url": following}] if following else []
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": []}


def authorizations(stubs: responses.RequestsMock) -> dict[str, str | None]:
    return {str(call.request.url).split("?")[0]: call.request.headers.get("Authorization") for call in stubs.calls}


def test_a_next_link_to_another_origin_is_refused_and_gets_nothing() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as stubs:
        stubs.get(f"{BASE}/Patient", json=bundle(f"{OTHER}/steal?page=2"))
        stubs.get(f"{OTHER}/steal", json=bundle(None))
        with pytest.raises(ServerError, match="refusing to follow the server to another origin, https://attacker"):
            list(client().search("Patient", {}))
        assert authorizations(stubs) == {f"{BASE}/Patient": f"Bearer {TOKEN}"}


def test_a_next_link_to_an_allowed_origin_is_followed_with_the_token() -> None:
    with responses.RequestsMock() as stubs:
        stubs.get(f"{BASE}/Patient", json=bundle(f"{FILES}/page2"))
        stubs.get(f"{FILES}/page2", json=bundle(None))
        assert len(list(client(FILES).search("Patient", {}))) == 2
        assert authorizations(stubs)[f"{FILES}/page2"] == f"Bearer {TOKEN}"


def test_a_redirect_to_another_origin_is_refused_before_it_is_followed() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as stubs:
        stubs.get(f"{BASE}/Patient/p1", status=302, headers={"Location": f"{OTHER}/Patient/p1"})
        stubs.get(f"{OTHER}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
        with pytest.raises(ServerError, match="another origin"):
            client().read("Patient", "p1")
        assert list(authorizations(stubs)) == [f"{BASE}/Patient/p1"]


def test_a_redirect_on_the_same_origin_is_followed() -> None:
    with responses.RequestsMock() as stubs:
        stubs.get(f"{BASE}/Patient/p1", status=301, headers={"Location": "/r4/Patient/p2"})
        stubs.get(f"{BASE}/Patient/p2", json={"resourceType": "Patient", "id": "p2"})
        assert client().read("Patient", "p1")["id"] == "p2"
        assert authorizations(stubs)[f"{BASE}/Patient/p2"] == f"Bearer {TOKEN}"


def test_a_request_without_credentials_carries_no_token() -> None:
    with responses.RequestsMock() as stubs:
        stubs.get(f"{BASE}/Binary/f1", body="")
        client().send("GET", f"{BASE}/Binary/f1", credentials=False)
        assert authorizations(stubs) == {f"{BASE}/Binary/f1": None}


def test_origins_compare_scheme_host_and_port() -> None:
    assert url_origin("https://FHIR.test/r4") == url_origin("https://fhir.test:443/other") == "https://fhir.test:443"
    assert url_origin("http://fhir.test/r4") != url_origin("https://fhir.test/r4")
    assert url_origin("https://fhir.test.attacker.test/") != url_origin(BASE)
    assert url_origin("https://user@fhir.test:x/") == "https://fhir.test:None"


def test_allowed_origins_are_read_from_the_config(tmp_path: Any) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"servers:\n  h:\n    base_url: {BASE}\n    allowed_origins: [{FILES}, 'HTTPS://Cdn.test']\n", encoding="utf-8"
    )
    server = load_settings(config_file=config, env={}).servers["h"]
    assert server.allowed_origins == ("https://files.test:8443", "https://cdn.test:443")
    assert FhirClient.from_settings(server).origins == {url_origin(BASE), *server.allowed_origins}
    config.write_text(f"servers:\n  h:\n    base_url: {BASE}\n    allowed_origins: [{FILES}/path]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not an origin"):
        load_settings(config_file=config, env={})
    assert ServerSettings(name="x", base_url=BASE).allowed_origins == ()
