"""The trial package reader: every row mapped or rejected with file, line, column and reason."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapter.errors import InputError
from adapter.package import Report, map_package
from adapter.records import Code
from adapter.sources.package import read_measurements, read_subjects
from adapter.sources.package_csv import Reject
from adapter.sources.package_descriptor import load_package
from tests.unit.sources.trialpackage import (
    DESCRIPTOR,
    MEASUREMENTS_HEADER,
    SUBJECTS_HEADER,
    administrations,
    csv,
    measurements,
    write_package,
)

GOOD_IL6 = "S1,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,0,7,H"


def run(folder: Path) -> tuple[list[dict[str, Any]], Report]:
    mapping = map_package(folder)
    resources = list(mapping)
    assert mapping.report.reconciles()
    return resources, mapping.report


def only_reject(report: Report) -> Reject:
    assert len(report.rejects) == 1, report.rejects
    return report.rejects[0]


def observations(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == "Observation"]


def test_a_clean_row_becomes_an_observation_in_the_site_time_zone(tmp_path: Path) -> None:
    resources, report = run(write_package(tmp_path, measurements=measurements(GOOD_IL6)))
    assert report.rejects == []
    [obs] = observations(resources)
    assert obs["effectiveDateTime"] == "2020-07-01T08:30:00+07:00"
    assert obs["valueQuantity"] == {"value": 12.5, "unit": "pg/mL", "system": "http://unitsofmeasure.org",
                                    "code": "pg/mL"}
    assert report.files["measurements.csv"].read == 1


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("S1,SCR,IL6,12.5,pg/mL,2020-07-01T08:30", "ref_low", "has 6 fields but the header has 9"),
        ("S1,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,0,7,H,extra", None, "has 10 fields"),
        ("S1,SCR,IL6,,pg/mL,2020-07-01T08:30,,,", "value", "is empty; a value is required"),
        ("S1,SCR,IL6,twelve,pg/mL,2020-07-01T08:30,,,", "value", "'twelve' is not a number"),
        ("S1,SCR,IL6,1e3,pg/mL,2020-07-01T08:30,,,", "value", "is not a number"),
        ("S1,SCR,IL6,NaN,pg/mL,2020-07-01T08:30,,,", "value", "is not a number"),
        ("S1,SCR,IL6," + "9" * 400 + ",pg/mL,2020-07-01T08:30,,,", "value", "has more than 32 digits"),
        ("S2,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,,,", "collected_at", "site N has no time_zone"),
        ("S1,SCR,IL6,12.5,pg/mL,2020-02-30T08:30,,,", "collected_at", "is not a valid date and time"),
        ("S1,SCR,IL6,12.5,pg/mL,01/07/2020 08:30,,,", "collected_at", "does not have the expected form"),
        ("S1,SCR,XYZ,12.5,pg/mL,2020-07-01T08:30,,,", "test_code", "unknown test code 'XYZ'"),
        ("S1,SCR,IL6,12.5,pg/dl,2020-07-01T08:30,,,", "unit", "unknown unit 'pg/dl'"),
        ("S1,SCR,IL6,12.5,mg/L,2020-07-01T08:30,,,", "unit", "'mg/L' has no conversion to pg/mL for test IL6"),
        ("S1,SCR,IL6,12.5,,2020-07-01T08:30,,,", "unit", "is empty; test IL6 needs its unit (pg/mL)"),
        ("S9,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,,,", "subject_id", "no subject 'S9' in subjects.csv"),
        ("S1,D99,IL6,12.5,pg/mL,2020-07-01T08:30,,,", "visit", "unknown visit 'D99'"),
        ("S1,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,9,7,", "ref_low", "is above high"),
        ("S1,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,,,Q", "flag", "unknown flag 'Q'"),
        ("S1,SCR,SOFA,3.5,,2020-07-01T08:30,,,", "value", "takes an integer"),
        ("S1,SCR,SOFA,3,points,2020-07-01T08:30,,,", "unit", "takes a integer value, not a quantity"),
        ("S1,SCR,SARSCOV2,POSITIVE,,2020-07-01,,,", "value", "expected one of DETECTED, NOT_DETECTED"),
        ("S 1,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,,,", "subject_id", "does not have the expected form"),
    ],
)
def test_bad_measurement_rows_are_rejected_with_column_and_reason(
    tmp_path: Path, row: str, column: str | None, reason: str
) -> None:
    resources, report = run(write_package(tmp_path, measurements=measurements(row, GOOD_IL6.replace("SCR", "D7"))))
    reject = only_reject(report)
    assert (reject.file, reject.line, reject.column) == ("measurements.csv", 2, column)
    assert reason in reject.reason
    assert len(observations(resources)) == 1  # the good row after it is still mapped
    assert report.files["measurements.csv"].read == 2


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    content = "\ufeff" + measurements(GOOD_IL6)
    resources, report = run(write_package(tmp_path, measurements=content))
    assert report.rejects == [] and len(observations(resources)) == 1


def test_a_latin1_byte_rejects_only_its_row_and_names_the_column(tmp_path: Path) -> None:
    bad = "S1,SCR,CXR,Opacit\xe9 basale,,2020-07-01T08:30,,,".encode("latin-1")
    content = (MEASUREMENTS_HEADER + "\n").encode() + bad + b"\n" + (GOOD_IL6 + "\n").encode()
    resources, report = run(write_package(tmp_path, measurements=content))
    reject = only_reject(report)
    assert (reject.line, reject.column) == (2, "value")
    assert "not valid UTF-8 (byte 0xE9)" in reject.reason
    assert len(observations(resources)) == 1


def test_utf16_files_are_refused_as_a_whole(tmp_path: Path) -> None:
    folder = write_package(tmp_path, measurements=measurements(GOOD_IL6).encode("utf-16"))
    with pytest.raises(InputError, match="is UTF-16 text; save it as UTF-8"):
        run(folder)


def test_non_ascii_text_in_utf8_is_kept(tmp_path: Path) -> None:
    row = "S1,SCR,CXR,Opacité basale droite,,2020-07-01T08:30,,,"
    resources, _ = run(write_package(tmp_path, measurements=measurements(row)))
    assert observations(resources)[0]["valueString"] == "Opacité basale droite"


def test_a_quoted_value_may_hold_commas_and_blank_lines_are_not_rows(tmp_path: Path) -> None:
    content = measurements('S1,SCR,CXR,"Patchy, bilateral",,2020-07-01T08:30,,,', "", GOOD_IL6)
    resources, report = run(write_package(tmp_path, measurements=content))
    assert report.rejects == []
    assert report.files["measurements.csv"].read == 2
    assert observations(resources)[0]["valueString"] == "Patchy, bilateral"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("subject_id,visit,test_code,value,unit,collected_at,colour", "unknown column(s) 'colour'"),
        ("subject_id,visit,value,unit,collected_at", "required column(s) missing: test_code"),
        ("subject_id,visit,visit,test_code,value,collected_at", "column(s) named twice: visit"),
    ],
)
def test_header_problems_stop_before_any_resource(tmp_path: Path, header: str, message: str) -> None:
    mapping = map_package(write_package(tmp_path, measurements=csv(header)))
    with pytest.raises(InputError, match=re.escape(message)):
        next(iter(mapping))  # checked before the first Patient is yielded


def test_an_empty_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is empty; its first line must name the columns"):
        run(write_package(tmp_path, measurements=""))


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    folder = write_package(tmp_path)
    (folder / "administrations.csv").unlink()
    with pytest.raises(InputError, match=re.escape("missing; a trial package needs administrations.csv")):
        run(folder)


def test_local_times_in_a_dst_gap_or_overlap_are_rejected(tmp_path: Path) -> None:
    descriptor = DESCRIPTOR.replace("time_zone: Asia/Jakarta", "time_zone: Europe/Berlin")
    content = measurements(
        "S1,SCR,IL6,1,pg/mL,2021-03-28T02:30,,,",  # clocks jump 02:00 -> 03:00
        "S1,SCR,IL6,1,pg/mL,2021-10-31T02:30,,,",  # 02:00-03:00 happens twice
        "S1,SCR,IL6,1,pg/mL,2021-10-31T02:30+01:00,,,",  # with its offset it is fine
    )
    resources, report = run(write_package(tmp_path, measurements=content, descriptor=descriptor))
    assert ["clocks skipped it" in r.reason for r in report.rejects] == [True, False]
    assert "happens twice" in report.rejects[1].reason
    assert observations(resources)[0]["effectiveDateTime"] == "2021-10-31T02:30:00+01:00"


def test_offsets_and_dates_are_kept_as_given(tmp_path: Path) -> None:
    content = measurements(
        "S2,SCR,IL6,1,pg/mL,2020-07-01T08:30:15+08:00,,,",
        "S2,SCR,SARSCOV2,DETECTED,,2020-07-01,,,A",
        "S2,D7,IL6,1,pg/mL,2020-07-08 09:00Z,,,",
    )
    resources, report = run(write_package(tmp_path, measurements=content))
    assert report.rejects == []
    assert [o["effectiveDateTime"] for o in observations(resources)] == [
        "2020-07-01T08:30:15+08:00",
        "2020-07-01",
        "2020-07-08T09:00:00+00:00",
    ]


def test_units_are_converted_keeping_significant_digits(tmp_path: Path) -> None:
    content = measurements(
        "S1,SCR,CRP,1.25,mg/dL,2020-07-01T08:30,0.0,0.5,H",
        "S1,SCR,DDIMER,0.5,ug/mL FEU,2020-07-01T08:30,,,",
        "S1,SCR,PAO2,10.5,kPa,2020-07-01T08:30,,,",
        "S1,SCR,LYMPH,850,/uL,2020-07-01T08:30,,,",
    )
    resources, report = run(write_package(tmp_path, measurements=content))
    assert report.rejects == []
    values = [(str(o["valueQuantity"]["value"]), o["valueQuantity"]["code"]) for o in observations(resources)]
    assert values == [("12.5", "mg/L"), ("500", "ng/mL{FEU}"), ("78.8", "mm[Hg]"), ("0.850", "10*3/uL")]
    assert str(observations(resources)[0]["referenceRange"][0]["high"]["value"]) == "5"  # 0.5 mg/dL: one digit


def test_mass_to_moles_uses_each_analytes_molar_mass(tmp_path: Path) -> None:
    content = measurements(
        "S1,SCR,CHOL,200,mg/dL,2020-07-01T08:30,,,",  # 2 g/L / 386.65 g/mol = 5.17 mmol/L
        "S1,SCR,GLUC,200,mg/dL,2020-07-01T08:30,,,",  # 2 g/L / 180.156 g/mol = 11.1 mmol/L
    )
    resources, report = run(write_package(tmp_path, measurements=content))
    assert report.rejects == []
    values = [(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"], o["valueQuantity"]["code"])
              for o in observations(resources)]
    assert values == [("14647-2", Decimal("5.17"), "mmol/L"), ("14749-6", Decimal("11.1"), "mmol/L")]


def test_a_unit_pair_without_a_rule_for_the_test_is_refused_naming_where_to_add_it(tmp_path: Path) -> None:
    # mmol/mol is a unit the table knows, but HbA1c in % and in mmol/mol are different scales: no rule.
    _, report = run(write_package(tmp_path, measurements=measurements("S1,SCR,HBA1C,48,mmol/mol,2020-07-01,,,")))
    reject = only_reject(report)
    assert (reject.file, reject.line, reject.column) == ("measurements.csv", 2, "unit")
    assert "'mmol/mol' has no conversion to % for test HBA1C" in reject.reason
    assert "package.yaml: mappings: measurements: ./measurements.yaml" in reject.reason
    assert "site-packages" not in reject.reason and "48" not in reject.reason


def test_a_packages_own_file_adds_conversions_and_is_named_in_hints(tmp_path: Path) -> None:
    descriptor = DESCRIPTOR + "mappings:\n  measurements: ./lab-tests.yaml\n"
    folder = write_package(tmp_path, descriptor=descriptor, measurements=measurements(
        "S1,SCR,K,4.1,mmol/L,2020-07-01,,,", "S1,SCR,NOPE,1,mmol/L,2020-07-01,,,"))
    (folder / "lab-tests.yaml").write_text("""name: measurements
