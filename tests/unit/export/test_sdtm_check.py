"""``trialfhir check-sdtm``: the seed trial's SDTM folder passes; broken datasets fail with the rule they break."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.cli import main
from adapter.export.sdtm.build import build_sdtm
from adapter.export.sdtm.check import RULES, check, check_folder
from adapter.export.sdtm.terms import load_ct
from adapter.export.sdtm.xpt import write_sdtm
from tests.unit.export.trial import write_folder


def test_the_seed_trials_sdtm_folder_passes(seed_sdtm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-sdtm", str(seed_sdtm)]) == 0
    assert "0 finding(s)" in capsys.readouterr().out


def test_broken_datasets_fail_with_their_rule_and_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = build_sdtm(write_folder(tmp_path / "in"))
    lb = result.datasets["LB"].rows
    lb.append(dict(lb[0]))
    lb[1]["LBDTC"] = "11/06/2020"
    lb[2]["LBDY"] = 0.0
    lb[3]["LBSTRESU"] = "furlongs"
    result.datasets["DM"].rows[0]["SEX"] = ""
    write_sdtm(result, tmp_path / "sdtm")
    problems = "\n".join(check_folder(tmp_path / "sdtm"))
    for expected in ("[KEY] LB rows", "[SEQ] LB row", "[ISO] LB row 2: LBDTC '11/06/2020'", "[DY] LB row 3: LBDY is 0",
                     "[CT] LB row 4: LBSTRESU 'furlongs' is not in codelist C71620", "[REQ] DM row 1: required SEX",
                     "[DEFINE]"):
        assert expected in problems
    assert main(["check-sdtm", str(tmp_path / "sdtm")]) == 1
    assert RULES["ISO"] in capsys.readouterr().out, "the rule's source is printed"


def test_xpt_limits_are_checked(tmp_path: Path) -> None:
    result = build_sdtm(write_folder(tmp_path / "in"))
    write_sdtm(result, tmp_path / "sdtm")
    problems = check_folder(tmp_path / "sdtm")
    assert not [p for p in problems if p.startswith("[XPT]")]
    assert check(result.datasets, load_ct()) == [], "in memory too, CT included"


def test_a_trial_with_every_optional_dataset_passes_and_its_define_is_valid(tmp_path: Path) -> None:
    """TI, SUPPDM and EC are absent from the seed trial; this small trial has all three."""
    from adapter.export.exporter import export
    from tests.unit.export.trial import resources

    items = resources()
    patient = next(r for r in items if r["resourceType"] == "Patient")
    patient["extension"] = [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
        {"url": "ombCategory", "valueCoding": {"code": "2028-9"}},
        {"url": "ombCategory", "valueCoding": {"code": "2106-3"}}]}]
    dose = next(r for r in items if r["resourceType"] == "MedicationAdministration")
    missed = {**dose, "id": "missed", "status": "not-done", "statusReason": [{"text": "Patient refused"}],
              "effectivePeriod": {"start": "2020-06-13T09:00:00+07:00"}}
    export(write_folder(tmp_path / "in", [*items, missed]), tmp_path / "sdtm", "sdtm")
    assert {"ti", "suppdm", "ec"} <= {p.stem for p in (tmp_path / "sdtm").glob("*.xpt")}
    assert check_folder(tmp_path / "sdtm") == []
