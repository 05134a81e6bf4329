"""Pointing the CLI at the wrong place: each mistake said in words, and no journal folder for a server never reached.

Real sockets, no stubs: a port where nothing listens, TLS spoken to the plain-HTTP test server, and the test
server's root, which is not its FHIR base.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from adapter.cli import main
from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TRIAL = REPO / "fixtures" / "NCT00711542"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADAPTER_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ADAPTER_MAX_RETRIES", "0")
    return tmp_path / "journal"


def wrong_places(fhir_base_url: str) -> list[tuple[str, str]]:
    parts = urlsplit(fhir_base_url)
    return [
        (f"http://127.0.0.1:{free_port()}/fhir", "nothing answers at"),
        (fhir_base_url.replace("http://", "https://", 1), "the server seems to speak plain HTTP there; try http://"),
        (f"{parts.scheme}://{parts.netloc}", "is not a FHIR base URL"),
    ]


def test_each_wrong_place_is_said_in_words_and_leaves_no_journal(
    fhir_base_url: str, journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for url, words in wrong_places(fhir_base_url):
        assert main(["push", str(TRIAL), "--server", url, "--dry-run"]) == 3
        error = capsys.readouterr().err
        assert words in error, error
        assert "HTTPConnectionPool" not in error  # not the library's words
    assert not journal.exists()


def test_a_server_name_without_a_config_file_says_so(journal: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.delenv("ADAPTER_CONFIG", raising=False)
    assert main(["push", str(TRIAL), "--server", "hospital", "--dry-run"]) == 2
    assert "no server named 'hospital' in no config file" in capsys.readouterr().err
    assert not journal.exists()


def test_a_dry_run_that_planned_fine_exits_0(fhir_base_url: str, journal: Path) -> None:
    assert main(["push", str(TRIAL), "--server", fhir_base_url, "--dry-run"]) == 0
