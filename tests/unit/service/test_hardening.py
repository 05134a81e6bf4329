"""Regression tests for the attacks of issue 13: each reproduces one and holds the fix."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from flask.testing import FlaskClient

from tests.unit.service.conftest import AUTH, SEED_STUDY
from tests.unit.sources.test_loader import BOMB

PACKAGE_FILES = ["package.yaml", "study.json", "subjects.csv", "measurements.csv", "administrations.csv"]


def package_zip(**replaced: bytes) -> bytes:
    """The seed trial's package as a zip, with some members replaced (``subjects_csv=b"..."``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in PACKAGE_FILES:
            data = replaced.get(name.replace(".", "_"), (SEED_STUDY.parent / name).read_bytes())
            archive.writestr(name, data)
    return buffer.getvalue()


def post_zip(client: FlaskClient, data: bytes) -> tuple[int, dict[str, object]]:
    response = client.post("/api/v1/studies", data=data, content_type="application/zip", headers=AUTH)
    return response.status_code, response.json


def stored(tmp_path: Path) -> list[str]:
    studies = tmp_path / "data" / "studies"
    return sorted(p.name for p in studies.iterdir() if p.name != ".incoming")


# --- 1. YAML alias bomb ------------------------------------------------------------------------------


def test_a_package_yaml_alias_bomb_is_refused_with_400(client: FlaskClient, tmp_path: Path) -> None:
    status, body = post_zip(client, package_zip(package_yaml=BOMB.encode()))
    assert status == 400, body
    assert "aliases (*name) are not accepted" in body["issue"][0]["diagnostics"]  # type: ignore[index]
    assert stored(tmp_path) == []
