"""An app on a temporary data folder, with one API key and a configured (unreachable) FHIR server."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapter.service import close_app, create_app
from adapter.service.keys import hash_key
from adapter.service.openapi import openapi_document
from adapter.service.runner import JobFunction
from adapter.settings import ServerSettings, ServiceSettings, Settings

REPO = Path(__file__).resolve().parents[3]
SEED_STUDY = REPO / "fixtures" / "NCT04753476" / "study.json"
KEY = "test-key-for-the-service"
AUTH = {"Authorization": f"Bearer {KEY}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"anyone:{KEY}".encode()).decode()}


def service_settings(data_dir: Path, **service: Any) -> Settings:
    return Settings(
        servers={"hapi": ServerSettings(name="hapi", base_url="http://127.0.0.1:9/fhir")},
        journal_dir=data_dir / "journal",
        service=ServiceSettings(api_keys={"tester": hash_key(KEY)}, data_dir=data_dir, **service),
        env={},
    )


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Build apps on ``tmp_path/data`` (or on ``settings``); each is closed at the end of the test."""
    apps: list[Flask] = []

    def build(
        kinds: Mapping[str, JobFunction] | None = None, settings: Settings | None = None, **service: Any
    ) -> Flask:
        app = create_app(settings or service_settings(tmp_path / "data", **service), kinds=kinds)
        apps.append(app)
        return app

    yield build
    for app in apps:
        close_app(app)  # now rather than at exit: the next test gets the worker threads back


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    return make_app().test_client()


def upload_seed(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/studies", data=SEED_STUDY.read_bytes(), content_type="application/json", headers=AUTH
    )
    assert response.status_code in (200, 201), response.json


def wait_for(client: FlaskClient, job_id: str, states: set[str], timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json
        if job["state"] in states or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def assert_documented(path: str, method: str, status: int, body: Any) -> None:
    """The response fits what /openapi.json says for this operation and status."""
    document = openapi_document("test", ["hapi"])
    operation = document["paths"][path][method]
    response = operation["responses"][str(status)]
    media = next(iter(response["content"].values()))
    schema = {**media["schema"], "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)
