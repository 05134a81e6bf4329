"""Group for a study's enrollment: who is eligible and how many take part.

``ResearchStudy.enrollment`` points here. The Group is definitional
(``actual = false``: it describes intended participants, it lists no members).

- ``quantity``: enrollmentInfo.count; whether it is ACTUAL or ESTIMATED goes to the
  extension ctgov-enrollment-type.
- ``characteristic``: sex, age (minimumAge/maximumAge as one Range in UCUM units; an
  absent bound is an open end) and healthy volunteers, coded in the project code
  system ctgov-eligibility-characteristic because no standard code for these was
  confirmed. An age the reader could not parse is kept as text instead of a Range.
- The criteria text (markdown) has no R4 Group element, so it goes to the extension
  eligibility-criteria; the same for the observational study population, sampling
  method and gender-based eligibility.

Natural key: the NCT id.
"""

from __future__ import annotations

import re

from adapter.fhir.constants import IDENTIFIER_BASE
from adapter.fhir.datatypes import JSON, codeable_concept, compact, quantity
from adapter.fhir.ids import resource_id
from adapter.records import Eligibility, Study
from adapter.sources.ctgov_tables import CodeTable, CtgovTables, project_extension

_AGE = re.compile(r"^(?P<value>\d+) (?P<unit>[A-Za-z]+)$")


def group_id(study: Study) -> str:
    """The deterministic id of the study's enrollment Group."""
    return resource_id("Group", study.nct_id)


def has_enrollment(study: Study) -> bool:
    """Whether the study says anything the enrollment Group would carry."""
    return study.eligibility is not None or study.enrollment_count is not None


def enrollment_group(study: Study, tables: CtgovTables) -> JSON:
    """The enrollment Group of ``study`` (eligibility criteria and enrollment count)."""
    eligibility = study.eligibility or Eligibility()
    enrollment_type = (
        project_extension(
            "ctgov-enrollment-type", valueCodeableConcept=tables["ctgov-date-type"].concept(study.enrollment_type)
        )
        if study.enrollment_type
        else None
    )
    extensions = [
        project_extension("eligibility-criteria", valueMarkdown=eligibility.criteria) if eligibility.criteria else None,
        project_extension("study-population", valueMarkdown=eligibility.study_population)
        if eligibility.study_population
        else None,
        project_extension(
            "ctgov-sampling-method",
            valueCodeableConcept=tables["ctgov-sampling-method"].concept(eligibility.sampling_method),
        )
        if eligibility.sampling_method
        else None,
        project_extension("eligibility-gender-based", valueBoolean=eligibility.gender_based)
        if eligibility.gender_based is not None
        else None,
        project_extension("eligibility-gender-description", valueString=eligibility.gender_description)
        if eligibility.gender_description
        else None,
        enrollment_type,
    ]
    return compact(
        {
            "resourceType": "Group",
            "id": group_id(study),
            "extension": [e for e in extensions if e is not None],
            "identifier": [{"system": IDENTIFIER_BASE + "ctgov-enrollment-group", "value": study.nct_id}],
            "type": "person",
            "actual": False,
            "name": f"Participants of {study.nct_id}",
            "quantity": study.enrollment_count,
            "characteristic": _characteristics(eligibility, tables),
        }
    )


def _characteristics(eligibility: Eligibility, tables: CtgovTables) -> list[JSON]:
    codes = tables["ctgov-eligibility-characteristic"]
    result = []
    if eligibility.sex:
        result.append(_characteristic(codes, "sex", valueCodeableConcept=sex_concept(eligibility.sex, tables)))
    if eligibility.minimum_age or eligibility.maximum_age:
        result.append(
            _characteristic(codes, "age", **age_value(eligibility.minimum_age, eligibility.maximum_age, tables))
        )
    if eligibility.healthy_volunteers is not None:
        result.append(_characteristic(codes, "healthyVolunteers", valueBoolean=eligibility.healthy_volunteers))
    return result


def _characteristic(codes: CodeTable, code: str, **value: object) -> JSON:
    return {"code": codes.concept(code), **value, "exclude": False}


def sex_concept(sex: str, tables: CtgovTables) -> JSON:
    """The eligible sex: the registry coding, plus administrative-gender for FEMALE and MALE."""
    return tables["ctgov-sex"].target_concept(sex)


def age_value(minimum: str | None, maximum: str | None, tables: CtgovTables) -> dict[str, JSON]:
    """``valueRange`` for parseable age limits, else ``valueCodeableConcept`` with the text as given."""
    low, high = _age_quantity(minimum, tables), _age_quantity(maximum, tables)
    if (minimum and low is None) or (maximum and high is None):
        text = "; ".join(
            part for part in (f"minimum {minimum}" if minimum else "", f"maximum {maximum}" if maximum else "") if part
        )
        return {"valueCodeableConcept": codeable_concept(text=text)}
    return {"valueRange": compact({"low": low, "high": high})}


def _age_quantity(age: str | None, tables: CtgovTables) -> JSON | None:
    match = _AGE.match(age) if age else None
    if match is None:
        return None
    table = tables["ctgov-age-unit"]
    row = table.row(match["unit"]) or table.from_alias(match["unit"])
    if row is None or row.target is None:
        return None
    return quantity(int(match["value"]), row.display, code=row.target)
