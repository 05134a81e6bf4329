"""Hospital resources read into facts: one value of one trial test (or one dose of one product).

A fact is what collect knows about one source resource for one trial code: the value
and unit as the hospital reported them, the value in the trial's unit, where it came
from (server, type, id, version, lastUpdated) and its state:

- ``collected``: a final, amended or corrected result with a value in a unit that converts;
- ``not-done``: the Observation carries a ``dataAbsentReason`` instead of a value;
- ``rejected``: anything else a person should look at (status, unit, value), with the reason;
- ``retracted``: ``entered-in-error``: a value collected earlier is withdrawn.

Functions here are pure: resources in, facts out. Values never appear in reasons.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from adapter.errors import ConversionError
from adapter.fhir.ucum import convert
from adapter.sources.codetables import ProductDef, TestDef

UCUM = "http://unitsofmeasure.org"
RESULT_STATUSES = frozenset({"final", "amended", "corrected"})
COLLECTED, NOT_DONE, REJECTED, RETRACTED = "collected", "not-done", "rejected", "retracted"


@dataclass(frozen=True)
class Fact:
    """One value of one trial code from one source resource (or derived from two)."""

    subject_id: str
    kind: str  # measurement | administration
    code: str  # the trial's test or product code
    state: str
    effective: str
    source_type: str
    source_id: str
    source_version: str
    source_updated: str
    value: str = ""
    unit: str = ""
    reported_value: str = ""
    reported_unit: str = ""
    reason: str = ""
    # The source's own status (an administration's medication-admin-status).
    status: str = ""
    # Derived facts: the absolute versioned URLs of the facts they were computed from.
    derived_from: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity across runs: a source resource (or a derivation) for one trial code."""
        return (self.source_type, self.source_id, self.code)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["derived_from"] = list(self.derived_from)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fact:
        return cls(**{**data, "derived_from": tuple(data.get("derived_from", ()))})


@dataclass(frozen=True)
class Accepting:
    """The trial codes a resource code is taken for, with the unit annotation the code implies."""

    code: str
    annotation: str | None = None


def accepting_tests(
    tests: Mapping[str, TestDef], project_systems: Collection[str]
) -> dict[tuple[str, str], list[Accepting]]:
    """(system, code) an EHR reports -> the trial tests that accept it (never a code of ``project_systems``)."""
    index: dict[tuple[str, str], list[Accepting]] = {}
    for test in tests.values():
        accepts = test.accepts or tuple((c.system, c.code, None) for c in test.codes
                                        if c.system not in project_systems)
        for system, code, annotation in accepts:
            index.setdefault((system, code), []).append(Accepting(test.code, annotation))
    return index


def accepting_products(products: Mapping[str, ProductDef]) -> dict[tuple[str, str], list[Accepting]]:
    """(system, code) of a MedicationAdministration -> the trial products that accept it."""
    index: dict[tuple[str, str], list[Accepting]] = {}
    for product_code, product in products.items():
        for system, code in product.accepts or tuple((c.system, c.code) for c in product.codes):
            index.setdefault((system, code), []).append(Accepting(product_code))
    return index


def _source(resource: Mapping[str, Any]) -> dict[str, str]:
    meta = resource.get("meta", {})
    return {"source_type": resource["resourceType"], "source_id": resource["id"],
            "source_version": str(meta.get("versionId", "")), "source_updated": str(meta.get("lastUpdated", ""))}


def _effective(resource: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = resource.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("start"), str):
            return str(value["start"])
    return ""


def _matches(concept: Mapping[str, Any], index: Mapping[tuple[str, str], list[Accepting]]) -> list[Accepting]:
    """Every trial code any coding of ``concept`` is accepted for (any coding, not only the first)."""
    found: dict[str, Accepting] = {}
    for coding in concept.get("coding", []):
        for accepting in index.get((coding.get("system", ""), coding.get("code", "")), []):
            found.setdefault(accepting.code, accepting)
    return list(found.values())


def observation_facts(
    resource: Mapping[str, Any], subject_id: str, tests: Mapping[str, TestDef],
    index: Mapping[tuple[str, str], list[Accepting]],
) -> Iterator[Fact]:
    """A fact per trial test that accepts the Observation's code."""
    for accepting in _matches(resource.get("code", {}), index):
        base: dict[str, Any] = dict(subject_id=subject_id, kind="measurement", code=accepting.code,
                    effective=_effective(resource, "effectiveDateTime", "effectiveInstant", "effectivePeriod"),
                    **_source(resource))
        yield _observation_fact(resource, tests[accepting.code], accepting, base)


