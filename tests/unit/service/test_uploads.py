"""Uploads: size limits, and zip members that are absolute, climb out, are links or are too big."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from adapter.service.problems import ApiError
from adapter.service.uploads import extract_zip
from tests.unit.service.conftest import AUTH, SEED_STUDY, AppFactory, assert_documented


def _zip(*members: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _package(prefix: str = "") -> bytes:
    """The seed trial's package as a zip, optionally inside a folder."""
    folder = SEED_STUDY.parent
    names = ["package.yaml", "study.json", "subjects.csv", "measurements.csv", "administrations.csv"]
    return _zip(*[(f"{prefix}{name}", (folder / name).read_bytes()) for name in names])


def _post_zip(client: FlaskClient, data: bytes) -> tuple[int, dict[str, object]]:
    response = client.post("/api/v1/studies", data=data, content_type="application/zip", headers=AUTH)
    return response.status_code, response.json


@pytest.mark.parametrize(
    ("member", "expression"),
    [
        (("../evil.txt", b"x"), "../evil.txt"),
        (("pkg/../../evil.txt", b"x"), "pkg/../../evil.txt"),
        (("/etc/evil", b"x"), "/etc/evil"),
        (("C:/evil", b"x"), "C:/evil"),
        (("dir\\evil", b"x"), "dir\\evil"),
        (_link("study.json", "/etc/passwd"), "study.json"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "drive", "backslash", "symlink"],
)
def test_dangerous_members_are_refused_and_nothing_is_kept(
    client: FlaskClient, tmp_path: Path, member: tuple[str | zipfile.ZipInfo, bytes], expression: str
) -> None:
    status, body = _post_zip(client, _zip(("package.yaml", b"x"), member))
    assert status == 400, body
    assert body["issue"][0]["expression"] == [expression]  # type: ignore[index]
    assert_documented("/api/v1/studies", "post", 400, body)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "data" / "evil.txt").exists()
    data = tmp_path / "data" / "studies"
    assert [p.name for p in data.iterdir() if p.name != ".incoming"] == []
    assert list((data / ".incoming").iterdir()) == []


def test_oversized_member_is_refused(make_app: AppFactory) -> None:
    client = make_app(max_unpacked_bytes=1000).test_client()
    status, body = _post_zip(client, _zip(("package.yaml", b"x"), ("big.csv", b"0" * 5000)))
    assert status == 413, body
    assert body["issue"][0]["expression"] == ["big.csv"]  # type: ignore[index]


def test_many_small_members_adding_up_are_refused(make_app: AppFactory) -> None:
    client = make_app(max_unpacked_bytes=1000).test_client()
    status, _ = _post_zip(client, _zip(*[(f"part{n}.csv", b"0" * 300) for n in range(5)]))
    assert status == 413


def test_body_over_the_upload_limit_is_413(make_app: AppFactory) -> None:
    client = make_app(max_upload_bytes=10_000).test_client()
    response = client.post(
        "/api/v1/studies", data=b"{" + b" " * 20_000 + b"}", content_type="application/json", headers=AUTH
    )
    assert response.status_code == 413
    assert response.json["resourceType"] == "OperationOutcome"
    assert_documented("/api/v1/studies", "post", 413, response.json)


def test_not_a_zip_is_400(client: FlaskClient) -> None:
    status, body = _post_zip(client, b"PK\x03\x04 this is no archive")
    assert status == 400 and "zip" in body["issue"][0]["diagnostics"]  # type: ignore[index]


def test_a_zip_without_package_yaml_is_400(client: FlaskClient) -> None:
    status, body = _post_zip(client, _zip(("study.json", SEED_STUDY.read_bytes())))
    assert status == 400 and "package.yaml" in body["issue"][0]["diagnostics"]  # type: ignore[index]


@pytest.mark.parametrize("prefix", ["", "NCT04753476/"], ids=["flat", "in-a-folder"])
def test_a_package_zip_is_stored(client: FlaskClient, tmp_path: Path, prefix: str) -> None:
    status, body = _post_zip(client, _package(prefix))
    assert status == 201, body
    assert body["id"] == "NCT04753476" and body["source"] == "package"
    stored = tmp_path / "data" / "studies" / "NCT04753476" / "package"
    assert sorted(p.name for p in stored.iterdir()) == [
        "administrations.csv", "measurements.csv", "package.yaml", "study.json", "subjects.csv"
    ]  # fmt: skip
    bundle = client.get("/api/v1/studies/NCT04753476/bundle", headers=AUTH).json
    assert any(entry["resource"]["resourceType"] == "ResearchStudy" for entry in bundle["entry"])


def test_a_package_naming_a_record_outside_itself_is_refused(client: FlaskClient) -> None:
    descriptor = (SEED_STUDY.parent / "package.yaml").read_text(encoding="utf-8")
    evil = descriptor.replace("record: study.json", "record: ../../../../etc/hostname")
    assert evil != descriptor
    status, body = _post_zip(client, _zip(("package.yaml", evil.encode()), ("study.json", SEED_STUDY.read_bytes())))
    assert status == 400, body


def test_an_archive_that_lies_about_sizes_is_refused_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Declared sizes smaller than the data: zipfile stops at the declared size and the CRC fails, or our count trips.
    archive = io.BytesIO(_zip(("a.csv", b"0" * 5000)))
    real_infolist = zipfile.ZipFile.infolist

    def understated(self: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
        infos = real_infolist(self)
        for info in infos:
            info.file_size = 10
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", understated)
    with pytest.raises((ApiError, zipfile.BadZipFile)):
        extract_zip(archive, tmp_path / "out", max_unpacked_bytes=1000)
    assert not (tmp_path / "out").exists()
