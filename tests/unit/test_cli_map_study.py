"""``trialfhir map study`` as a user runs it: files, standard input, errors on one line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from adapter.cli import main
from tests.conftest import REPO, SHARED_SAMPLES

SEED = REPO / "fixtures" / "NCT04753476"


def test_writes_the_bundle_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    assert main(["map", "study", str(SEED / "study.json"), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (SEED / "study.bundle.json").read_text(encoding="utf-8")


def test_reads_xml_from_standard_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = (SHARED_SAMPLES / "xml" / "NCT04349592.xml").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["map", "study", "-"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["type"] == "transaction" and bundle["entry"][-1]["resource"]["status"] == "completed"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"protocolSection": ', "bad.json:1: malformed JSON"),
        (
            '{"protocolSection": {"identificationModule": {"nctId": 4753476}}}',
            "bad.json: protocolSection.identificationModule.nctId: 4753476 is not of type 'string'",
        ),
        ("<clinical_study><id_info></clinical_study>", "bad.json:1: malformed XML"),
        ("hello", "bad.json: is neither ClinicalTrials.gov JSON nor XML"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    assert main(["map", "study", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"trialfhir: error: {tmp_path}/{message}")


def test_unknown_value_warns_and_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    study = json.loads((SEED / "study.json").read_text())
    study["protocolSection"]["statusModule"]["lastKnownStatus"] = "RECRUITING_SLOWLY"
    path = tmp_path / "new.json"
    path.write_text(json.dumps(study))
    assert main(["map", "study", str(path)]) == 0
    # pytest owns the root logger here, so the warning is read from the log records, not stderr.
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert (
        f"{path}: protocolSection.statusModule.lastKnownStatus: unknown Status value 'RECRUITING_SLOWLY'"
        in warning.getMessage()
    )
    assert '"text":"RECRUITING_SLOWLY"' in capsys.readouterr().out


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "study", "/nonexistent/study.json"]) == 2
    assert "/nonexistent/study.json: cannot read" in capsys.readouterr().err
