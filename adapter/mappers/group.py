"""Group for a study's enrollment: who is eligible and how many take part.

``ResearchStudy.enrollment`` points here. The Group is definitional
(``actual = false``: it describes intended participants, it lists no members).

- ``quantity``: enrollmentInfo.count; whether it is ACTUAL or ESTIMATED goes to the
  extension ctgov-enrollment-type.
- ``characteristic``: sex, age (minimumAge/maximumAge as one Range in UCUM units; an
  absent bound is an open end) and healthy volunteers, coded in the project code
  system ctgov-eligibility-characteristic because no standard code for these was
  confirmed. An age the reader could not parse is kept as text instead of a Range.
  Both ends of the Range are in one unit, because the validator compares low and high
  (rng-2) and cannot compare "3 mo" with "17 a": the coarser end is expressed in the
  finer end's unit when that gives a whole number (17 a = 204 mo), else both in days
  (UCUM: a = 365.25 d, mo = a/12). A converted end keeps the age as the registry wrote
  it in the extension ctgov-age-as-given on its Quantity.
- The registry's age groups (stdAges: Child, Adult, Older Adult) are the extension
  ctgov-standard-age, one per group: not characteristics, because a Group's
  characteristics all hold at once, and a study open to children and adults admits
  either.
- The criteria text (markdown) has no R4 Group element, so it goes to the extension
  eligibility-criteria; the same for the observational study population, sampling
  method and gender-based eligibility.

Natural key: the NCT id.
"""

from __future__ import annotations

import re
from fractions import Fraction

from adapter.fhir.constants import IDENTIFIER_BASE
from adapter.fhir.datatypes import JSON, codeable_concept, compact, quantity
from adapter.fhir.ids import resource_id
from adapter.records import Eligibility, Study
from adapter.sources.ctgov_tables import CodeTable, CtgovTables, project_extension

_AGE = re.compile(r"^(?P<value>\d+) (?P<unit>[A-Za-z]+)$")
# UCUM's definitions of the age units, in days (UCUM 2.1: a = 365.25 d, mo = a/12, wk = 7 d).
_DAYS = {"a": Fraction(36525, 100), "mo": Fraction(36525, 1200), "wk": Fraction(7), "d": Fraction(1),
         "h": Fraction(1, 24), "min": Fraction(1, 1440)}  # fmt: skip


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
        *(
            project_extension("ctgov-standard-age", valueCodeableConcept=tables["ctgov-standard-age"].concept(age))
            for age in eligibility.std_ages
        ),
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
    if low is not None and high is not None and low[1] != high[1]:
        unit = _common_unit(low, high)
        return {"valueRange": {"low": _in_unit(low, unit, minimum), "high": _in_unit(high, unit, maximum)}}
    return {"valueRange": compact({"low": _in_unit(low, None, minimum), "high": _in_unit(high, None, maximum)})}


_Age = tuple[int, str, str]  # value, UCUM code, display of the unit


def _age_quantity(age: str | None, tables: CtgovTables) -> _Age | None:
    match = _AGE.match(age) if age else None
    if match is None:
        return None
    table = tables["ctgov-age-unit"]
    row = table.row(match["unit"]) or table.from_alias(match["unit"])
    if row is None or row.target not in _DAYS:
        return None
    return int(match["value"]), row.target, row.display


def _common_unit(low: _Age, high: _Age) -> tuple[str, str]:
    """The unit both ends are written in: the finer one if the coarser end is whole in it, else days."""
    fine, coarse = sorted((low, high), key=lambda age: _DAYS[age[1]])
    if (coarse[0] * _DAYS[coarse[1]] / _DAYS[fine[1]]).denominator == 1:
        return fine[1], fine[2]
    return "d", "days"


def _in_unit(age: _Age | None, unit: tuple[str, str] | None, given: str | None) -> JSON | None:
    """The Quantity of ``age``, in ``unit`` (code, display) when given; a converted age keeps its text."""
    if age is None:
        return None
    value, code, display = age
    if unit is None or unit[0] == code:
        return quantity(value, display, code=code)
    exact = value * _DAYS[code] / _DAYS[unit[0]]
    # Whole, or a multiple of 1/16 day (a = 365.25 d, mo = 30.4375 d): exact as a binary float.
    number = int(exact) if exact.denominator == 1 else float(exact)
    return {"extension": [project_extension("ctgov-age-as-given", valueString=given)],
            **quantity(number, unit[1], code=unit[0])}  # fmt: skip
