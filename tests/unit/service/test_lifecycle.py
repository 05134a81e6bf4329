"""The service's life: nothing runs until the first request, close is once and also at exit; light request schemas."""

from __future__ import annotations

import atexit
import subprocess
import sys
from unittest import mock

from adapter.service import close_app
from adapter.service.context import service
from adapter.service.schemas import STUDY_ID
from tests.unit.service.conftest import AUTH, AppFactory, upload_seed


def test_workers_start_on_the_first_request_but_not_for_a_probe(make_app: AppFactory) -> None:
    app = make_app()
    assert not service(app).started
    client = app.test_client()
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert not service(app).started
    client.get("/api/v1/studies", headers=AUTH)
    assert service(app).started


def test_close_runs_at_exit_unless_called_first_and_only_once(make_app: AppFactory) -> None:
    with mock.patch.object(atexit, "register") as register, mock.patch.object(atexit, "unregister") as unregister:
        app = make_app()
        register.assert_called_once_with(service(app).close)
        close_app(app)
        close_app(app)
        unregister.assert_called_once_with(service(app).close)
    assert service(app).closed


def test_a_study_id_with_a_trailing_newline_is_refused(make_app: AppFactory) -> None:
    client = make_app().test_client()
    upload_seed(client)
    body = {"kind": "push", "study": "NCT04753476\n", "server": "hapi"}
    response = client.post("/api/v1/jobs", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json["issue"][0]["expression"] == ["study"]
    assert client.get("/api/v1/studies/NCT04753476%0A", headers=AUTH).status_code == 404
    assert STUDY_ID["pattern"] == "^NCT[0-9]{8}$"


def test_the_request_schemas_load_no_engine_module() -> None:
    heavy = ("adapter.sync.pull", "adapter.export.exporter", "pyarrow")
    code = f"import sys, adapter.service.schemas; print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