def _observation_fact(resource: Mapping[str, Any], test: TestDef, accepting: Accepting, base: dict[str, Any]) -> Fact:
    status = resource.get("status", "")
    if status == "entered-in-error":
        return Fact(state=RETRACTED, reason="entered-in-error", **base)
    if status not in RESULT_STATUSES:
        return Fact(state=REJECTED, reason=f"status {status or '(none)'} is not a result (final, amended, corrected)",
                    **base)
    if not base["effective"]:
        return Fact(state=REJECTED, reason="no effective time", **base)
    if "dataAbsentReason" in resource:
        absent = resource["dataAbsentReason"]
        codes = [c.get("code", "") for c in absent.get("coding", [])]
        return Fact(state=NOT_DONE, reason=(codes[0] if codes else absent.get("text", "data absent")), **base)
    if test.value_type == "quantity":
        return _quantity_fact(resource.get("valueQuantity"), test, accepting, base)
    if test.value_type == "integer" and isinstance(resource.get("valueInteger"), int):
        return Fact(state=COLLECTED, value=str(resource["valueInteger"]),
                    reported_value=str(resource["valueInteger"]), **base)
    if test.value_type == "codeable" and "valueCodeableConcept" in resource:
        codings = {(c.get("system"), c.get("code")) for c in resource["valueCodeableConcept"].get("coding", [])}
        answer = next((key for key, code in test.answers.items() if (code.system, code.code) in codings), None)
        if answer is None:
            return Fact(state=REJECTED, reason="the answer is none of the test's answers", **base)
        return Fact(state=COLLECTED, value=answer, reported_value=answer, **base)
    if test.value_type == "string" and isinstance(resource.get("valueString"), str):
        return Fact(state=COLLECTED, value=resource["valueString"], reported_value=resource["valueString"], **base)
    return Fact(state=REJECTED, reason=f"no value of the test's type ({test.value_type})", **base)


def _quantity_fact(quantity: Any, test: TestDef, accepting: Accepting, base: dict[str, Any]) -> Fact:
    if not isinstance(quantity, dict) or "value" not in quantity:
        return Fact(state=REJECTED, reason="no valueQuantity", **base)
    # JSON numbers arrive as floats; repr gives back the digits the server wrote (but not trailing zeros).
    reported = repr(quantity["value"]) if isinstance(quantity["value"], float) else str(quantity["value"])
    unit = quantity.get("code") if quantity.get("system") == UCUM else None
    if not unit:
        return Fact(state=REJECTED, reported_value=reported, reported_unit=str(quantity.get("unit", "")),
                    reason="the unit is not a UCUM code", **base)
    # The code may say what the unit leaves out (48065-7 is D-dimer FEU, reported in plain ug/mL).
    unit_read = f"{unit}{accepting.annotation}" if "{" not in unit and accepting.annotation else unit
    try:
        converted = convert(Decimal(reported), unit_read, test.unit or "", molar_mass=test.molar_mass)
    except (ConversionError, InvalidOperation) as error:
        reason = str(error) if isinstance(error, ConversionError) else "the value is not a decimal"
        return Fact(state=REJECTED, reported_value=reported, reported_unit=unit, reason=reason, **base)
    return Fact(state=COLLECTED, value=str(converted), unit=test.unit or "", reported_value=reported,
                reported_unit=unit, **base)


def administration_facts(
    resource: Mapping[str, Any], subject_id: str, index: Mapping[tuple[str, str], list[Accepting]],
) -> Iterator[Fact]:
    """A fact per trial product that accepts the MedicationAdministration's medication code."""
    for accepting in _matches(resource.get("medicationCodeableConcept", {}), index):
        base: dict[str, Any] = dict(subject_id=subject_id, kind="administration", code=accepting.code,
                    effective=_effective(resource, "effectiveDateTime", "effectivePeriod"), **_source(resource))
        status = resource.get("status", "")
        dose = (resource.get("dosage") or {}).get("dose") or {}
        # A dose is kept only with a UCUM unit: a bare number (Synthea writes some) says no amount.
        unit = dose.get("code", "") if dose.get("system") == UCUM else ""
        value = repr(dose["value"]) if unit and isinstance(dose.get("value"), float) else str(dose.get("value", ""))
        if status == "entered-in-error":
            yield Fact(state=RETRACTED, reason="entered-in-error", **base)
        elif status not in ("completed", "not-done", "in-progress", "stopped"):
            yield Fact(state=REJECTED, reason=f"status {status or '(none)'} is not an administration that happened",
                       **base)
        elif not base["effective"]:
            yield Fact(state=REJECTED, reason="no effective time", **base)
        else:
            why = (resource.get("statusReason") or [{}])[0]
            reason = why.get("text") or next((c.get("display") or c.get("code") for c in why.get("coding", [])), "")
            yield Fact(state=NOT_DONE if status == "not-done" else COLLECTED, value=value if unit else "",
                       unit=unit, reported_value=value if unit else "", reported_unit=unit, status=status,
                       reason=(reason or "not given (no reason recorded)") if status == "not-done" else "", **base)