version: "1"
tests:
  K:
    display: Potassium
    category: laboratory
    codes: [{system: "urn:oid:2.16.840.1.113883.3.1", code: K, display: Potassium}]
    value_type: quantity
    unit: mmol/L
    source: the site's own code system
""", encoding="utf-8")
    resources, report = run(folder)
    [obs] = observations(resources)
    assert obs["code"]["coding"][0]["system"] == "urn:oid:2.16.840.1.113883.3.1"
    reject = only_reject(report)
    assert reject.column == "test_code" and str(folder / "lab-tests.yaml") in reject.reason


def test_duplicate_and_non_contiguous_rows_are_rejected(tmp_path: Path) -> None:
    content = measurements(
        GOOD_IL6,
        GOOD_IL6.replace("12.5", "13.1"),  # same subject, visit, test and time, another value
        GOOD_IL6,  # the same row again
        "S2,SCR,IL6,1,pg/mL,2020-07-01T08:30+07:00,,,",
        "S1,D7,IL6,1,pg/mL,2020-07-08T08:30,,,",  # S1 again after S2
    )
    _, report = run(write_package(tmp_path, measurements=content))
    assert [(r.line, r.column) for r in report.rejects] == [(3, None), (4, None), (6, "subject_id")]
    conflict, repeated = report.rejects[0].reason, report.rejects[1].reason
    assert conflict == "same visit, test and time as line 2, different values; keep the right one"
    assert "13.1" not in conflict and "12.5" not in conflict  # values are patient data
    assert repeated == "duplicate of line 2 (same visit, test and time, same values)"
    assert "must be contiguous" in report.rejects[2].reason


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("S1,J,M,1970,Secretome-MSCs,,2020-07-01,completed,2020-07-01,2020-07-29", "subject_id", "duplicate subject"),
        ("S3,X,M,1970,Control,,2020-07-01,enrolled,,", "site_id", "unknown site 'X'"),
        ("S3,J,M,1970,Placebo,,2020-07-01,enrolled,,", "arm_assigned", "'Placebo' is not an arm of NCT04753476"),
        ("S3,J,M,1970,,,2020-07-01,enrolled,,", "arm_assigned", "has an assigned arm"),
        ("S3,J,X,1970,Control,,2020-07-01,enrolled,,", "sex", "'X' is not one of"),
        ("S3,J,M,1870,Control,,2020-07-01,enrolled,,", "birth_year", "not between 1900"),
        ("S3,J,M,1970,Control,,2020-07-01,withdrawn,2020-07-01,", "end_date", "has an end date"),
        ("S3,J,M,1970,Control,,2020-07-01,enrolled,2020-06-01,", "start_date", "before the consent date"),
        ("S3,J,M,1970,Control,,2020-13-01,enrolled,,", "consent_date", "is not a calendar date"),
        ("S3,J,M,1970,Control,,2020-07-01,enrolled", "start_date", "missing: start_date, end_date"),
    ],
)
def test_bad_subject_rows_are_rejected(tmp_path: Path, row: str, column: str, reason: str) -> None:
    subjects = csv(SUBJECTS_HEADER, "S1,J,M,1970,Secretome-MSCs,,2020-07-01,completed,2020-07-01,2020-07-29", row)
    resources, report = run(write_package(tmp_path, subjects=subjects))
    reject = only_reject(report)
    assert (reject.file, reject.line, reject.column) == ("subjects.csv", 3, column)
    assert reason in reject.reason
    subject_level = [r["resourceType"] for r in resources if r["resourceType"] != "Organization"]  # not the sites
    assert subject_level == ["Patient", "Consent", "ResearchSubject"]


def test_a_measurement_of_a_rejected_subject_is_rejected_too(tmp_path: Path) -> None:
    subjects = csv(SUBJECTS_HEADER, "S1,J,M,1970,Nope,,2020-07-01,enrolled,,")
    _, report = run(write_package(tmp_path, subjects=subjects, measurements=measurements(GOOD_IL6)))
    assert [(r.file, r.column) for r in report.rejects] == [("subjects.csv", "arm_assigned"),
                                                            ("measurements.csv", "subject_id")]


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("S1,ASPIRIN,100,mg,PO,2020-07-01T08:00,,completed,", "product_code", "unknown product 'ASPIRIN'"),
        ("S1,DEXA,6,mg,NASAL,2020-07-01T08:00,,completed,", "route", "unknown route 'NASAL'"),
        ("S1,DEXA,6,,IV,2020-07-01T08:00,,completed,", "dose_unit", "a dose needs its unit"),
        ("S1,DEXA,6,grains,IV,2020-07-01T08:00,,completed,", "dose_unit", "unknown unit 'grains'"),
        ("S1,DEXA,6,mg,IV,2020-07-01T08:00,,not-done,", "not_given_reason", "say why"),
        ("S1,DEXA,6,mg,IV,2020-07-01T08:00,,completed,Refused", "not_given_reason", "not not-done or stopped"),
        ("S1,DEXA,6,mg,IV,2020-07-01T08:00,2020-07-01T07:00,completed,", "end", "before the start"),
        ("S1,DEXA,6,mg,IV,2020-07-01T08:00,,given,", "status", "'given' is not one of"),
        ("S1,DEXA,-6,mg,IV,2020-07-01T08:00,,completed,", "dose", "does not have the expected form"),
    ],
)
def test_bad_administration_rows_are_rejected(tmp_path: Path, row: str, column: str, reason: str) -> None:
    good = "S1,DEXA,6,mg,IV,2020-07-02T08:00,,completed,"
    _, report = run(write_package(tmp_path, administrations=administrations(row, good)))
    reject = only_reject(report)
    assert (reject.file, reject.line, reject.column) == ("administrations.csv", 2, column)
    assert reason in reject.reason
    assert report.files["administrations.csv"].mapped == 1


def test_strict_mode_stops_at_the_first_bad_row_with_its_place(tmp_path: Path) -> None:
    folder = write_package(tmp_path, measurements=measurements(GOOD_IL6, "S1,D7,IL6,x,pg/mL,2020-07-08T08:30,,,"))
    mapping = map_package(folder, strict=True)
    with pytest.raises(InputError) as caught:
        list(mapping)
    assert str(caught.value) == (
        "measurements.csv:3: value: 'x' is not a number (use digits and a decimal point, e.g. 12.5)"
    )


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        (DESCRIPTOR.replace("trialfhir-package/1", "trialfhir-package/9"), "'trialfhir-package/1' was expected"),
        (DESCRIPTOR.replace("Asia/Jakarta", "Asia/Atlantis"), "unknown time zone 'Asia/Atlantis'"),
        (DESCRIPTOR + "colour: blue\n", "Additional properties are not allowed"),
        (DESCRIPTOR.replace("  arms:", "  record: study.json\n  arms:"), "or arms (its arm labels)"),
        (DESCRIPTOR.replace("{code: D7,", "{code: SCR,"), "visit 'SCR' is listed twice"),
        (DESCRIPTOR + "sites: []\n", "duplicate key 'sites'"),
        (DESCRIPTOR.replace('  arms: ["Secretome-MSCs", "Control"]\n', ""), "exactly one of them"),
        (DESCRIPTOR.replace('  arms: ["Secretome-MSCs", "Control"]', "  record: ../../etc/passwd"), "does not match"),
        (DESCRIPTOR + "mappings:\n  units: ./../units.yaml\n", "does not match"),
    ],
)
def test_descriptor_problems_are_input_errors(tmp_path: Path, descriptor: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        load_package(write_package(tmp_path, descriptor=descriptor))


def test_the_record_must_be_the_packages_study(tmp_path: Path) -> None:
    descriptor = DESCRIPTOR.replace('  arms: ["Secretome-MSCs", "Control"]', "  record: study.json")
    folder = write_package(tmp_path, descriptor=descriptor.replace("NCT04753476", "NCT00000001"))
    (folder / "study.json").write_bytes(
        (Path(__file__).resolve().parents[3] / "fixtures" / "NCT04753476" / "study.json").read_bytes()
    )
    with pytest.raises(InputError, match="is the record of NCT04753476"):
        load_package(folder)


def test_records_carry_resolved_codes_and_values(tmp_path: Path) -> None:
    folder = write_package(tmp_path, measurements=measurements("S1,SCR,SARSCOV2,DETECTED,,2020-07-01,,,A"))
    package = load_package(folder)
    index: dict[str, str] = {}
    assert [type(item).__name__ for item in read_subjects(package, index)] == ["tuple", "tuple"]
    [(line, measurement)] = list(read_measurements(package, index))
    assert line == 2
    assert measurement.value == Code("http://snomed.info/sct", "260373001", "Detected (qualifier value)")
    assert measurement.interpretation is not None and measurement.interpretation.code == "A"
    assert isinstance(measurement.value, Code) and not isinstance(measurement.value, Decimal)


def test_windows_line_endings_are_read(tmp_path: Path) -> None:
    content = measurements(GOOD_IL6, "S1,D7,IL6,3,pg/mL,2020-07-08T08:30,,,").replace("\n", "\r\n")
    resources, report = run(write_package(tmp_path, measurements=content))
    assert report.rejects == [] and len(observations(resources)) == 2


def test_a_cell_beyond_the_csv_field_limit_rejects_its_row_only(tmp_path: Path) -> None:
    huge = "x" * 200_000
    content = measurements(f'S1,SCR,CXR,"{huge}",,2020-07-01T08:30,,,', GOOD_IL6)
    resources, report = run(write_package(tmp_path, measurements=content))
    reject = only_reject(report)
    assert reject.line == 2 and "cannot be read as CSV: field larger than field limit" in reject.reason
    assert len(observations(resources)) == 1


def test_an_iv_dose_over_a_period_is_an_infusion_and_a_stopped_dose_keeps_its_reason(tmp_path: Path) -> None:
    rows = administrations("S1,REMDESIVIR,200,mg,IV,2020-07-01T14:00,2020-07-01T14:45,stopped,Infusion reaction",
                           "S1,DEXA,6,mg,IV,2020-07-02T08:00,,completed,")  # fmt: skip
    resources, report = run(write_package(tmp_path, administrations=rows))
    assert report.rejected == 0
    infusion, injection = [r for r in resources if r["resourceType"] == "MedicationAdministration"]
    # v3 IV is 'Infusion, intravenous'
    assert [c["code"] for c in infusion["dosage"]["route"]["coding"]] == ["IV", "47625008"]
    assert [c["code"] for c in injection["dosage"]["route"]["coding"]] == ["IVINJ", "47625008"]
    assert (infusion["status"], infusion["statusReason"]) == ("stopped", [{"text": "Infusion reaction"}])
    assert "statusReason" not in injection
