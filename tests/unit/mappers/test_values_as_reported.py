"""Values as reported: from a package row to the bytes on the wire, every digit, unit and precision the site gave.

The standard value is ``valueQuantity`` (the test's unit); what the site wrote, when it differs,
is the reported-value extension (on the Observation, on a reference range's low and high); a
time given to the minute carries the reported-precision extension on its element.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapter.fhir import elements
from adapter.fhir.constants import REPORTED_PRECISION_EXTENSION, REPORTED_VALUE_EXTENSION
from adapter.fhir.json import dumps
from adapter.fhir.validate import r4b_problems
from adapter.package import map_package
from tests.unit.sources.trialpackage import administrations, measurements, write_package

UCUM = "http://unitsofmeasure.org"
MINUTE = {"extension": [{"url": REPORTED_PRECISION_EXTENSION, "valueCode": "minute"}]}


def mapped(folder: Path, kind: str) -> list[dict[str, Any]]:
    mapping = map_package(folder)
    resources = [r for r in mapping if r["resourceType"] == kind]
    assert mapping.report.rejects == [] and mapping.report.reconciles()
    assert all(r4b_problems(r) == [] for r in resources)
    return resources


def reported_extensions(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", []) if e["url"] == REPORTED_VALUE_EXTENSION]


def test_a_converted_value_keeps_the_value_and_unit_as_collected(tmp_path: Path) -> None:
    row = "S1,SCR,CRP,15.610,mg/dL,2020-07-01T08:30,0.000,0.500,H"
    folder = write_package(tmp_path, measurements=measurements(row))
    [obs] = mapped(folder, "Observation")
    wire = dumps(obs)
    # The standard value in the trial's unit, computed in Decimal to the five significant digits reported.
    assert '"valueQuantity":{"value":156.10,"unit":"mg/L","system":"http://unitsofmeasure.org","code":"mg/L"}' in wire
    [written] = reported_extensions(obs)
    assert dumps(written) == ('{"url":"https://trialfhir.dev/fhir/StructureDefinition/reported-value","valueQuantity":'
                              '{"value":15.610,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}')
    # The range too: 0.000 mg/dL is 0.00 mg/L (a zero keeps its resolution), 0.500 mg/dL is 5.00 mg/L.
    [reference] = obs["referenceRange"]
    assert dumps(reference) == (
        '{"low":{"extension":[{"url":"https://trialfhir.dev/fhir/StructureDefinition/reported-value","valueQuantity":'
        '{"value":0.000,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}],'
        '"value":0.00,"unit":"mg/L","system":"http://unitsofmeasure.org","code":"mg/L"},'
        '"high":{"extension":[{"url":"https://trialfhir.dev/fhir/StructureDefinition/reported-value","valueQuantity":'
        '{"value":0.500,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}],'
        '"value":5.00,"unit":"mg/L","system":"http://unitsofmeasure.org","code":"mg/L"}}')
    assert elements.reported_quantity(obs, "valueQuantity")["value"] == written["valueQuantity"]["value"]
    assert str(elements.reported_quantity(reference["high"])["value"]) == "0.500"


def test_a_value_in_the_trial_unit_keeps_its_digits_and_has_no_extension(tmp_path: Path) -> None:
    rows = measurements("S1,SCR,CRP,2.40,mg/L,2020-07-01T08:30:15,0.0,5.0,", "S1,D7,CRP,38.0,mg/L,2020-07-08,,,")
    first, second = mapped(write_package(tmp_path, measurements=rows), "Observation")
    assert '"valueQuantity":{"value":2.40,' in dumps(first) and '"valueQuantity":{"value":38.0,' in dumps(second)
    assert '"referenceRange":[{"low":{"value":0.0,' in dumps(first) and '"high":{"value":5.0,' in dumps(first)
    assert reported_extensions(first) == reported_extensions(second) == []
    assert "extension" not in first["referenceRange"][0]["low"]


def test_a_unit_spelled_otherwise_is_kept_as_spelled(tmp_path: Path) -> None:
    [obs] = mapped(write_package(tmp_path, measurements=measurements("S1,SCR,PAO2,78.0,mmHg,2020-07-01T08:30,,,")),
                   "Observation")
    assert obs["valueQuantity"]["code"] == "mm[Hg]" and str(obs["valueQuantity"]["value"]) == "78.0"
    [written] = reported_extensions(obs)
    assert dumps(written["valueQuantity"]) == '{"value":78.0,"unit":"mmHg","system":"http://unitsofmeasure.org",' \
                                              '"code":"mm[Hg]"}'


def test_a_converted_censored_value_keeps_its_comparator_both_ways(tmp_path: Path) -> None:
    [obs] = mapped(write_package(tmp_path, measurements=measurements("S1,SCR,CRP,<0.30,mg/dL,2020-07-01T08:30,,,")),
                   "Observation")
    assert dumps(obs["valueQuantity"]).startswith('{"value":3.0,"comparator":"<","unit":"mg/L"')
    [written] = reported_extensions(obs)
    assert dumps(written["valueQuantity"]).startswith('{"value":0.30,"comparator":"<","unit":"mg/dL"')


def test_a_time_given_to_the_minute_says_so_and_seconds_or_fractions_are_kept(tmp_path: Path) -> None:
    rows = measurements("S1,SCR,CRP,2.4,mg/L,2020-07-01T08:30,,,", "S1,D7,CRP,2.5,mg/L,2020-07-08 09:15:30.5,,,",
                        "S1,D7,IL6,2.5,pg/mL,2020-07-08,,,")
    minute, fraction, day = mapped(write_package(tmp_path, measurements=rows), "Observation")
    assert minute["effectiveDateTime"] == "2020-07-01T08:30:00+07:00" and minute["_effectiveDateTime"] == MINUTE
    assert elements.reported_datetime(minute, "effectiveDateTime") == "2020-07-01T08:30+07:00"
    assert fraction["effectiveDateTime"] == "2020-07-08T09:15:30.5+07:00" and "_effectiveDateTime" not in fraction
    assert day["effectiveDateTime"] == "2020-07-08" and "_effectiveDateTime" not in day
    wire = dumps(minute)
    assert ('"effectiveDateTime":"2020-07-01T08:30:00+07:00","_effectiveDateTime":{"extension":[{"url":'
            '"https://trialfhir.dev/fhir/StructureDefinition/reported-precision","valueCode":"minute"}]}') in wire


def test_a_dose_keeps_its_digits_its_unit_as_spelled_and_the_precision_of_its_times(tmp_path: Path) -> None:
    rows = administrations("S1,SECRETOME,2.50,ml,IM,2020-07-01T10:00,,completed,",
                           "S1,REMDESIVIR,100,mg,IV,2020-07-02T10:00,2020-07-02T10:45:00,completed,")
    injection, infusion = mapped(write_package(tmp_path, administrations=rows), "MedicationAdministration")
    assert dumps(injection["dosage"]["dose"]) == '{"value":2.50,"unit":"ml","system":"http://unitsofmeasure.org",' \
                                                '"code":"mL"}'
    assert injection["_effectiveDateTime"] == MINUTE
    assert infusion["effectivePeriod"] == {"start": "2020-07-02T10:00:00+07:00", "_start": MINUTE,
                                           "end": "2020-07-02T10:45:00+07:00"}
    assert elements.reported_datetime(infusion["effectivePeriod"], "start") == "2020-07-02T10:00+07:00"
    assert elements.reported_datetime(infusion["effectivePeriod"], "end") == "2020-07-02T10:45:00+07:00"
