"""Every endpoint but health and readiness needs a key; a wrong or missing key gets 401 and nothing more."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from adapter.errors import ConfigError
from adapter.settings import AuthSettings, Secret, ServerSettings
from tests.unit.service.conftest import AUTH, BASIC, AppFactory, assert_documented, service_settings

PROTECTED = [
    "/",
    "/openapi.json",
    "/api/v1/studies",
    "/api/v1/studies/NCT04753476",
    "/api/v1/studies/NCT04753476/bundle",
    "/api/v1/jobs",
    "/api/v1/jobs/0123456789abcdef0123456789abcdef",
    "/api/v1/jobs/0123456789abcdef0123456789abcdef/files/x.ndjson",
    "/api/v1/servers",
    "/api/v1/no-such-endpoint",
]


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic d3Jvbmc6d3Jvbmc="}, {"Authorization": "x"}],
    ids=["missing", "wrong-bearer", "wrong-basic", "garbage"],
)
def test_401_without_detail(client: FlaskClient, path: str, headers: dict[str, str]) -> None:
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/fhir+json"
    assert response.json == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": "authentication required"}],
    }
    assert response.headers["WWW-Authenticate"].split()[0] in ("Bearer", "Basic")


def test_401_for_writes_too(client: FlaskClient) -> None:
    assert client.post("/api/v1/jobs", json={"kind": "push"}).status_code == 401
    assert client.delete("/api/v1/jobs/0123456789abcdef0123456789abcdef").status_code == 401
    assert client.post("/api/v1/studies", data=b"{}", content_type="application/json").status_code == 401


def test_health_and_readiness_need_no_key(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready"}


def test_readiness_fails_when_the_store_is_closed(client: FlaskClient) -> None:
    client.application.extensions["trialfhir"].store.close()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert_documented("/readyz", "get", 503, response.json)


def test_the_right_key_as_bearer_or_basic(client: FlaskClient) -> None:
    assert client.get("/api/v1/studies", headers=AUTH).status_code == 200
    assert client.get("/", headers=BASIC).status_code == 200
    assert client.get("/", headers={}).headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/api/v1/servers").headers["WWW-Authenticate"].startswith("Bearer")


def test_servers_show_no_secret(make_app: AppFactory, tmp_path: Path) -> None:
    settings = service_settings(tmp_path / "secrets")
    hospital = ServerSettings(
        name="hospital",
        base_url="https://svc:hunter2@fhir.example.org/r4",
        auth=AuthSettings(type="basic", username="svc", password=Secret("s3cr3t-password")),
    )
    settings = replace(settings, servers={"hospital": hospital})
    response = make_app(settings=settings).test_client().get("/api/v1/servers", headers=AUTH)
    assert response.json == {
        "servers": [{"name": "hospital", "base_url": "https://fhir.example.org/r4", "auth": "basic"}]
    }
    assert b"s3cr3t" not in response.data and b"hunter2" not in response.data
    assert_documented("/api/v1/servers", "get", 200, response.json)


def test_a_second_service_cannot_share_the_data_folder(make_app: AppFactory) -> None:
    make_app()
    with pytest.raises(ConfigError, match="another trialfhir service"):
        make_app()
